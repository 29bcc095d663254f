"""What an atlas job computes, cut into units of work that are each cached whole.

A unit is either one batch of filters of one layer (the batch the Filters page would optimize
together) or one shard of the dataset (a run of whole top-k batches, for every chosen layer at once).
Each unit knows the cache keys of its results, so whether it is done is read from the cache itself:
a unit whose results are all there is skipped, whoever computed them (an earlier run, another
process, a page).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convvis_core.batches import scan_count
from convvis_core.cache import ResultCache, cache_key
from convvis_core.config import TOPK_KEPT
from convvis_core.datasets.base import Dataset
from convvis_core.datasets.catalog import open_dataset
from convvis_core.errors import ConvVisError
from convvis_core.featureviz import render
from convvis_core.featureviz.presets import preset
from convvis_core.featureviz.selection import parse_filters
from convvis_core.featureviz.settings import Settings
from convvis_core.layers import find_layer, spatial_layers
from convvis_core.models import LoadedModel, load_model
from convvis_core import topk

SHARD_BATCHES = 16  # a shard is 16 top-k batches (1,024 images): at most that is lost to a kill mid-scan
MIN_PASS = 16  # rows of a forward pass at least, and the period of an image's row in it (:func:`pass_placement`)


def batch_for(images: int, workers: int, batch_size: int = topk.BATCH_SIZE) -> int:
    """Images per top-k batch when ``workers`` rank ``images``: the plan's batch, or fewer when the images
    would not fill a batch for every worker, so none waits idle (12 images, 2 workers: 6 each)."""
    return max(1, min(batch_size, -(-images // max(1, workers))))


def pass_placement(first: int, count: int) -> tuple[int, int]:
    """Where a batch of ``count`` images from image ``first`` goes in its forward pass: (offset, rows).

    An image's values depend in their last bits on its row in the pass, not on the pass's size or on the
    other images: measured on this project's CPUs (AVX2 and AVX512), MobileNet's and LeNet's indexes
    are bit-equal between passes of 16, 32, 64 and 128 rows with every image at row = its index mod 16
    (as a scan in batches of 64 puts it), but a pass of 1 row changes maxima, and batches of 2, 3 or 6
    images at rows 0… change LeNet's means (a per-image mean is vectorized over images x channels, in
    packets of 8 or 16 floats). So the batch starts at row ``first`` mod 16, in 16, 32, 64 or 128 rows.
    """
    offset = first % MIN_PASS
    rows = MIN_PASS
    while rows < offset + count:
        rows *= 2
    return offset, rows


@dataclass(frozen=True)
class AtlasRequest:
    """What to precompute. ``model`` and ``dataset`` are names or paths that every worker opens itself."""

    model: str
    layers: tuple[str, ...] = ()  # none: every spatial layer
    filters: str | None = None  # "0-31,40" for each layer; None: every filter of each layer
    preset: str = "Lucid"
    steps: int | None = None  # the preset's unless given
    size: int | None = None
    dataset: str | None = None  # top-k over this dataset too (gallery, mnist, a folder or .zip)
    images: int | None = None  # its first N images (None: all, up to the scan limit)
    preprocessing: str | None = None  # None: the model's own (inferred for files)
    output: int | str | None = None  # the head explained, by index or name, of a model with several (None: the first)
    output_kind: str | None = None  # read that head as "classes" or "values" (None: inferred from it)


def open_model(request: AtlasRequest) -> LoadedModel:
    """The request's model as the driver and every worker read it: the chosen head (its view: the layers that
    compute it, the keys its results are cached under) read with the chosen pixels."""
    loaded = load_model(request.model).with_output(request.output, request.output_kind)
    return loaded.with_preprocessing(request.preprocessing, "--preprocessing") if request.preprocessing else loaded


@dataclass(frozen=True)
class FilterUnit:
    """Filters of one layer optimized together in one batch."""

    layer: str
    filters: tuple[int, ...]
    keys: tuple[str, ...]  # each filter's result key, as the Filters page computes it

    @property
    def name(self) -> str:
        return f"{self.layer} #{self.filters[0]}–{self.filters[-1]}"


@dataclass(frozen=True)
class Shard:
    """Images ``first`` … ``stop`` − 1 ranked for every chosen layer in one pass; one piece per layer."""

    first: int
    stop: int
    keys: tuple[str, ...]  # each layer's piece

    @property
    def name(self) -> str:
        return f"images {self.first}–{self.stop - 1}"


@dataclass(frozen=True)
class Plan:
    """A request resolved against the loaded model: settings, units, keys and the caches they go to."""

    request: AtlasRequest
    loaded: LoadedModel
    layers: tuple[str, ...]  # the request's, each once
    settings: Settings
    units: tuple[FilterUnit, ...]
    dataset: Dataset | None
    count: int  # images ranked (0 without a dataset)
    shards: tuple[Shard, ...]
    index_keys: tuple[str, ...]  # each layer's finished top-k index, as the Top k page looks it up
    folder: Path  # the cache root: results go to its featureviz and top-k folders, as the pages' do
    keep: int = TOPK_KEPT
    batch_size: int = topk.BATCH_SIZE

    @property
    def filter_cache(self) -> ResultCache:
        return ResultCache(self.folder / render.CACHE_NAMESPACE)

    @property
    def topk_cache(self) -> ResultCache:
        return ResultCache(self.folder / topk.CACHE_NAMESPACE)

    @property
    def job_id(self) -> str:
        """The same for every run of the same job: it names the job's manifest."""
        return cache_key("atlas", [unit.keys for unit in self.units], self.index_keys)[:24]

    def pass_rows(self, workers: int) -> int:
        """Rows of the top-k forward passes when ``workers`` rank the plan's images (see :func:`batch_for`)."""
        return pass_placement(0, batch_for(self.count, workers, self.batch_size))[1]

    @property
    def filter_count(self) -> int:
        return sum(len(unit.filters) for unit in self.units)


def make_plan(request: AtlasRequest, loaded: LoadedModel, folder: Path) -> Plan:
    """Validate the request (layers, filters, preset, dataset) and cut it into units."""
    try:
        settings = preset(request.preset).replace(**{name: value for name, value in (("steps", request.steps),
                                                     ("size", request.size)) if value is not None})
    except ValueError as error:
        raise ConvVisError(str(error)) from error
    layers = tuple(dict.fromkeys(request.layers)) or tuple(layer.path for layer in spatial_layers(loaded.model))
    units = []
    for layer in layers:
        channels = find_layer(loaded.model, layer).channels
        filters = parse_filters(request.filters, channels) if request.filters else list(range(channels))
        per_batch = settings.batch_size
        for start in range(0, len(filters), per_batch):
            chunk = tuple(filters[start:start + per_batch])
            units.append(FilterUnit(layer, chunk, tuple(render.result_key(loaded, layer, f, settings) for f in chunk)))
    dataset, count, shards, index_keys = None, 0, (), ()
    if request.dataset:
        dataset = open_dataset(request.dataset, any_size=True)
        count = scan_count(dataset, request.images)
        index_keys = tuple(topk.index_key(loaded, dataset, layer, count, TOPK_KEPT) for layer in layers)
        size = SHARD_BATCHES * topk.BATCH_SIZE  # a multiple of the batch: shards see the batches of one pass
        shards = tuple(Shard(first, min(first + size, count),
                             tuple(cache_key("atlas-piece", key, first, min(first + size, count)) for key in index_keys))
                       for first in range(0, count, size))
    return Plan(request, loaded, layers, settings, tuple(units), dataset, count, shards, index_keys, folder)
