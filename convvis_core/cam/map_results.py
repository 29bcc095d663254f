"""Results about one map (its sanity check, its metrics) kept in the disk cache, as Compare keeps its own.

Such a result costs many maps (a sanity check: one per randomization step; stability: one per noisy
copy), so it is computed once per model, image, method, layer, target and setting, for every session
and every restart: the key holds the model's identity and weights (``model_fingerprint``), a digest of
the pixels as the model sees them, the method's class, name and settings, the target, the layer, the
fit, the baseline and the caller's own settings.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from PIL import Image

from convvis_core.cache import Arrays, ResultCache, cache_key, default_cache, model_fingerprint
from convvis_core.cam.base import HeatmapMethod
from convvis_core.cam.methods import method_named
from convvis_core.cam.targets import Target
from convvis_core.images import Fit, as_model_sees_it
from convvis_core.models.base import LoadedModel

CACHE_NAMESPACE = "map-checks"


def as_method(method: str | HeatmapMethod) -> HeatmapMethod:
    """A method by name (see ``METHODS``), or the method object itself (with its own settings)."""
    return method_named(method) if isinstance(method, str) else method


def map_result_key(kind: str, loaded: LoadedModel, image: Image.Image, method: HeatmapMethod, target: Target | None,
                   layer: str | None, fit: Fit, baseline: str, **settings: Any) -> str:
    """The cache key of a ``kind`` of result about the map of ``method`` for ``target`` at ``layer``."""
    pixels = hashlib.sha256(as_model_sees_it(image, loaded.info, fit).tobytes()).hexdigest()
    return cache_key(kind, loaded.identity, model_fingerprint(loaded.model), pixels, type(method).__qualname__,
                     method.name, sorted(vars(method).items()), repr(target), layer, fit, baseline, settings)


def stored_or_computed(cache: ResultCache | None, key: str, compute: Callable[[], Arrays]) -> tuple[Arrays, bool]:
    """The arrays stored under ``key``, or ``compute()``'s, stored (sessions that miss at once compute
    them once); and whether they came from the cache."""
    cache = cache if cache is not None else default_cache(CACHE_NAMESPACE)
    stored = cache.get(key)
    if stored is not None:
        return stored, True
    with cache.computing(key):
        stored = cache.get(key)
        if stored is not None:
            return stored, True
        arrays = compute()
        cache.put(key, arrays)
    return arrays, False
