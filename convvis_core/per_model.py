"""Objects built from a loaded model and kept while it lives: sub-models, heatmap probes, Top-k
reducers, traced feature-visualization renderers. Every session shares them, so each kind is
bounded (the least recently used dropped first) and built once even when sessions ask at once."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import keras

Built = TypeVar("Built")


class PerModelCache:
    """Up to ``limit`` objects per model, by key; a model's entries go when the model does."""

    def __init__(self, limit: int, lock: threading.Lock | threading.RLock | None = None):
        self.limit = limit
        self._lock = lock or threading.Lock()  # held while building, so concurrent askers share one
        self._models: "weakref.WeakKeyDictionary[keras.Model, OrderedDict]" = weakref.WeakKeyDictionary()

    def get(self, model: keras.Model, key: Hashable, build: Callable[[], Built]) -> Built:
        """The object cached under ``key`` for ``model``, built by ``build()`` the first time."""
        with self._lock:
            kept = self._models.setdefault(model, OrderedDict())
            if key not in kept:
                kept[key] = build()
                while len(kept) > self.limit:
                    kept.popitem(last=False)  # a session still using a dropped object keeps it until done
            kept.move_to_end(key)
            return kept[key]

    def __getitem__(self, model: keras.Model) -> OrderedDict:
        """What is kept for ``model`` now, least recently used first."""
        return self._models[model]
