"""The ``ray`` engine: the same units on a Ray cluster (a local one started here, or ``address``).

Filters: one actor per worker holds the model; batches of filters are its tasks. Top-k: the dataset
is a Ray Dataset of image batches (read and decoded by tasks), ranked by a pool of actors that each
hold the model (``map_batches``); each batch's per-channel rankings come back to the driver and are
merged exactly, shard by shard. Fewer images than a batch per worker are cut into smaller batches, one
or more per worker (:func:`~convvis_core.atlas.plan.batch_for`); the pool starts all its actors before
the first batch and gives each one batch at a time, so every worker ranks. Every actor's CPUs are set explicitly, and while the dataset is
ranked the actors leave at least part of a CPU free: a pool that takes every CPU starves Ray Data's
read step and the job hangs (ray-project/ray #44687, seen with Ray 2.60 on a 2-CPU machine). GPU
workers are used when the cluster has GPUs.

Results go straight into the cache folder when the workers can see it (same machine, or a folder
they share, checked with a token the driver writes there), else back to the driver, which stores them.
"""

from __future__ import annotations

import bisect
import logging
import pickle
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import ray
import ray.data
from ray.util import ActorPool

from convvis_core.atlas.plan import FilterUnit, Plan, Shard, batch_for, open_model
from convvis_core.atlas.work import FilterOutcome, ShardOutcome, Work, configure_tensorflow, rank_placed, render_unit, worker_name
from convvis_core.cache import unwritable
from convvis_core.datasets.base import Dataset
from convvis_core.featureviz import render
from convvis_core.featureviz.settings import Settings
from convvis_core.models.base import ModelInfo
from convvis_core.parallel import cores
from convvis_core.topk import TopKIndex, pixel_batch


def _visible(folder: Path, token: str) -> Path | None:
    """``folder`` if this worker sees the driver's cache folder (the token file it wrote) and can write it."""
    probe = folder / "atlas" / f".probe-{token}"
    try:
        seen = probe.read_text() == token
    except OSError:
        return None
    return folder if seen and unwritable(folder) is None else None


class _FilterWorker:
    """A Ray actor: the model, loaded once, optimizing batches of filters."""

    def __init__(self, model: str, preprocessing: str | None, settings: Settings, folder: Path, token: str,
                 threads: int | None):
        configure_tensorflow(threads)
        self.loaded = open_model(model, preprocessing)
        self.settings = settings
        shared = _visible(folder, token)
        self.folder = None if shared is None else shared / render.CACHE_NAMESPACE

    def render(self, unit: FilterUnit) -> FilterOutcome:
        return render_unit(self.loaded, self.settings, unit, self.folder)


_DATASETS: dict[str, Dataset] = {}  # per worker process: each dataset is unpickled once, not once per batch


def _read(batch: dict[str, np.ndarray], dataset: ray.ObjectRef, info: ModelInfo, size: int) -> dict[str, np.ndarray]:
    """Ray Data's read step, as tasks: one row (first, stop) → that batch decoded into the model's
    input pixels, padded to ``size`` images so every row has one shape."""
    first, stop = int(batch["first"][0]), int(batch["stop"][0])
    opened = _DATASETS.get(dataset.hex()) or _DATASETS.setdefault(dataset.hex(), ray.get(dataset))
    _, images = next(opened.batches(stop - first, stop, first))
    pixels = pixel_batch(images, info)
    padded = np.zeros((size, *pixels.shape[1:]), np.uint8)
    padded[:len(pixels)] = pixels
    return {"first": np.array([first]), "count": np.array([stop - first]), "pixels": padded[None]}


class _Ranker:
    """A Ray Data actor: the model, loaded once, ranking one batch of images for every layer (each image
    at the row of the forward pass that the page's scan gives it: :func:`rank_placed`)."""

    def __init__(self, model: str, preprocessing: str | None, layers: tuple[str, ...], dataset: str, keep: int,
                 threads: int | None):
        configure_tensorflow(threads)
        self.loaded = open_model(model, preprocessing)
        self.layers, self.identity, self.keep = layers, dataset, keep
        self.worker = worker_name()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        first, count = int(batch["first"][0]), int(batch["count"][0])
        pieces = rank_placed(self.loaded, self.identity, self.layers, np.arange(first, first + count),
                             batch["pixels"][0][:count], self.keep)
        result = pickle.dumps((first, count, time.perf_counter() - started, self.worker, pieces))
        return {"result": np.array([result], dtype=object)}


