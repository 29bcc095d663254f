"""How API results show themselves: in Jupyter (``_repr_png_``, ``_repr_html_``) and as files (``save``).

A picture result draws itself once (the notebook asks for every format it knows); tables are HTML in a
notebook and CSV on disk. Results hold arrays and models, so they compare by identity (``eq=False``).
"""

from __future__ import annotations

import base64
import html
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Sequence

from PIL import Image

from convvis_core.images import to_png_bytes
from convvis_core.presentation.tables import write_csv

DISPLAY_SIDE = 160  # pictures smaller than this (28×28 digits) are enlarged by a whole factor to be seen


def figures_html(figures: Sequence[tuple[Image.Image, str]], title: str = "") -> str:
    """Pictures with their captions side by side (wrapping), under an optional title, as inline HTML."""
    items = "".join(
        f'<figure style="margin:4px;display:inline-block;vertical-align:top">'
        f'<img src="data:image/png;base64,{base64.b64encode(to_png_bytes(picture)).decode()}" '
        f'style="image-rendering:pixelated"/><figcaption style="max-width:{picture.width}px">'
        f"{html.escape(caption)}</figcaption></figure>" for picture, caption in figures)
    heading = f"<p><b>{html.escape(title)}</b></p>" if title else ""
    return f"<div>{heading}{items}</div>"


def table_html(rows: Sequence[dict], title: str = "") -> str:
    """Rows of one shape (dicts, same keys) as an HTML table, numbers to four significant digits."""
    if not rows:
        return f"<p>{html.escape(title)}: nothing to show</p>"
    cell = lambda value: f"{value:.4g}" if isinstance(value, float) else str(value)  # noqa: E731
    head = "".join(f"<th>{html.escape(str(key))}</th>" for key in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(value))}</td>" for value in row.values()) + "</tr>"
                   for row in rows)
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Pictured(ABC):
    """A result that is a picture: shown in a notebook with its caption, saved as a PNG."""

    @abstractmethod
    def draw(self) -> Image.Image:
        """The result as one picture."""

    @abstractmethod
    def caption(self) -> str:
        """What the picture shows, in a line."""

    @cached_property
    def picture(self) -> Image.Image:
        return self.draw()

    def _repr_png_(self) -> bytes:
        return to_png_bytes(self.picture)

    def _repr_html_(self) -> str:
        return figures_html([(self.picture, self.caption())])

    def save(self, path: str | Path) -> Path:
        """Write the picture as a PNG file; returns its path."""
        path = Path(path)
        self.picture.save(path, format="PNG")
        return path


class PicturedTable(Pictured):
    """A picture with a table of its numbers: both in a notebook; ``save`` writes the picture (PNG),
    ``save_csv`` the table."""

    @abstractmethod
    def rows(self) -> list[dict]:
        """The table, one dict per row."""

    def save_csv(self, path: str | Path) -> Path:
        """Write the table as a CSV file; returns its path."""
        return write_csv(self.rows(), path)

    def _repr_html_(self) -> str:
        return figures_html([(self.picture, self.caption())]) + table_html(self.rows())


class Tabled(ABC):
    """A result that is a table: HTML in a notebook, CSV on disk."""

    @abstractmethod
    def rows(self) -> list[dict]:
        """The table, one dict per row."""

    @abstractmethod
    def title(self) -> str:
        """What the table holds, in a line."""

    def _repr_html_(self) -> str:
        return table_html(self.rows(), self.title())

    def save(self, path: str | Path) -> Path:
        """Write the table as a CSV file; returns its path."""
        return write_csv(self.rows(), path)

