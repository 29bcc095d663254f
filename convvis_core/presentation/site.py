"""A static Microscope of a model for lectures without a server: plain HTML and PNG files.

``export_site`` writes an index of layers, a grid page per layer and a page per filter (its picture,
its numbers, its dataset top-k with receptive-field crops, its circuit in and out), all linked with
relative paths, so the folder opens from ``file://`` on a USB stick or goes on any web server. It
reads what an atlas (or the pages) computed into the cache and computes nothing expensive itself:
a filter with no picture yet is shown as "not computed".

With a :class:`Comparison` (``convvis atlas A --compare B``) it also writes B's own site into ``other/``
and a compare page per layer both models have (``compare/<layer>.html``): the layer's CKA and the
filters that changed most, each with both models' pictures linking to both models' unit pages.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from convvis_core.circuits import Readers, circuit, filter_weights, readers
from convvis_core.compare.changes import change_text, most_changed
from convvis_core.compare.similarity import Similarity
from convvis_core.datasets.base import Dataset
from convvis_core.presentation.sheets import example_views
from convvis_core.errors import ConvVisError
from convvis_core.featureviz import FilterResult, Settings, cached_filters
from convvis_core.presentation.filter_grids import state, tile_image
from convvis_core.images import to_png_bytes
from convvis_core.layers import find_layer
from convvis_core.models.base import LoadedModel
from convvis_core.topk import TopKIndex, cached_index

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
a{color:#2b5d8c}img{image-rendering:pixelated;border-radius:4px}.grid{display:flex;flex-wrap:wrap;gap:12px}
.cell{width:128px;font-size:13px;text-align:center}.cell img,.missing{width:128px;height:128px}
.hero img,.hero .missing{width:256px;height:256px}.missing{background:#eee;display:flex;align-items:center;justify-content:center;color:#888}
.row{display:flex;gap:16px;flex-wrap:wrap}.ex{width:240px;font-size:13px}.ex img{width:240px}
nav{margin-bottom:1rem}.num{font-size:1.4rem}.excitatory{color:#c0392b}.inhibitory{color:#2b5d8c}
.changes td,.changes th{padding:4px 12px;text-align:center}.changes img{width:128px;height:128px}"""


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    layers: int
    units: int
    pictures: int  # units with a computed picture
    with_examples: int  # units with dataset examples
    compared: int = 0  # compare pages (layers both models have)
    output: str = ""  # the head explained, of a model with several outputs ("" for a model with one)


@dataclass(frozen=True)
class Comparison:
    """Model B beside the exported model A: B's pictures and top-k come from B's own atlas (same layers,
    settings and dataset), the CKA and the changed filters from :func:`compare_models`."""

    other: LoadedModel
    similarity: Similarity
    top: int = 8  # changed filters shown per layer


def slug(path: str) -> str:
    """A layer path as a file name ("base/conv_pw_3_relu" -> "base__conv_pw_3_relu")."""
    return path.replace("/", "__").replace(":", "_")


def _page(title: str, body: str, up: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<link rel='stylesheet' href='{up}style.css'></head><body>{body}</body></html>")


def _write_page(path: Path, title: str, body: str, up: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(title, body, up), encoding="utf-8")


def _png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png_bytes(image))


