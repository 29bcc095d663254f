"""Read a PyTorch state dict (``torch.save`` file) into numpy arrays, without torch.

Why not ``torch.load``: torch is a multi-gigabyte dependency we do not want, and a
``.pth`` file is a pickle, and unpickling runs whatever callables the file names.
This reader overrides ``find_class`` with a fixed allow-list that maps the few names
a state dict needs to our own pure-numpy functions; any other name (``os.system``,
``builtins.eval``, ...) is refused with a ModelError before it can be called.

Both formats are read: the legacy one (``_use_new_zipfile_serialization=False``,
torch < 1.6) and the zip one (``<archive>/data.pkl`` + ``<archive>/data/<key>``).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from os import PathLike
from typing import IO, Any, Callable

import numpy as np

from convvis_core.errors import ModelError

# torch.serialization.MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(dtype).newbyteorder("<")
    for name, dtype in {
        "DoubleStorage": np.float64,
        "FloatStorage": np.float32,
        "HalfStorage": np.float16,
        "LongStorage": np.int64,
        "IntStorage": np.int32,
        "ShortStorage": np.int16,
        "CharStorage": np.int8,
        "ByteStorage": np.uint8,
        "BoolStorage": np.bool_,
    }.items()
}


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.FloatStorage`` and friends resolve to: just the name, deliberately not callable."""

    name: str


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by the pickle; its bytes are read after the pickle (legacy) or from the zip."""

    key: str
    dtype: np.dtype
    offset: int  # elements into the stored storage (non-zero only for legacy storage views)
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` describes: a strided view into a storage."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records the view, reads nothing yet."""
    if not isinstance(storage, _StorageRef):
        raise ModelError("Not a valid PyTorch file: a tensor does not refer to a storage.")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is just its tensor here."""
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed names and records storages instead of loading them."""

    def __init__(self, file: IO[bytes], storages: dict[str, np.dtype]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)  # a fresh one: a pickle's BUILD could alter a shared instance
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ModelError(
                f"refusing to unpickle {module}.{name}: a PyTorch weights file may only name "
                "tensors and storages, so this file is not a plain state dict and could run code."
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise ModelError(f"Not a valid PyTorch file: unknown persistent id {pid!r:.80}.")
        _, storage_type, key, _location, numel, *view = pid
        if not (isinstance(storage_type, _StorageType) and storage_type.name in _STORAGE_DTYPES):
            raise ModelError("Not a valid PyTorch file: a storage has no known element type.")
        dtype = _STORAGE_DTYPES[storage_type.name]
        self._storages[str(key)] = dtype
        if view and view[0] is not None:  # legacy storage view: (view_key, offset, view_size)
            _view_key, offset, view_numel = view[0]
            return _StorageRef(str(key), dtype, int(offset), int(view_numel))
        return _StorageRef(str(key), dtype, 0, int(numel))


def _load(file: IO[bytes], storages: dict[str, np.dtype]) -> Any:
    return _RestrictedUnpickler(file, storages).load()


def _materialize(ref: _TensorRef, data: np.ndarray) -> np.ndarray:
    """Copy a tensor out of its storage, checking bounds first (as_strided does not)."""
    flat = data[ref.storage.offset : ref.storage.offset + ref.storage.numel]
    if (
        len(ref.size) != len(ref.stride)
        or min(ref.offset, ref.storage.offset, *ref.size, *ref.stride) < 0
    ):
        raise ModelError("Not a valid PyTorch file: a tensor has an invalid shape or stride.")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=flat.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= flat.size:
        raise ModelError("Not a valid PyTorch file: a tensor reaches past the end of its storage.")
    strides = tuple(s * flat.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(flat[ref.offset :], ref.size, strides, writeable=False)
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")  # a copy, 0-d stays 0-d


def _to_arrays(state: Any, read: Callable[[str, np.dtype], np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise ModelError("Not a PyTorch state dict: expected a mapping of names to tensors.")
    cache: dict[str, np.ndarray] = {}
    arrays = {}
    for name, ref in state.items():
        key = ref.storage.key
        if key not in cache:
            cache[key] = read(key, ref.storage.dtype)
        arrays[str(name)] = _materialize(ref, cache[key])
    return arrays


def _read_legacy(file: IO[bytes]) -> dict[str, np.ndarray]:
    """Legacy layout: magic, protocol, sys_info, state dict, storage keys, then each storage's bytes."""
    storages: dict[str, np.dtype] = {}
    if _load(file, storages) != _LEGACY_MAGIC or _load(file, storages) != _LEGACY_PROTOCOL:
        raise ModelError("Not a PyTorch weights file (no torch.save magic number).")
    sys_info = _load(file, storages)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise ModelError("Unsupported PyTorch file: only little-endian files can be read.")
    state = _load(file, storages)
    data: dict[str, np.ndarray] = {}
    for key in _load(file, storages):
        dtype = storages.get(key)
        if dtype is None:
            raise ModelError(f"Not a valid PyTorch file: storage {key!r} is not used by any tensor.")
        count = int.from_bytes(file.read(8), "little", signed=True)
        raw = file.read(count * dtype.itemsize)
        if count < 0 or len(raw) != count * dtype.itemsize:
            raise ModelError("Truncated PyTorch file: a storage ends early; download it again.")
        data[key] = np.frombuffer(raw, dtype=dtype)

    def read(key: str, dtype: np.dtype) -> np.ndarray:
        if key not in data:
            raise ModelError(f"Not a valid PyTorch file: storage {key!r} has no data.")
        return data[key]

    return _to_arrays(state, read)


def _read_zip(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    """Zip layout: ``<prefix>/data.pkl`` plus one raw little-endian file per storage key."""
    pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
    if pkl is None:
        raise ModelError("Not a PyTorch weights file: the zip archive has no data.pkl.")
    prefix = pkl[: -len("data.pkl")]
    if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
        raise ModelError("Unsupported PyTorch file: only little-endian files can be read.")
    with archive.open(pkl) as file:
        state = _load(file, {})

    def read(key: str, dtype: np.dtype) -> np.ndarray:
        try:
            return np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
        except KeyError:
            raise ModelError(f"Not a valid PyTorch file: storage {key!r} has no data.") from None

    return _to_arrays(state, read)


def read_state_dict(path: str | PathLike[str]) -> dict[str, np.ndarray]:
    """Read the state dict of a ``torch.save`` file as name -> numpy array, refusing anything but tensors."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _read_zip(archive)
        with open(path, "rb") as file:
            # In memory (tens of MB), so that a forged element count cannot make read() allocate more.
            return _read_legacy(io.BytesIO(file.read()))
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, zipfile.BadZipFile) as exc:  # what a malformed pickle raises
        raise ModelError(f"Cannot read PyTorch weights file {path}: {exc}") from exc
