"""What a worker does with a unit, the same in this process (``local``) and in a Ray actor (``ray``).

A batch of filters is computed by :func:`visualize_filters` itself, exactly as the Filters page
computes it, through a cache that looks empty (so the whole batch is optimized together, as an
uninterrupted run would: a batch of another size may differ in the last bits) and that writes to
the job's cache folder, or, on a worker that cannot see that folder, hands the results back to the
driver. A shard is ranked by :func:`scan_layers`, one forward pass to every chosen layer per batch;
a Ray worker ranks one batch at a time (:func:`rank_placed`).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from convvis_core.atlas.plan import FilterUnit, Shard, pass_placement
from convvis_core.cache import Arrays, ResultCache
from convvis_core.datasets.base import Dataset
from convvis_core.errors import CacheError
from convvis_core.featureviz.render import visualize_filters
from convvis_core.featureviz.settings import Settings
from convvis_core.models import LoadedModel
from convvis_core.progress import StepProgress
from convvis_core.batches import pixel_batch
from convvis_core.topk import TopKIndex, rank_batch, scan_layers


def worker_name() -> str:
    """This process as a worker: ``host:pid`` (each Ray actor is a process of its own)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Work:
    """What one worker did: ``batches`` (of filters, or of images: each one forward pass to every layer, counted as
    the scan reports it) in ``seconds`` of its time."""

    worker: str
    batches: int
    seconds: float


@dataclass(frozen=True)
class FilterOutcome:
    unit: FilterUnit
    seconds: float
    entries: tuple[tuple[str, Arrays], ...] = ()  # the results, when the worker could not store them itself
    worker: str = ""  # who computed it (:func:`worker_name`)

    @property
    def work(self) -> tuple[Work, ...]:
        return (Work(self.worker, 1, self.seconds),)


@dataclass(frozen=True)
class ShardOutcome:
    shard: Shard
    pieces: tuple[TopKIndex, ...]  # one per layer, in the plan's order
    seconds: float
    work: tuple[Work, ...] = ()  # who ranked its image batches: one record per worker, or per batch


def cannot_write(folder: Path, reason: str) -> CacheError:
    return CacheError(f"The cache folder {folder} cannot be written ({reason}), so the atlas has nowhere to put its "
                      "results and stops. Make it writable or free disk space, or point $CONVVIS_CACHE_DIR at "
                      "another folder; finished units are kept and a rerun resumes after them.")


class UnitCache(ResultCache):
    """Looks empty; stores into ``folder`` (a write that fails stops the job) or, with no folder,
    collects the results for the driver."""

    def __init__(self, folder: Path | None):
        super().__init__(folder, memory_entries=0)
        self.collected: list[tuple[str, Arrays]] = []

    def get(self, key: str) -> Arrays | None:
        return None

    def put(self, key: str, arrays: Arrays) -> None:
        super().put(key, arrays)
        if self.unsaved:
            raise cannot_write(self.folder, self.unsaved)
        if self.folder is None:
            self.collected.append((key, arrays))


def render_unit(loaded: LoadedModel, settings: Settings, unit: FilterUnit, folder: Path | None) -> FilterOutcome:
    """Optimize the unit's filters in one batch; stored in ``folder``, or returned when it is None."""
    started = time.perf_counter()
    cache = UnitCache(folder)
    visualize_filters(loaded, unit.layer, list(unit.filters), settings, cache=cache)
    return FilterOutcome(unit, time.perf_counter() - started, tuple(cache.collected), worker_name())


def rank_shard(loaded: LoadedModel, dataset: Dataset, layers: tuple[str, ...], shard: Shard, keep: int,
               batch_size: int, progress: StepProgress | None = None) -> ShardOutcome:
    """The shard's images, read once, ranked for every layer in batches of ``batch_size`` (16, 32 or 64,
    see :func:`~convvis_core.atlas.plan.pass_placement`; the shard starts at a multiple of 16)."""
    started = time.perf_counter()
    passes = 0

    def counted(done: int, total: int) -> None:  # the scan reports each batch once its one pass is ranked
        nonlocal passes
        passes += 1
        if progress:
            progress(done, total)

    pieces = scan_layers(loaded, dataset, layers, shard.first, shard.stop, keep, batch_size, counted)
    seconds = time.perf_counter() - started
    return ShardOutcome(shard, tuple(pieces), seconds, (Work(worker_name(), passes, seconds),))


def rank_placed(loaded: LoadedModel, dataset: Dataset, layers: tuple[str, ...], batch: Shard, keep: int) -> ShardOutcome:
    """Images ``batch.first`` … ``batch.stop`` − 1 (any number, starting anywhere), read and ranked for every layer in
    one forward pass, each at the row a scan in batches of 64 gives it (row = index mod 16, see
    :func:`~convvis_core.atlas.plan.pass_placement`), so each image's values are bit-equal to the page's."""
    started = time.perf_counter()
    indices, images = next(dataset.batches(batch.stop - batch.first, batch.stop, batch.first))
    offset, rows = pass_placement(batch.first, len(indices))
    pieces = rank_batch(loaded, dataset.identity, layers, indices, pixel_batch(images, loaded.info), keep, rows, offset)
    seconds = time.perf_counter() - started
    return ShardOutcome(batch, tuple(pieces), seconds, (Work(worker_name(), 1, seconds),))


def configure_tensorflow(threads: int | None) -> None:
    """Before a worker's first TensorFlow operation: ``threads`` CPU threads per operation (so workers
    sharing a machine do not fight over its cores; the count also fixes how sums are split, hence the
    last bits of a picture), and GPU memory taken as needed rather than all at once."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
