"""Tables for people as files: rows of one shape (dicts with the same keys) as a CSV, what the notebook
API's ``save`` and the command line's ``--csv`` write."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Rows of one shape as a CSV file with a header line; returns its path."""
    path = Path(path)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return path
