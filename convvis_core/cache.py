"""Results cached in memory and on disk, keyed by what they depend on, so nothing is computed twice.

A result is a dict of numpy arrays saved as one ``.npz`` (a zip with CRCs): a partial or corrupt
file fails to load, is deleted, and the result is computed again; it is never shown.

One cache serves every session of the server at once: files are written to a private temporary
name and renamed into place (a reader sees a whole file or none), a file evicted while another
thread reads it is simply a miss, and the arrays handed out are read-only, because one session's
result is every session's.

A folder that cannot be written (read-only, full) does not stop the app: results are still computed,
shown and kept in memory, and :func:`not_saving` says why they are not saved. A batch job, which
exists only to save, checks :func:`unwritable` first and stops instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import keras
import numpy as np

from convvis_core.config import (CACHE_ENV, CACHE_EVICT_EVERY, MAX_CACHE_BYTES, MAX_CACHE_MEMORY_BYTES,
                                 MAX_CACHE_MEMORY_ENTRIES, cache_dir)

Arrays = dict[str, np.ndarray]
_FINGERPRINTS: "weakref.WeakKeyDictionary[keras.Model, str]" = weakref.WeakKeyDictionary()
_STALE_PART_SECONDS = 3600  # a temporary file this old was left by a writer that died


def model_fingerprint(model: keras.Model) -> str:
    """A hash of the model's weights and architecture: two models share cache entries only if equal."""
    found = _FINGERPRINTS.get(model)
    if found is None:  # two threads may both compute it: the same value, so no lock is held meanwhile
        digest = hashlib.sha256(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
        for weight in model.weights:
            value = np.ascontiguousarray(weight.numpy())
            digest.update(f"{weight.path}:{value.shape}:{value.dtype}".encode())
            digest.update(value.tobytes())
        found = _FINGERPRINTS.setdefault(model, digest.hexdigest())
    return found


def cache_key(*parts: Any) -> str:
    """A stable key for JSON-serializable parts (dicts are sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _read_only(array: Any) -> np.ndarray:
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def unwritable(folder: Path) -> str | None:
    """Why no file can be written in ``folder`` now (read-only, full, no permission), or None if one can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", suffix=".part") as probe:
            probe.write(b"0")
            probe.flush()
    except OSError as error:
        return error.strerror or str(error)
    return None


def _size(arrays: Arrays) -> int:
    return sum(array.nbytes for array in arrays.values())


class ResultCache:
    """Memory (LRU, bounded in entries and bytes) in front of a folder of ``.npz`` files (least
    recently used deleted first past ``max_bytes``); safe to share between threads and processes."""

    def __init__(self, folder: Path | None, memory_entries: int = MAX_CACHE_MEMORY_ENTRIES,
                 max_bytes: int = MAX_CACHE_BYTES, memory_bytes: int = MAX_CACHE_MEMORY_BYTES,
                 evict_every: int = CACHE_EVICT_EVERY):
        self.folder = folder
        self.memory_entries = memory_entries
        self.max_bytes = max_bytes
        self.memory_bytes = memory_bytes
        self.evict_every = evict_every
        self.unsaved: str | None = None  # why the last write to the folder failed; None once one succeeds
        self._memory: OrderedDict[str, Arrays] = OrderedDict()
        self._memory_used = 0
        self._writes = 0
        self._computing: dict[str, list] = {}  # key -> [lock, sessions using it]
        self._lock = threading.Lock()  # the memory layer, the write counter and the key locks
        self._evict_lock = threading.Lock()  # one eviction pass at a time

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.npz"

    def contains(self, key: str) -> bool:
        """Whether ``key`` is stored (in memory or on disk), without reading it."""
        with self._lock:
            if key in self._memory:
                return True
        return self.folder is not None and self._path(key).is_file()

    def get(self, key: str) -> Arrays | None:
        """The arrays stored under ``key`` (read-only), or None."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self.folder is None:
            return None
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except FileNotFoundError:  # never stored, or evicted a moment ago
            return None
        except Exception:  # partial, truncated or corrupt: recompute rather than show it
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:  # evicted meanwhile by another thread or process; what was read is whole
            pass
        return self._remember(key, arrays)

    def put(self, key: str, arrays: Arrays) -> None:
        """Store ``arrays`` under ``key``; the caller hands them over and must not change them later.
        If the folder cannot be written they stay in memory only and :attr:`unsaved` says why."""
        self._remember(key, arrays)
        if self.folder is None:
            return
        path = self._path(key)
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}-", suffix=".part")
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, path)  # atomic: readers see the whole file or none
        except OSError as error:  # read-only, full, or no permission: keep working, without saving
            self.unsaved = error.strerror or str(error)
            return
        finally:
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
        self.unsaved = None
        with self._lock:
            self._writes += 1
            due = self._writes % self.evict_every == 0
        if due:
            self.evict()

    def _remember(self, key: str, arrays: Arrays) -> Arrays:
        arrays = {name: _read_only(array) for name, array in arrays.items()}
        size = _size(arrays)
        with self._lock:
            previous = self._memory.pop(key, None)
            if previous is not None:
                self._memory_used -= _size(previous)
            if size <= self.memory_bytes:  # a result larger than the whole layer stays on disk only
                self._memory[key] = arrays
                self._memory_used += size
            while len(self._memory) > self.memory_entries or self._memory_used > self.memory_bytes:
                _, dropped = self._memory.popitem(last=False)
                self._memory_used -= _size(dropped)
        return arrays

    @contextmanager
    def computing(self, key: str) -> Iterator[None]:
        """Held while computing the result for ``key``: sessions that miss at once compute it once
        (the others wait, then find it with :meth:`get`)."""
        with self._lock:
            entry = self._computing.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._computing[key]

    @property
    def memory_used(self) -> int:
        """Bytes of arrays held in the memory layer."""
        with self._lock:
            return self._memory_used

    def forget_memory(self) -> None:
        """Drop the in-memory layer (as a restart would); the disk stays."""
        with self._lock:
            self._memory.clear()
            self._memory_used = 0

    def evict(self) -> None:
        """Delete the least recently used files until the folder is under ``max_bytes`` (and the
        temporary files of writers that died)."""
        if self.folder is None:
            return
        with self._evict_lock:
            files = []
            for path in self.folder.glob("*/*"):
                try:
                    info = path.stat()
                except FileNotFoundError:  # replaced or deleted meanwhile
                    continue
                if path.suffix == ".npz":
                    files.append((info.st_mtime_ns, info.st_size, path))
                elif path.suffix == ".part" and time.time() - info.st_mtime > _STALE_PART_SECONDS:
                    path.unlink(missing_ok=True)
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files):
                if total <= self.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= size


_DEFAULT: dict[str, ResultCache] = {}
_DEFAULT_LOCK = threading.Lock()


def not_saving() -> str | None:
    """Why the app's results are not being saved now, or None: the cache folder cannot be written, or
    the last write of one of the process-wide caches failed."""
    folder = cache_dir()
    reason = unwritable(folder)
    if reason is None:
        with _DEFAULT_LOCK:  # only the caches under the folder in use: one left from an earlier folder says nothing now
            reason = next((cache.unsaved for cache in _DEFAULT.values()
                           if cache.unsaved and cache.folder is not None and folder in cache.folder.parents), None)
    if reason is None:
        return None
    return (f"Results are not being saved: the cache folder {folder} cannot be written ({reason}). Everything is "
            "still computed and shown, but is computed again after a restart. Make the folder writable or free "
            f"disk space, or point ${CACHE_ENV} at another folder.")


def default_cache(namespace: str) -> ResultCache:
    """The process-wide cache for one kind of result, under the cache folder."""
    folder = cache_dir() / namespace
    with _DEFAULT_LOCK:
        key = str(folder)
        if key not in _DEFAULT:
            _DEFAULT[key] = ResultCache(folder)
        return _DEFAULT[key]
