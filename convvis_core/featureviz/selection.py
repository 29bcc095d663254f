"""Which filters to visualize: "0-15,32,40-43" specs, random samples, all."""

from __future__ import annotations

import numpy as np

from convvis_core.errors import ConvVisError, LayerError


def parse_filters(spec: str, count: int) -> list[int]:
    """Parse "0-15,32" into indices, checked against the layer's ``count`` channels."""
    indices: list[int] = []
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        try:
            low, _, high = part.partition("-")
            first, last = int(low), int(high) if high else int(low)
        except ValueError as error:
            raise ConvVisError(f"'{part}' is not a filter index or range; write e.g. 0-15,32") from error
        if first > last:
            raise ConvVisError(f"Range '{part}' runs backwards; write it low-high.")
        indices.extend(range(first, last + 1))
    if not indices:
        raise ConvVisError("No filters given; write e.g. 0-15,32")
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise LayerError(f"Filter {bad[0]} is out of range: the layer has {count} filters (0–{count - 1}). "
                         f"Pick indices from 0 to {count - 1}.")
    return list(dict.fromkeys(indices))


def random_filters(count: int, how_many: int, seed: int) -> list[int]:
    """A reproducible random sample of filter indices, in ascending order."""
    how_many = min(how_many, count)
    return sorted(int(i) for i in np.random.default_rng(seed).choice(count, size=how_many, replace=False))