@dataclass
class RayEngine:
    """``workers`` actors (default: one per GPU, else one per CPU), each computing with ``threads``
    TensorFlow threads (default: its share of the CPUs)."""

    address: str | None = None  # None: start a local Ray on this machine's cores
    workers: int | None = None
    threads: int | None = None
    temp_dir: str | None = None  # a local Ray's session files (default: Ray's own)

    def start(self, plan: Plan) -> None:
        self.plan = plan
        self.probe: Path | None = None
        self._started = not ray.is_initialized()
        if self._started:
            options = {"address": self.address} if self.address else {
                "num_cpus": cores(), "include_dashboard": False, "_temp_dir": self.temp_dir}
            ray.init(**options, log_to_driver=False, logging_level=logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        resources = ray.cluster_resources()
        self.cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
        self.count = self.workers or int(gpus) or max(1, int(self.cpus))
        self.gpus_each = min(1.0, gpus / self.count) if gpus else 0.0
        self.threads_each = self.threads or max(1, int(self.cpus // self.count))
        # Actors on GPUs need a CPU each at most, leaving the rest to decode images. While the dataset is
        # ranked, the actors leave part of the CPUs to Ray Data's read step, or it waits forever (#44687).
        share, ranking_share = self.cpus / self.count, (self.cpus - min(1.0, self.cpus / 2)) / self.count
        self.filter_cpus = min(1.0, share) if gpus else share
        self.ranking_cpus = min(1.0, ranking_share) if gpus else ranking_share
        model = Path(plan.request.model)
        self.model = str(model.resolve()) if model.is_file() else plan.request.model  # workers' own folders differ
        self.token = secrets.token_hex(8)
        self.probe = plan.folder / "atlas" / f".probe-{self.token}"
        self.probe.parent.mkdir(parents=True, exist_ok=True)
        self.probe.write_text(self.token)

    def describe(self) -> str:
        where = self.address or "a local Ray"
        kind = f"{self.gpus_each:g} GPU" if self.gpus_each else f"{self.threads_each} TensorFlow thread(s)"
        return f"ray ({where}, {self.cpus:g} CPUs: {self.count} worker(s), each {kind})"

    def _options(self, cpus: float) -> dict:
        return {"num_cpus": cpus, "num_gpus": self.gpus_each,
                "runtime_env": {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}}}

    def filters(self, units: Iterable[FilterUnit]) -> Iterator[FilterOutcome]:
        units = list(units)
        if not units:
            return
        plan = self.plan
        remote = ray.remote(_FilterWorker).options(**self._options(self.filter_cpus))
        actors = [remote.remote(self.model, plan.request.preprocessing, plan.settings, plan.folder, self.token,
                                self.threads_each) for _ in range(min(self.count, len(units)))]
        try:
            yield from ActorPool(actors).map_unordered(lambda actor, unit: actor.render.remote(unit), units)
        finally:
            for actor in actors:  # their CPUs go back before the dataset needs them
                ray.kill(actor)

    def shards(self, shards: Iterable[Shard], advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        shards = list(shards)
        if not shards:
            return
        plan = self.plan
        # Every worker gets a batch: fewer images than workers x the plan's batch are cut smaller (12 images
        # on 2 workers: 2 batches of 6, not 1 of 12 and an idle worker).
        size = batch_for(sum(shard.stop - shard.first for shard in shards), self.count, plan.batch_size)
        rows = [{"first": first, "stop": min(first + size, shard.stop)}
                for shard in shards for first in range(shard.first, shard.stop, size)]
        actors = min(self.count, len(rows))  # never more actors than batches: none would wait idle
        # All actors up before the first batch, one batch each at a time: the first actor to finish loading
        # the model does not take every batch of a small dataset while the others still load.
        pool = ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1)
        context = ray.data.DataContext.get_current()
        waited, context.wait_for_min_actors_s = context.wait_for_min_actors_s, 600
        try:
            ranked = (ray.data.from_items(rows, override_num_blocks=len(rows))
                      .map_batches(_read, batch_size=1, fn_kwargs={"dataset": ray.put(plan.dataset),
                                                                   "info": plan.loaded.info, "size": size})
                      .map_batches(_Ranker, batch_size=1, compute=pool,
                                   fn_constructor_kwargs={"model": self.model, "preprocessing": plan.request.preprocessing,
                                                          "layers": plan.layers, "dataset": plan.dataset.identity,
                                                          "keep": plan.keep, "threads": self.threads_each},
                                   **self._options(self.ranking_cpus)))
            yield from self._joined(shards, ranked.iter_rows(), advance)
        finally:
            context.wait_for_min_actors_s = waited

    def _joined(self, shards: list[Shard], rows: Iterator[dict], advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        """Ranked batches, as they arrive, joined into their shards; a shard is yielded once all its batches are in."""
        plan = self.plan
        starts = [shard.first for shard in shards]
        arrived: dict[int, list] = {shard.first: [] for shard in shards}
        for row in rows:
            first, count, seconds, worker, pieces = pickle.loads(row["result"])
            advance(count)
            shard = shards[bisect.bisect_right(starts, first) - 1]
            arrived[shard.first].append((first, count, seconds, worker, pieces))
            batches = arrived[shard.first]
            if sum(batch[1] for batch in batches) == shard.stop - shard.first:
                batches.sort(key=lambda batch: batch[0])
                joined = tuple(TopKIndex.joined([batch[4][layer] for batch in batches], plan.keep)
                               for layer in range(len(plan.layers)))
                yield ShardOutcome(shard, joined, sum(batch[2] for batch in batches),
                                   tuple(Work(batch[3], 1, batch[2]) for batch in batches))
                del arrived[shard.first]

    def close(self) -> None:
        if self.probe is not None:
            self.probe.unlink(missing_ok=True)
        if self._started:
            ray.shutdown()
