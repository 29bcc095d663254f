"""The ``ray`` engine: the same units on a Ray cluster (a local one started here, or ``address``).

One pool of Ray actors per job, started by :meth:`RayEngine.start`: each actor loads the model (and
gets the dataset) once and serves both phases, batches of filters and then batches of images (read,
decoded and ranked in the actor, each image at the row of the forward pass the page's scan gives it:
:func:`~convvis_core.atlas.work.rank_placed`). A free actor gets the next unit, one at a time each
(:class:`ray.util.ActorPool`), so the driver checks the cache just before handing a unit out; each
batch's per-channel rankings come back to the driver and are merged exactly, shard by shard. Fewer
images than a batch per worker are cut into smaller batches (:func:`~convvis_core.atlas.plan.batch_for`)
and the pool never has more actors than units, so no worker waits idle. GPU workers are used when the
cluster has GPUs.

Results go straight into the cache folder when the workers can see it (same machine, or a folder
they share, checked with a token the driver writes there), else back to the driver, which stores them.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import ray
from ray.actor import ActorHandle
from ray.util import ActorPool

from convvis_core.atlas.plan import AtlasRequest, FilterUnit, Plan, Shard, batch_for, open_model
from convvis_core.atlas.work import FilterOutcome, ShardOutcome, configure_tensorflow, rank_placed, render_unit
from convvis_core.cache import unwritable
from convvis_core.datasets.base import Dataset
from convvis_core.featureviz import render
from convvis_core.featureviz.settings import Settings
from convvis_core.parallel import cores
from convvis_core.topk import TopKIndex, prepare_ranking

Unit = TypeVar("Unit")


def _visible(folder: Path, token: str) -> Path | None:
    """The filters' cache folder if this worker sees the driver's cache folder (the token file it wrote) and can
    write it, else None (the results then go back to the driver). Checked per unit: cheap next to a unit."""
    probe = folder / "atlas" / f".probe-{token}"
    try:
        seen = probe.read_text() == token
    except OSError:
        return None
    return folder / render.CACHE_NAMESPACE if seen and unwritable(folder) is None else None


class _Worker:
    """A Ray actor for one job: the model, loaded once, optimizing batches of filters and ranking batches of images."""

    def __init__(self, request: AtlasRequest, settings: Settings, folder: Path, token: str, threads: int | None,
                 dataset: Dataset | None, layers: tuple[str, ...], keep: int, rows: int):
        configure_tensorflow(threads)
        self.loaded = open_model(request)
        self.settings, self.folder, self.token = settings, folder, token
        self.dataset, self.layers, self.keep = dataset, layers, keep
        if dataset is not None:  # traced now, as the local engine's: the phases then only compute
            prepare_ranking(self.loaded, layers, rows)

    def ready(self) -> None:
        """Answers once the constructor has run: the model is loaded, its top-k pass traced."""

    def render(self, unit: FilterUnit) -> FilterOutcome:
        return render_unit(self.loaded, self.settings, unit, _visible(self.folder, self.token))

    def rank(self, batch: Shard) -> ShardOutcome:
        return rank_placed(self.loaded, self.dataset, self.layers, batch, self.keep)


@dataclass
class RayEngine:
    """``workers`` actors (default: one per GPU, else one per CPU, never more than the job has units), each computing
    with ``threads`` TensorFlow threads (default: its share of the CPUs)."""

    address: str | None = None  # None: start a local Ray on this machine's cores
    workers: int | None = None
    threads: int | None = None
    temp_dir: str | None = None  # a local Ray's session files (default: Ray's own)
    actors: list[ActorHandle] = field(default_factory=list, init=False)
    probe: Path | None = field(default=None, init=False)
    started_ray: bool = field(default=False, init=False)

    def start(self, plan: Plan) -> None:
        """Start the job's actors and wait until each has loaded the model: both phases then only compute."""
        self.plan = plan
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            options = {"address": self.address} if self.address else {
                "num_cpus": cores(), "include_dashboard": False, "_temp_dir": self.temp_dir}
            ray.init(**options, log_to_driver=False, logging_level=logging.WARNING)
        resources = ray.cluster_resources()
        self.cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
        wanted = self.workers or int(gpus) or max(1, int(self.cpus))
        batches = -(-plan.count // batch_for(plan.count, wanted, plan.batch_size)) if plan.count else 0
        count = max(1, min(wanted, max(len(plan.units), batches)))  # an actor with no unit would only load the model
        self.gpus_each = min(1.0, gpus / count) if gpus else 0.0
        self.threads_each = self.threads or max(1, int(self.cpus // count))
        share = self.cpus / count
        model = Path(plan.request.model)  # a file by its absolute path: workers' own folders differ
        request = dataclasses.replace(plan.request, model=str(model.resolve())) if model.is_file() else plan.request
        token = secrets.token_hex(8)
        self.probe = plan.folder / "atlas" / f".probe-{token}"
        self.probe.parent.mkdir(parents=True, exist_ok=True)
        self.probe.write_text(token)
        remote = ray.remote(_Worker).options(num_cpus=min(1.0, share) if gpus else share, num_gpus=self.gpus_each,
                                             runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}})
        dataset = ray.put(plan.dataset) if plan.dataset is not None else None  # one copy in the object store
        self.actors = [remote.remote(request, plan.settings, plan.folder, token, self.threads_each, dataset,
                                     plan.layers, plan.keep, plan.pass_rows(count))
                       for _ in range(count)]
        ray.get([actor.ready.remote() for actor in self.actors])

    def describe(self) -> str:
        where = self.address or "a local Ray"
        kind = f"{self.gpus_each:g} GPU" if self.gpus_each else f"{self.threads_each} TensorFlow thread(s)"
        return f"ray ({where}, {self.cpus:g} CPUs: {len(self.actors)} worker(s), each {kind})"

    def _spread(self, call: Callable[[ActorHandle, Unit], ray.ObjectRef], units: Iterable[Unit]) -> Iterator:
        """Each unit to the next free actor, taken from ``units`` only once one is free; results as they finish."""
        pool, pending = ActorPool(self.actors), iter(units)
        while True:
            while pool.has_free() and (unit := next(pending, None)) is not None:
                pool.submit(call, unit)
            if not pool.has_next():
                return
            yield pool.get_next_unordered()

    def filters(self, units: Iterable[FilterUnit]) -> Iterator[FilterOutcome]:
        return self._spread(lambda actor, unit: actor.render.remote(unit), units)

    def shards(self, shards: Iterable[Shard], advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        shards = list(shards)
        # Every worker gets a batch: fewer images than workers x the plan's batch are cut smaller (12 images
        # on 2 workers: 2 batches of 6, not 1 of 12 and an idle worker).
        size = batch_for(sum(shard.stop - shard.first for shard in shards), len(self.actors), self.plan.batch_size)
        batches = (Shard(first, min(first + size, shard.stop), ())
                   for shard in shards for first in range(shard.first, shard.stop, size))
        return self._joined(shards, self._spread(lambda actor, batch: actor.rank.remote(batch), batches), advance)

    def _joined(self, shards: list[Shard], ranked: Iterator[ShardOutcome],
                advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        """Ranked batches, as they arrive, joined into their shards; a shard is yielded once all its batches are in."""
        layers, keep = len(self.plan.layers), self.plan.keep
        starts = [shard.first for shard in shards]
        arrived: dict[int, list[ShardOutcome]] = {shard.first: [] for shard in shards}
        for batch in ranked:
            advance(batch.shard.stop - batch.shard.first)
            shard = shards[bisect.bisect_right(starts, batch.shard.first) - 1]
            parts = arrived[shard.first]
            parts.append(batch)
            if sum(part.shard.stop - part.shard.first for part in parts) == shard.stop - shard.first:
                parts.sort(key=lambda part: part.shard.first)
                joined = tuple(TopKIndex.joined([part.pieces[layer] for part in parts], keep) for layer in range(layers))
                yield ShardOutcome(shard, joined, sum(part.seconds for part in parts),
                                   tuple(work for part in parts for work in part.work))
                del arrived[shard.first]

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.probe is not None:
            self.probe.unlink(missing_ok=True)
        if self.started_ray:
            ray.shutdown()
