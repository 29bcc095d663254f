"""TensorFlow imported without the log lines its C++ libraries print while they load.

Each of TensorFlow's two native libraries logs as it loads (oneDNN is on, no CUDA driver found) before
absl's logging is initialized, so those records go straight to the process's stderr and
``TF_CPP_MIN_LOG_LEVEL`` does not hold them back (TensorFlow 2.21): six lines before every command's
output. So the first import of TensorFlow runs with file descriptor 2 pointed at a temporary file; then
what it caught is written back less the records that level would have held back, and all of it when the
import fails, so no error or Python warning is hidden (only delayed by the import's few seconds).
``TF_ENABLE_ONEDNN_OPTS`` is left alone: it changes numerics, not just what is printed.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import IO

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"  # 0: all records; 1: no INFO; 2: no WARNING either; 3: no ERROR either
SEVERITIES = "IWEF"  # absl's INFO, WARNING, ERROR, FATAL: a record is held back when its index < the level
RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")  # "I0000 00:00:1796630361.247836 5418 port.cc:153] "
NOT_INITIALIZED = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def import_tensorflow_quietly() -> None:
    """Import TensorFlow, if nothing has yet, with its start-up records held to ``TF_CPP_MIN_LOG_LEVEL``
    (3 unless set: only what stops it)."""
    os.environ.setdefault(LOG_LEVEL, "3")
    if "tensorflow" in sys.modules:
        return
    try:
        stderr = os.dup(2)
    except OSError:  # no stderr (a detached process): nothing to keep clean
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as caught:
        _flush()
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            _give_back(stderr, caught, level=0)  # all of it: the failure's context
            raise
        _give_back(stderr, caught, _level())


def _give_back(stderr: int, caught: IO[bytes], level: int) -> None:
    """Point file descriptor 2 at ``stderr`` again and write there what was caught, less what ``level`` holds back."""
    _flush()
    os.dup2(stderr, 2)
    os.close(stderr)
    caught.seek(0)
    kept = without_held_records(caught.read().decode(errors="replace"), level)
    if kept and sys.stderr is not None:
        sys.stderr.write(kept)
        sys.stderr.flush()


def without_held_records(text: str, level: int) -> str:
    """``text`` less absl's records below ``level`` and its notice that they go to stderr unfiltered."""
    if level <= 0:
        return text
    return "".join(line for line in text.splitlines(keepends=True)
                   if line.rstrip("\r\n") != NOT_INITIALIZED and not _held(line, level))


def _held(line: str, level: int) -> bool:
    record = RECORD.match(line)
    return record is not None and SEVERITIES.index(record.group(1)) < level


def _level() -> int:
    try:
        return int(os.environ.get(LOG_LEVEL, "0"))
    except ValueError:
        return 0


def _flush() -> None:
    """Python's own buffered stderr first, so its lines land on the side of the switch they were written on."""
    if sys.stderr is not None:
        sys.stderr.flush()
