"""Tables for people as files: rows of one shape (dicts with the same keys) as a CSV, what the notebook
API's ``save`` and the command line's ``--csv`` write."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence


def csv_text(rows: Sequence[dict]) -> str:
    """Rows of one shape as CSV text with a header line (a page's download, a file)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Rows of one shape as a CSV file with a header line; returns its path."""
    path = Path(path)
    path.write_text(csv_text(rows), newline="")
    return path
