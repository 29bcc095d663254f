"""Side-by-side pictures for docs/feature-visualization.md: the same filters under two presets, one JPEG each.

- ``filters_lucid_vs_fast.jpg``: MobileNet conv_pw_3/8/13_relu, filters 0-7, the Lucid preset (upper row
  of each pair) against "fast Lucid" (lower row); their times are in bench/filters_time_to_quality.py.
- ``filters_lenet_default.jpg``: LeNet conv2_relu, filters 0-7, "quick preview" against the default for
  28×28 inputs, "pixels at model size"; weak filters are marked.

Usage: ``python scripts/filters_side_by_side.py [--out docs/screenshots]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw  # noqa: E402

from convvis_core.cache import ResultCache  # noqa: E402
from convvis_core.featureviz import visualize_filters  # noqa: E402
from convvis_core.presentation.filter_grids import caption  # noqa: E402
from convvis_core.featureviz.presets import FAST, SMALL_INPUTS, fitted_preset  # noqa: E402
from convvis_core.models import load_model  # noqa: E402

TILE, MARGIN, LABEL = 128, 4, 14


def rows(model: str, layers: list[str], presets: list[str], filters: list[int]) -> list[tuple[str, list]]:
    """(label, results) per layer and preset, the presets of a layer one under the other."""
    loaded = load_model(model)
    found = []
    for layer in layers:
        for name in presets:
            settings = fitted_preset(name, loaded.info.input_size).replace(batch_size=len(filters))
            results = visualize_filters(loaded, layer, filters, settings, cache=ResultCache(None))
            found.append((f"{layer}, {name}: {settings.steps} steps, {settings.size} px", results))
    return found


def sheet(found: list[tuple[str, list]], path: Path) -> None:
    """One labelled row of tiles per (layer, preset), each tile captioned like the app's grid."""
    columns = max(len(results) for _, results in found)
    row_height = LABEL + LABEL + TILE + MARGIN
    image = Image.new("RGB", (MARGIN + columns * (TILE + MARGIN), MARGIN + len(found) * row_height), "white")
    draw = ImageDraw.Draw(image)
    for row, (label, results) in enumerate(found):
        y = MARGIN + row * row_height
        draw.text((MARGIN, y), label, fill="black")
        for column, result in enumerate(results):
            x = MARGIN + column * (TILE + MARGIN)
            draw.text((x, y + LABEL), caption(result), fill="black")
            tile = Image.fromarray(result.image).convert("RGB").resize((TILE, TILE), Image.NEAREST)
            image.paste(tile, (x, y + 2 * LABEL))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    filters = list(range(8))
    sheet(rows("mobilenet", ["conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"], ["Lucid", FAST], filters),
          out / "filters_lucid_vs_fast.jpg")
    sheet(rows("lenet_mnist", ["conv2_relu"], ["quick preview", SMALL_INPUTS], filters), out / "filters_lenet_default.jpg")


if __name__ == "__main__":
    main()
