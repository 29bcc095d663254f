"""Hostile files built byte by byte, for the bad-input corpus and the core tests that need one (no UI code
here: tests of the core import this, not the corpus, which also drives the pages)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib


def png_header(width: int, height: int) -> bytes:
    """A PNG that is only a signature, an IHDR declaring ``width``×``height`` (8-bit RGB) and IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def zip_of(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()
