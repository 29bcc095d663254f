"""One call each for what the app's other pages show, for a notebook: a layer's filters as pictures,
feature maps of a batch, a filter's top images in a dataset, its circuit, everything about one unit,
and two models compared. Each returns a result that shows itself in Jupyter and saves with ``save``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from convvis_core.activations import batch_feature_maps
from convvis_core.api.attribution import GradCAM, Heatmaps, Models, as_model
from convvis_core.api.display import DISPLAY_SIDE, Pictured, PicturedTable, Tabled, figures_html, table_html
from convvis_core.cam.targets import FilterTarget
from convvis_core.circuits import Circuit, FilterWeights, Readers, wiring
from convvis_core.circuits import circuit as input_circuit
from convvis_core.compare.changes import FilterChange, LayerSummary, layer_summaries
from convvis_core.compare.similarity import Similarity, compare_models
from convvis_core.config import TOPK_KEPT
from convvis_core.datasets.base import Dataset, pictures_dataset
from convvis_core.datasets.catalog import open_dataset
from convvis_core.errors import ConvVisError
from convvis_core.featureviz.presets import default_preset, fitted_preset
from convvis_core.featureviz.objectives import Term
from convvis_core.featureviz.render import FilterResult, visualize as render_objective, visualize_filters
from convvis_core.images import Fit, Images, ImageSource, as_images, one_image
from convvis_core.layers import default_layer, find_layer
from convvis_core.presentation.channel_grids import channel_grid
from convvis_core.presentation.filter_grids import caption, filter_grid, sort_by_activation, tile_image
from convvis_core.presentation.grids import captioned_column, captioned_grid, enlarged
from convvis_core.presentation.sheets import ExampleView, circuit_sheet, example_sheet, example_views
from convvis_core.topk import Example, TopKIndex, scan

GRID_SIDE = 512  # a channel grid is subsampled to stay within this many pixels a side


@dataclass(frozen=True, eq=False)
class FilterPictures(Pictured):
    """The image each filter of a layer responds to most, with the activation it reached; ``images`` is
    (N, H, W, 3) uint8 (or (N, H, W) for grayscale models), in the order asked."""

    layer: str
    preset: str
    results: tuple[FilterResult, ...] = field(repr=False)

    @property
    def images(self) -> np.ndarray:
        return np.stack([result.image for result in self.results])

    @property
    def activations(self) -> np.ndarray:
        """The activation each picture reached (the objective on the final image)."""
        return np.array([result.final_activation for result in self.results])

    def draw(self) -> Image.Image:
        return filter_grid(self.results, min_side=DISPLAY_SIDE // 2)

    def _repr_html_(self) -> str:
        return figures_html([(enlarged(Image.fromarray(tile_image(result)), DISPLAY_SIDE // 2), caption(result))
                             for result in sort_by_activation(self.results)], self.caption())

    def caption(self) -> str:
        dead, weak = sum(result.dead for result in self.results), sum(result.weak for result in self.results)
        return (f"{self.layer}: {len(self.results)} filters under the {self.preset} preset, strongest first, each "
                f"with the activation it reached" + (f"; {dead} dead (grey)" if dead else "")
                + (f"; {weak} weak (barely fired)" if weak else ""))


def filters(model: Models, layer: str, indices: int | Sequence[int], preset: str | None = None,
            **changes: Any) -> FilterPictures:
    """Feature visualization: the picture each filter of ``layer`` responds to most, under a named preset
    (default: the one the app picks for this model's input size), with any of its settings changed
    (``steps=32``); cached on disk as the app caches it."""
    model = as_model(model)
    indices = [int(indices)] if isinstance(indices, (int, np.integer)) else [int(index) for index in indices]
    name = preset or default_preset(model.info.input_size)
    settings = fitted_preset(name, model.info.input_size)
    results = visualize_filters(model, layer, indices, settings.replace(**changes) if changes else settings)
    return FilterPictures(find_layer(model.model, layer).path, name,
                          tuple(dataclasses.replace(result, preset=name) for result in results))


@dataclass(frozen=True, eq=False)
class ObjectivePictures(FilterPictures):
    """Pictures that maximize one objective of the algebra (``layer`` holds its text), optimized together."""

    def figures(self) -> list[tuple[Image.Image, str]]:
        return [(enlarged(Image.fromarray(tile_image(result)), DISPLAY_SIDE // 2), f"{result.final_activation:.3g}")
                for result in self.results]

    def draw(self) -> Image.Image:
        return captioned_grid(self.figures(), columns=min(len(self.results), 4))

    def _repr_html_(self) -> str:
        return figures_html(self.figures(), self.caption())

    def caption(self) -> str:
        return (f"{self.layer}: {len(self.results)} picture{'s' * (len(self.results) > 1)} under the {self.preset} "
                "preset, each with the objective's value on it")


def visualize(model: Models, objective: Term, preset: str | None = None, count: int = 1,
              **changes: Any) -> ObjectivePictures:
    """Feature visualization of any objective of the algebra, each term naming its layer:
    ``visualize(model, Channel("conv_pw_8_relu", 3) - 0.5 * Channel("conv_pw_8_relu", 7))``, or a
    ``Direction`` over a layer's channels, a ``Neuron``, a ``ClassLogit``, ``DeepDream``; ``count`` pictures
    from as many starts (add ``Diversity(layer)`` to push them apart); cached on disk as the app's are."""
    model = as_model(model)
    results = render_objective(model, objective, preset, count=count, **changes)
    return ObjectivePictures(str(objective), results[0].preset, tuple(results))


@dataclass(frozen=True, eq=False)
class Activations(Pictured):
    """A layer's feature maps for a batch: ``np.asarray(activations)`` (or ``.maps``) is (N, h, w, C)."""

    layer: str
    maps: np.ndarray = field(repr=False)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.maps if dtype is None else self.maps.astype(dtype)

    def draw(self) -> Image.Image:
        grids = [channel_grid(maps, "standardize", max_side=GRID_SIDE).to_pil("viridis") for maps in self.maps]
        return captioned_grid([(grid, f"#{i}") for i, grid in enumerate(grids)], columns=min(len(grids), 4))

    def caption(self) -> str:
        _, height, width, channels = self.maps.shape
        return (f"{self.layer}: every channel of each image's maps ({height}×{width}×{channels}), each channel "
                "standardized")


def activations(model: Models, images: Images, layer: str | None = None, fit: Fit = "stretch") -> Activations:
    """The feature maps of ``layer`` (default: the last with a real map) for a batch, from one forward pass."""
    model = as_model(model)
    path = (find_layer(model.model, layer) if layer else default_layer(model.model)).path
    return Activations(path, batch_feature_maps(model, as_images(images), [path], fit)[path])


def as_dataset(source: Dataset | str | Images) -> Dataset:
    """A dataset as the app's pickers give it (a built-in name: "gallery", "mnist"; a .zip or a folder), or
    the caller's own images."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, str):
        return open_dataset(source)
    return pictures_dataset(as_images(source))


@dataclass(frozen=True, eq=False)
class TopImages(Pictured):
    """The images of a dataset that excite one filter most, with where (the filter's map over each, the
    maximum's receptive field outlined and cropped). ``index`` ranks every filter of the layer: any other
    filter's examples are ``index.top.examples(filter, k)`` at once."""

    layer: str
    filter_index: int
    dataset: str
    index: TopKIndex = field(repr=False)
    views: tuple[ExampleView, ...] = field(repr=False)

    @property
    def examples(self) -> tuple[Example, ...]:
        return tuple(view.example for view in self.views)

    def draw(self) -> Image.Image:
        return example_sheet(self.views)

    def caption(self) -> str:
        return (f"{self.layer} #{self.filter_index}: the {len(self.views)} of {self.index.count:,} images of "
                f"{self.dataset} that excite it most, strongest first")

    def _repr_html_(self) -> str:
        return figures_html([(view.overlay, f"{view.caption} · max {view.example.value:.3g}") for view in self.views],
                            self.caption())


def top_k_images(model: Models, dataset: Dataset | str | Images, layer: str, filter_index: int, k: int = 9,
                 count: int | None = None) -> TopImages:
    """The ``k`` images of ``dataset`` (its first ``count``; default: all, up to the limit) that excite
    ``filter_index`` of ``layer`` most; the scan ranks every filter of the layer and is cached on disk."""
    if not 1 <= k <= TOPK_KEPT:
        raise ConvVisError(f"k must be 1 to {TOPK_KEPT} (the examples kept per filter).")
    model, data = as_model(model), as_dataset(dataset)
    index = scan(model, data, layer, count)
    examples = index.top.examples(filter_index, k)
    return TopImages(index.layer, filter_index, data.name, index,
                     tuple(example_views(model, data, index.layer, filter_index, examples)))


@dataclass(frozen=True, eq=False)
class CircuitView(PicturedTable):
    """A filter's strongest input channels with their kernel slices (BatchNorm folded, MobileNet's
    depthwise and pointwise composed) and signs; the feature visualizations too where they were asked for."""

    circuit: Circuit
    count: int
    filter_picture: np.ndarray | None = field(default=None, repr=False)
    input_pictures: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    def rows(self) -> list[dict]:
        return self.circuit.table(self.count)

    def draw(self) -> Image.Image:
        return circuit_sheet(self.circuit, self.count, self.filter_picture, self.input_pictures)

    def caption(self) -> str:
        found = self.circuit
        return (f"{found.layer} #{found.filter_index}: its {min(self.count, len(found.inputs))} strongest of "
                f"{len(found.inputs)} input channels of {found.conv}, reading {found.source or 'the image'}, by "
                f"{found.ranked_by}")


def circuit(model: Models, layer: str, filter_index: int, image: ImageSource | np.ndarray | None = None,
            count: int = 6, pictures: bool = False, preset: str | None = None) -> CircuitView:
    """The input channels that drive a filter, ranked by kernel-slice norm, or by contribution on
    ``image``; with ``pictures``, the filter's and its inputs' feature visualizations (``preset``)."""
    model = as_model(model)
    found = input_circuit(model, layer, filter_index, None if image is None else one_image(image))
    if not pictures:
        return CircuitView(found, count)
    own = tile_image(filters(model, layer, filter_index, preset).results[0])
    inputs = (tuple(tile_image(result) for result in filters(
        model, found.source, [channel.index for channel in found.top(count)], preset).results)
              if found.source else None)
    return CircuitView(found, count, own, inputs)


@dataclass(frozen=True, eq=False)
class Unit(Pictured):
    """Everything about one filter (OpenAI Microscope's unit page): its picture, its weights, the input
    channels that drive it and the later filters it drives, its top images in a dataset and its map on an
    image, where those were given. A layer without weights of its own (a pooling) has no weights or circuits."""

    layer: str
    filter_index: int
    own: FilterPictures = field(repr=False)
    weights: FilterWeights | None = None
    inputs: Circuit | None = field(default=None, repr=False)
    outputs: Readers | None = field(default=None, repr=False)
    examples: TopImages | None = field(default=None, repr=False)
    heatmap: Heatmaps | None = field(default=None, repr=False)
    count: int = 6

    def sections(self) -> list[tuple[Image.Image, str]]:
        """(picture, title) of each part there is, in the unit page's order."""
        reached = (f"{self.layer} #{self.filter_index}: activation reached {self.own.results[0].final_activation:.4g} "
                   f"({self.own.preset} preset)")
        parts = [(self.own.draw(), reached) if self.inputs is None else
                 (circuit_sheet(self.inputs, self.count, tile_image(self.own.results[0]), None),
                  f"{reached}; below, circuit in: the strongest inputs of {self.inputs.conv}")]
        if self.examples is not None:
            parts.append((self.examples.picture, self.examples.caption()))
        if self.heatmap is not None:
            parts.append((self.heatmap.picture, f"where it fires: {self.heatmap.caption()}"))
        return parts

    def facts(self) -> list[dict]:
        """Its weights and its strongest readers, as rows."""
        rows = []
        if self.weights is not None:
            weights = self.weights
            rows.append({"what": "weights", "value": f"norm {weights.norm:.3g} (rank {weights.rank} of "
                                                     f"{weights.filters}), bias {weights.bias:+.3g}"})
        if self.outputs is not None:
            rows += [{"what": f"drives {connection.name}", "value": f"norm {connection.norm:.3g}, {connection.sign}"}
                     for connection in self.outputs.top(self.count)]
        return rows

    def draw(self) -> Image.Image:
        return captioned_column(self.sections())

    def caption(self) -> str:
        return f"unit {self.layer} #{self.filter_index}"

    def _repr_html_(self) -> str:
        return figures_html(self.sections(), self.caption()) + table_html(self.facts())


def unit(model: Models, layer: str, filter_index: int, dataset: Dataset | str | Images | None = None,
         image: ImageSource | np.ndarray | None = None, preset: str | None = None, count: int = 6, k: int = 5) -> Unit:
    """Everything about one filter in one call: its feature visualization (``preset``), weights, circuit in
    and out (``count`` connections), its top ``k`` images in ``dataset`` and its Grad-CAM on ``image``,
    where given."""
    model = as_model(model)
    own = filters(model, layer, filter_index, preset)
    path = own.layer
    try:
        inputs, outputs, weights = wiring(model, path, filter_index)
    except ConvVisError:  # a pooling or input layer: no weights of its own (as the unit page says)
        inputs = outputs = weights = None
    examples = None if dataset is None else top_k_images(model, dataset, path, filter_index, k)
    heatmap = None if image is None else GradCAM(model, path)([one_image(image)], FilterTarget(path, filter_index))
    return Unit(path, filter_index, own, weights, inputs, outputs, examples, heatmap, count)


@dataclass(frozen=True, eq=False)
class Comparison(Tabled):
    """Two models over the same images, layer by layer: linear CKA (1: the same representation up to a
    rotation and scale) and the mean change of each matched layer's filters. ``similarity`` holds every
    number (the CKA matrix, per-filter activation correlations); ``changes`` each layer's filters, most
    changed first."""

    model_a: str
    model_b: str
    dataset: str
    similarity: Similarity = field(repr=False)
    summaries: list[LayerSummary] = field(repr=False)

    @property
    def changes(self) -> dict[str, list[FilterChange]]:
        return {summary.layer: summary.filters for summary in self.summaries}

    def rows(self) -> list[dict]:
        return [{"layer": summary.layer, "counterpart": summary.counterpart, "CKA": summary.cka,
                 "weight change": summary.weight_change, "activation change": summary.activation_change}
                for summary in self.summaries]

    def title(self) -> str:
        return (f"{self.model_a} (A) vs {self.model_b} (B): linear CKA over {self.similarity.count:,} images of "
                f"{self.dataset}; changes are means over each layer's filters")


def compare(model_a: Models, model_b: Models, dataset: Dataset | str | Images, count: int | None = None,
            layers: Sequence[str] | None = None) -> Comparison:
    """What changed between two models (fine-tuning, another run, pruning) over the first ``count``
    images of ``dataset``: matched layers (or ``layers``), their CKA and their filters' changes."""
    model_a, model_b, data = as_model(model_a), as_model(model_b), as_dataset(dataset)
    similarity = compare_models(model_a, model_b, data, count, layers)
    return Comparison(model_a.info.display_name, model_b.info.display_name, data.name, similarity,
                      layer_summaries(model_a, model_b, similarity))
