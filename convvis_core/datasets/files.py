"""Users' own image collections: an uploaded ``.zip`` (read in memory, never extracted) and a folder
on the server (which the app offers only where the operator lists it in ``$CONVVIS_DATASET_DIRS``).
A batch job reads a ``.zip`` of any size from disk, member by member, and ships it to worker
processes as its path (:class:`_Archive`).

An archive is untrusted. Members with absolute or ``..`` paths, symbolic links, nested archives,
encrypted or oversized members are left out one by one and counted with the reason; every other
member is decoded once, here, so a broken image is reported now instead of failing a scan later.
An archive over the size or member limit is refused whole. Nothing is ever written to disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

from convvis_core.config import MAX_ZIP_BYTES, MAX_ZIP_EXPANDED_BYTES, MAX_ZIP_MEMBER_BYTES, MAX_ZIP_MEMBERS
from convvis_core.datasets.base import DatasetError, EncodedDataset
from convvis_core.errors import ImageError
from convvis_core.images import open_image

UNSAFE_PATH = "absolute or ../ path"
SYMLINK = "symbolic link"
NESTED_ARCHIVE = "nested archive"
ENCRYPTED = "encrypted"
TOO_LARGE = "too large"
OVER_TOTAL = "over the total expanded-size limit"
CORRUPT = "corrupt (bad checksum or truncated)"
HIDDEN = "hidden or metadata file"
NOT_A_FILE = "not a regular file"
NOT_AN_IMAGE = "not a readable image"
_ARCHIVE_SUFFIXES = (".zip", ".jar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
_ZIP_MAGIC = b"PK\x03\x04"
Reader = Callable[[], bytes]


class _Skipped(DatasetError):
    """A member left out, and why (one of the reason constants above)."""


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def _check_name(name: str) -> None:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"[A-Za-z]:", posix) or ".." in posix.split("/"):
        raise _Skipped(UNSAFE_PATH)
    if any(part.startswith(".") or part == "__MACOSX" for part in posix.split("/")):
        raise _Skipped(HIDDEN)
    if posix.lower().endswith(_ARCHIVE_SUFFIXES):
        raise _Skipped(NESTED_ARCHIVE)


def _collect(title: str, identity: Callable[[list[str]], str],
             members: Iterable[tuple[str, Reader]], max_total_bytes: int) -> EncodedDataset:
    """Read and decode every member once; keep the images, count the rest by reason.

    A reader checks its member (path, link, size) before reading and raises ``_Skipped`` to refuse it.
    """
    names: list[str] = []
    readers: list[Reader] = []
    skipped: dict[str, list[str]] = defaultdict(list)
    total = 0
    for name, read in members:
        try:
            data = read()
            total += len(data)
            if total > max_total_bytes:
                raise _Skipped(OVER_TOTAL)
            if data.startswith(_ZIP_MAGIC):
                raise _Skipped(NESTED_ARCHIVE)
            open_image(data, name=name)
        except _Skipped as refused:
            skipped[str(refused)].append(name)
            continue
        except ImageError:
            skipped[NOT_AN_IMAGE].append(name)
            continue
        names.append(name)
        readers.append(read)
    if not names:
        reasons = "; ".join(f"{len(refused)} {reason}" for reason, refused in skipped.items()) or "it is empty"
        raise DatasetError(f"{title} holds no image ConvVis can read ({reasons}). "
                           "Put PNG, JPEG, GIF, BMP, TIFF or WebP files in it.")
    return EncodedDataset(title, identity(names), names, lambda index: readers[index](), skipped=skipped)


class _Archive:
    """A zip archive opened where it is read: it pickles as its source (the bytes, or the path of a
    file on disk) and reopens on first use, so worker processes read a file's members without a copy."""

    def __init__(self, source: bytes | Path):
        self.source = source
        self._zip: zipfile.ZipFile | None = None

    def __getstate__(self) -> dict:
        return {"source": self.source}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["source"])

    @property
    def zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source)
        return self._zip

    def identity(self) -> str:
        """The archive's content hash (streamed from disk for a file)."""
        digest = hashlib.sha256()
        if isinstance(self.source, bytes):
            digest.update(self.source)
        else:
            with open(self.source, "rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
        return "zip-v1:" + digest.hexdigest()


def zip_dataset(data: bytes | Path, name: str = "upload.zip", max_bytes: int = MAX_ZIP_BYTES,
                max_members: int = MAX_ZIP_MEMBERS, max_member_bytes: int = MAX_ZIP_MEMBER_BYTES,
                max_expanded_bytes: int = MAX_ZIP_EXPANDED_BYTES) -> EncodedDataset:
    """The images in a ``.zip`` held in memory, or in a file at that path; members are read
    (size-capped) but never extracted. Equal contents have equal identities either way."""
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    if not size:
        raise DatasetError(f"'{name}' is empty (0 bytes). Upload a .zip of PNG, JPEG, GIF, BMP, TIFF or WebP images.")
    if size > max_bytes:
        raise DatasetError(f"'{name}' is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}.")
    archive = _Archive(data)
    try:
        members = [info for info in archive.zip.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise DatasetError(f"'{name}' is not a readable .zip archive ({error}). Create the archive again "
                           "with a zip tool and upload the new file.") from error
    if len(members) > max_members:
        raise DatasetError(f"'{name}' holds {len(members):,} files; the limit is {max_members:,}. "
                           "Split it into smaller archives.")

    def reader(info: zipfile.ZipInfo) -> Reader:
        def read() -> bytes:
            _check_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _Skipped(SYMLINK)
            if info.flag_bits & 0x1:
                raise _Skipped(ENCRYPTED)
            if info.file_size > max_member_bytes:
                raise _Skipped(TOO_LARGE)
            try:
                with archive.zip.open(info) as member:
                    content = member.read(max_member_bytes + 1)  # never more, whatever the header says
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
                raise _Skipped(CORRUPT) from error
            if len(content) > max_member_bytes:
                raise _Skipped(TOO_LARGE)
            return content
        return read

    return _collect(name, lambda _: archive.identity(),
                    ((info.filename, reader(info)) for info in members), max_expanded_bytes)


def folder_dataset(folder: str | os.PathLike, max_members: int = MAX_ZIP_MEMBERS,
                   max_member_bytes: int = MAX_ZIP_MEMBER_BYTES,
                   max_total_bytes: int = MAX_ZIP_EXPANDED_BYTES) -> EncodedDataset:
    """The images under a folder (recursively, sorted); symbolic links are not followed."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"No such folder: {root}")
    files: list[Path] = []
    for directory, subdirectories, file_names in os.walk(root, followlinks=False):
        subdirectories.sort()
        files.extend(Path(directory) / file_name for file_name in sorted(file_names))
        if len(files) > max_members:
            raise DatasetError(f"{root} holds more than {max_members:,} files; point to a smaller folder.")

    def reader(path: Path) -> Reader:
        def read() -> bytes:
            _check_name(path.relative_to(root).as_posix())
            if path.is_symlink():
                raise _Skipped(SYMLINK)
            if not path.is_file():  # a pipe or device would block or never end
                raise _Skipped(NOT_A_FILE)
            with open(path, "rb") as file:
                content = file.read(max_member_bytes + 1)
            if len(content) > max_member_bytes:
                raise _Skipped(TOO_LARGE)
            return content
        return read

    def identity(names: list[str]) -> str:
        listing = [(name, (root / name).stat().st_size, (root / name).stat().st_mtime_ns) for name in names]
        return f"folder-v1:{root}:" + hashlib.sha256(repr(listing).encode()).hexdigest()

    return _collect(str(root), identity, ((path.relative_to(root).as_posix(), reader(path)) for path in files),
                    max_total_bytes)
