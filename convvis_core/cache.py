"""Results cached in memory and on disk, keyed by what they depend on, so nothing is computed twice.

A result is a dict of numpy arrays saved as one ``.npz`` (a zip with CRCs): a partial or corrupt
file fails to load, is deleted, and the result is computed again; it is never shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convvis_core.config import MAX_CACHE_BYTES, cache_dir

Arrays = dict[str, np.ndarray]
_FINGERPRINTS: "weakref.WeakKeyDictionary[keras.Model, str]" = weakref.WeakKeyDictionary()


def model_fingerprint(model: keras.Model) -> str:
    """A hash of the model's weights and architecture: two models share cache entries only if equal."""
    if model not in _FINGERPRINTS:
        digest = hashlib.sha256(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
        for weight in model.weights:
            value = np.ascontiguousarray(weight.numpy())
            digest.update(f"{weight.path}:{value.shape}:{value.dtype}".encode())
            digest.update(value.tobytes())
        _FINGERPRINTS[model] = digest.hexdigest()
    return _FINGERPRINTS[model]


def cache_key(*parts: Any) -> str:
    """A stable key for JSON-serializable parts (dicts are sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class ResultCache:
    """Memory (LRU) in front of a folder of ``.npz`` files; safe to share between threads."""

    def __init__(self, folder: Path | None, memory_entries: int = 512, max_bytes: int = MAX_CACHE_BYTES):
        self.folder = folder
        self.memory_entries = memory_entries
        self.max_bytes = max_bytes
        self._memory: OrderedDict[str, Arrays] = OrderedDict()
        self._lock = threading.Lock()
        self._puts_since_eviction = 0

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Arrays | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self.folder is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except Exception:  # partial, truncated or corrupt: recompute rather than show it
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used: evicted last
        self._remember(key, arrays)
        return arrays

    def put(self, key: str, arrays: Arrays) -> None:
        self._remember(key, arrays)
        if self.folder is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, path)  # atomic: readers see the whole file or none
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        self._puts_since_eviction += 1
        if self._puts_since_eviction >= 32:
            self._puts_since_eviction = 0
            self.evict()

    def _remember(self, key: str, arrays: Arrays) -> None:
        with self._lock:
            self._memory[key] = arrays
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_entries:
                self._memory.popitem(last=False)

    def forget_memory(self) -> None:
        """Drop the in-memory layer (as a restart would); the disk stays."""
        with self._lock:
            self._memory.clear()

    def evict(self) -> None:
        """Delete the least recently used files until the folder is under ``max_bytes``."""
        if self.folder is None or not self.folder.is_dir():
            return
        files = [(path.stat().st_mtime, path.stat().st_size, path) for path in self.folder.glob("*/*.npz")]
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


_DEFAULT: dict[str, ResultCache] = {}
_DEFAULT_LOCK = threading.Lock()


def default_cache(namespace: str) -> ResultCache:
    """The process-wide cache for one kind of result, under the cache folder."""
    folder = cache_dir() / namespace
    with _DEFAULT_LOCK:
        key = str(folder)
        if key not in _DEFAULT:
            _DEFAULT[key] = ResultCache(folder)
        return _DEFAULT[key]