class _Site:
    """Writes the pages; every link is relative (``up`` leads back to the site's root)."""

    def __init__(self, loaded: LoadedModel, folder: Path, layers: Sequence[str], settings: Settings,
                 dataset: Dataset | None, count: int | None, examples: int, connections: int,
                 comparison: Comparison | None = None):
        self.loaded, self.folder, self.layers, self.settings = loaded, Path(folder), list(layers), settings
        self.comparison = comparison
        self.compared = [] if comparison is None else [layer for layer in comparison.similarity.matched
                                                        if layer in self.layers]
        self.dataset, self.count, self.examples, self.connections = dataset, count, examples, connections
        self.channels = {layer: find_layer(loaded.model, layer).channels for layer in self.layers}
        self.pictures = {layer: cached_filters(loaded, layer, range(self.channels[layer]), settings)
                         for layer in self.layers}

    def unit_href(self, layer: str, index: int, up: str) -> str | None:
        return f"{up}units/{slug(layer)}/{index}.html" if layer in self.channels else None

    def picture(self, layer: str, index: int, up: str) -> str:
        """An <img> of a filter's picture (written once), or a placeholder."""
        result: FilterResult | None = self.pictures.get(layer, {}).get(index)
        if result is None:
            return "<div class='missing'>not computed</div>"
        relative = Path("img") / slug(layer) / f"{index}.png"
        if not (self.folder / relative).exists():
            _png(Image.fromarray(tile_image(result)), self.folder / relative)
        return f"<img src='{up}{relative.as_posix()}' alt='{html.escape(layer)} #{index}'>"

    def compare_link(self, layer: str, up: str) -> str:
        """A link to the layer's compare page, where it has one (after a separating dot)."""
        if layer not in self.compared:
            return ""
        name = html.escape(self.comparison.other.info.display_name)
        return f" · <a href='{up}compare/{slug(layer)}.html'>compared with {name}</a>"

    def write(self) -> ExportSummary:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "style.css").write_text(STYLE, encoding="utf-8")
        info = self.loaded.info
        rows = "".join(f"<li><a href='layers/{slug(layer)}.html'>{html.escape(layer)}</a>: "
                       f"{len(self.pictures[layer])} of {self.channels[layer]} filters computed"
                       f"{self.compare_link(layer, '')}</li>"
                       for layer in self.layers)
        other = "" if self.comparison is None else (
            f"<p>Compared with <a href='other/index.html'>{html.escape(self.comparison.other.info.display_name)}</a> "
            f"over {self.comparison.similarity.count:,} images: a compare page per layer both have.</p>")
        _write_page(self.folder / "index.html", info.display_name, (
            f"<h1>{html.escape(info.display_name)}</h1><p>{html.escape(info.description)}</p>{self.head_text()}"
            f"<p>Feature visualizations: {html.escape(self.settings_text())}. Made by ConvVis.</p>{other}<ul>{rows}</ul>"),
            "")
        units = with_examples = 0
        for layer in self.layers:
            self.write_layer(layer)
            index = None if self.dataset is None else cached_index(self.loaded, self.dataset, layer, self.count)
            for f in range(self.channels[layer]):
                with_examples += self.write_unit(layer, f, index)
                units += 1
        if self.comparison is not None:
            counterparts = [self.comparison.similarity.counterpart(layer) for layer in self.compared]
            theirs = _Site(self.comparison.other, self.folder / "other", counterparts, self.settings, self.dataset,
                           self.count, self.examples, self.connections)
            theirs.write()
            for layer in self.compared:
                self.write_comparison(layer, theirs)
        return ExportSummary(self.folder, len(self.layers), units, sum(map(len, self.pictures.values())),
                             with_examples, len(self.compared), info.output_info.name if len(info.outputs) > 1 else "")

    def head_text(self) -> str:
        """For a model with several outputs, which one the site explains (its layers are those that compute it, its
        circuits lead towards it): its name, what it holds, its first classes."""
        info = self.loaded.info
        if len(info.outputs) <= 1:
            return ""
        head = info.output_info
        classes = head.class_names or ()
        named = f": {', '.join(classes[:10])}{', …' if len(classes) > 10 else ''}" if classes else ""
        return (f"<p>Explains output <b>{html.escape(head.name)}</b> (index {info.output} of its {len(info.outputs)} "
                f"outputs); it {html.escape(head.holds)}{html.escape(named)}.</p>")

    def settings_text(self) -> str:
        s = self.settings
        return f"{s.parameterization} image, {s.optimizer}, {s.steps} steps, {s.size} px, seed {s.seed}"

    def write_layer(self, layer: str) -> None:
        cells = "".join(
            f"<div class='cell'><a href='{self.unit_href(layer, f, '../')}'>{self.picture(layer, f, '../')}<br>#{f}"
            f"{html.escape(state(self.pictures[layer][f])) if f in self.pictures[layer] else ''}</a></div>"
            for f in range(self.channels[layer]))
        body = (f"<nav><a href='../index.html'>{html.escape(self.loaded.info.display_name)}</a></nav>"
                f"<h1>{html.escape(layer)}</h1><p>{self.channels[layer]} filters{self.compare_link(layer, '../')}</p>"
                f"<div class='grid'>{cells}</div>")
        _write_page(self.folder / "layers" / f"{slug(layer)}.html", layer, body, "../")

    def write_comparison(self, layer: str, theirs: "_Site") -> None:
        """The layer's compare page: its CKA and its most changed filters, A's picture beside B's."""
        up, there = "../", "../other/"
        comparison = self.comparison
        counterpart = comparison.similarity.counterpart(layer)  # B's path: the same, or B's nesting of it
        names = [html.escape(self.loaded.info.display_name), html.escape(comparison.other.info.display_name)]
        rows = "".join(
            f"<tr><td>#{change.filter}</td><td>{change_text(change.activation_change)}</td>"
            f"<td>{change_text(change.weight_change)}</td>"
            f"<td><a href='{self.unit_href(layer, change.filter, up)}'>{self.picture(layer, change.filter, up)}</a></td>"
            f"<td><a href='{theirs.unit_href(counterpart, change.filter, there)}'>"
            f"{theirs.picture(counterpart, change.filter, there)}</a></td></tr>"
            for change in most_changed(self.loaded, comparison.other, comparison.similarity, layer, comparison.top))
        body = (f"<nav><a href='{up}index.html'>{names[0]}</a> · <a href='{up}layers/{slug(layer)}.html'>"
                f"{html.escape(layer)}</a> · <a href='{there}layers/{slug(counterpart)}.html'>{names[1]}: "
                f"{html.escape(counterpart)}</a></nav><h1>{html.escape(layer)}: {names[0]} (A) vs {names[1]} (B)</h1>"
                f"<p class='num'>linear CKA {change_text(comparison.similarity.layer_cka(layer), digits=6)}</p>"
                f"<p>over {comparison.similarity.count:,} images (1: the layer represents the images alike). The "
                f"filters that changed most: activation change = 1 − correlation of the filter's activations over "
                f"the same images, weight change = ‖W_B − W_A‖ / ‖W_A‖ (— where not measured).</p>"
                f"<table class='changes'><tr><th>filter</th><th>activation change</th><th>weight change</th>"
                f"<th>{names[0]} (A)</th><th>{names[1]} (B)</th></tr>{rows}</table>")
        _write_page(self.folder / "compare" / f"{slug(layer)}.html", f"{layer}: A vs B", body, up)

    def connection_cells(self, layer: str | None, connections, up: str) -> str:
        """Pictures (where exported) and numbers of connected filters, each linking to its unit page."""
        cells = []
        for c in connections:
            href = None if layer is None else self.unit_href(layer, c.index, up)
            picture = self.picture(layer, c.index, up) if layer in self.channels else ""
            opening, closing = (f"<a href='{href}'>", "</a>") if href else ("", "")
            cells.append(f"<div class='cell'>{opening}{picture}<br>{html.escape(c.name)}{closing}<br>"
                         f"<span class='{c.sign}'>{c.sign}</span> · norm {c.norm:.2g}</div>")
        return "<div class='grid'>" + "".join(cells) + "</div>"

    def write_unit(self, layer: str, f: int, index: TopKIndex | None) -> bool:
        up, count = "../../", self.channels[layer]
        nav = [f"<a href='{up}index.html'>{html.escape(self.loaded.info.display_name)}</a>",
               f"<a href='{up}layers/{slug(layer)}.html'>{html.escape(layer)}</a>"]
        nav += [f"<a href='{f - 1}.html'>← #{f - 1}</a>"] if f > 0 else []
        nav += [f"<a href='{f + 1}.html'>#{f + 1} →</a>"] if f + 1 < count else []
        result = self.pictures[layer].get(f)
        numbers = "" if result is None else (f"<p class='num'>activation reached {result.final_activation:.4g} "
                                             f"(from {result.start_activation:.3g}){html.escape(state(result))}</p>")
        try:
            weights = filter_weights(self.loaded.model, layer, f)
            found = circuit(self.loaded, layer, f)
            out: Readers | None = readers(self.loaded.model, layer, f)
            numbers += (f"<p>weight norm {weights.norm:.3g} (rank {weights.rank} of {weights.filters}), bias "
                        f"{weights.bias:+.3g}</p><h2>Circuit in: what drives it</h2><p>the strongest inputs from "
                        f"{html.escape(found.source or 'the image')}</p>"
                        + self.connection_cells(found.source, found.top(self.connections), up))
            numbers += "<h2>Circuit out: what it drives</h2>" + (
                "<p>No later convolution reads it.</p>" if out is None else
                f"<p>filters of {html.escape(out.reader_layer)}</p>"
                + self.connection_cells(out.reader_layer, out.top(self.connections), up))
        except ConvVisError as error:  # pooling and input layers have no weights of their own
            numbers += f"<p>No weights to read: {html.escape(str(error))}</p>"
        examples = ""
        if index is not None:
            shown = []
            for name, ranking in (("top", index.top), ("bottom", index.bottom)):
                views = example_views(self.loaded, self.dataset, layer, f, ranking.examples(f, self.examples))
                for view in views:
                    relative = f"examples/{slug(layer)}/{f}-{name}-{view.example.rank}"
                    _png(view.overlay, self.folder / f"{relative}.png")
                    _png(view.crop, self.folder / f"{relative}-crop.png")
                    shown.append(f"<div class='ex'><img src='{up}{relative}.png'><br>{name} {view.example.rank}: "
                                 f"{html.escape(view.caption)} · max {view.example.value:.3g}<br>"
                                 f"<img src='{up}{relative}-crop.png' style='width:112px'></div>")
            examples = (f"<h2>Dataset examples ({html.escape(self.dataset.name)}, {index.count:,} images)</h2>"
                        f"<div class='row'>{''.join(shown)}</div>")
        body = (f"<nav>{' · '.join(nav)}</nav><h1>{html.escape(layer)} · filter {f}</h1>"
                f"<div class='row'><div class='hero'>{self.picture(layer, f, up)}</div><div>{numbers}</div></div>{examples}")
        _write_page(self.folder / "units" / slug(layer) / f"{f}.html", f"{layer} #{f}", body, up)
        return index is not None


def export_site(loaded: LoadedModel, layers: Sequence[str], folder: str | Path, settings: Settings,
                dataset: Dataset | None = None, count: int | None = None, examples: int = 6,
                connections: int = 6, comparison: Comparison | None = None) -> ExportSummary:
    """Write the static site for ``layers`` into ``folder`` from what the cache holds (see the module); with a
    ``comparison``, B's site into ``other/`` and a compare page per layer both models have."""
    return _Site(loaded, Path(folder), layers, settings, dataset, count, examples, connections, comparison).write()
