"""The job's record: one JSON line per finished unit, appended by whichever process finished it.

Results live in the cache; the manifest says which units are done, when, by whom and in how many
seconds, so a rerun reports what it resumes from and the summary can give costs per filter and per
image even for work an earlier run did. Each record is one ``write`` to a file opened for appending:
on a local file system appends from several processes never interleave, and a process killed
mid-record leaves at most a torn last line, which readers skip.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any


class Manifest:
    """An append-only JSON-lines file of records ``{"unit": name, "seconds": …, …}``."""

    def __init__(self, path: Path):
        self.path = path

    def record(self, kind: str, name: str, seconds: float, **details: Any) -> None:
        """Append one finished unit (after its results are in the cache, so a record is never ahead of them)."""
        line = json.dumps({"kind": kind, "unit": name, "seconds": round(seconds, 4), "at": time.time(),
                           "by": f"{socket.gethostname()}:{os.getpid()}", **details}) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(handle, line.encode())
        finally:
            os.close(handle)

    def records(self) -> list[dict[str, Any]]:
        """Every whole record, oldest first (a torn line left by a killed writer is skipped)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def done(self, kind: str) -> dict[str, dict[str, Any]]:
        """The latest record of each finished unit of ``kind``, by unit name."""
        return {record["unit"]: record for record in self.records() if record.get("kind") == kind}
