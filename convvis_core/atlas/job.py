"""The driver of an atlas job: plan, skip what the cache holds, hand the rest to an engine, store
and record what comes back, assemble each layer's top-k index from its shards, sum up.

The driver stores a result before it records the unit in the manifest, and every file write is an
atomic rename, so a job killed at any moment (SIGKILL) leaves whole entries and loses only the
units in flight; the next run skips the rest. Writers on one folder (two jobs, many workers) only
ever replace a whole file with an equal one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

from convvis_core.atlas.local import LocalEngine
from convvis_core.atlas.manifest import Manifest
from convvis_core.atlas.plan import AtlasRequest, FilterUnit, Plan, Shard, make_plan, open_model
from convvis_core.atlas.work import FilterOutcome, ShardOutcome, Work, cannot_write
from convvis_core.cache import Arrays, ResultCache, unwritable
from convvis_core.config import cache_dir
from convvis_core.featureviz import render
from convvis_core.models import LoadedModel
from convvis_core import topk

AtlasProgress = Callable[[str, int, int], None]  # ("filters" or "images", done, total)


class Engine(Protocol):
    def start(self, plan: Plan) -> None: ...
    def describe(self) -> str: ...
    def filters(self, units: Iterator[FilterUnit]) -> Iterator[FilterOutcome]: ...
    def shards(self, shards: Iterator[Shard], advance: Callable[[int], None]) -> Iterator[ShardOutcome]: ...
    def close(self) -> None: ...


@dataclass
class Summary:
    """What a run did: computed now versus found in the cache, and what it cost."""

    engine: str
    layers: int
    filters: int
    filters_computed: int = 0
    filter_seconds: float = 0.0  # workers' time on the filters computed now
    images: int = 0  # images ranked per layer (0: no dataset)
    images_computed: int = 0
    image_seconds: float = 0.0
    resumed: int = 0  # units an earlier run recorded in the manifest
    seconds: float = 0.0  # wall-clock time of the run
    manifest: Path | None = None
    start_wall: float = 0.0  # wall-clock time of the engine's start, once per job (Ray: its workers up, models loaded)
    filter_wall: float = 0.0  # wall-clock time of the filters phase, after the start
    image_wall: float = 0.0  # … and of the top-k phase, from handing out the images to the joined indexes
    filter_work: dict[str, Work] = field(default_factory=dict)  # by worker: batches of filters and its seconds
    image_work: dict[str, Work] = field(default_factory=dict)  # by worker: batches of images and its seconds
    plan: Plan | None = None  # what the run computed (the export draws the same layers, preset and dataset)

    def busy(self, phase: str) -> dict[str, float]:
        """Each worker's busy fraction in ``phase`` ("filters" or "images"): its time in work / the phase's wall time."""
        work, wall = (self.filter_work, self.filter_wall) if phase == "filters" else (self.image_work, self.image_wall)
        return {worker: done.seconds / wall for worker, done in work.items()} if wall > 0 else {}

    def lines(self) -> list[str]:
        cached = self.filters - self.filters_computed
        lines = [f"engine: {self.engine}",
                 f"filters: {self.filters} in {self.layers} layer(s): {self.filters_computed} computed, "
                 f"{cached} from the cache" + (f"; {self.filter_seconds / self.filters_computed:.3f} s per filter "
                                               "(worker time)" if self.filters_computed else "")]
        if self.images:
            lines.append(f"images: {self.images} ranked for {self.layers} layer(s) in one pass: "
                         f"{self.images_computed} read now, {self.images - self.images_computed} from the cache"
                         + (f"; {self.image_seconds / self.images_computed:.4f} s per image (worker time)"
                            if self.images_computed else ""))
        lines.append(f"engine start: {self.start_wall:.1f} s (once per job, before both phases)")
        for phase, work, wall in (("filters", self.filter_work, self.filter_wall),
                                  ("top-k", self.image_work, self.image_wall)):
            if work:
                busy = self.busy("filters" if phase == "filters" else "images")
                lines.append(f"{phase} phase: {wall:.1f} s wall; {len(work)} worker(s), batches "
                             + ", ".join(str(work[worker].batches) for worker in work) + ", busy "
                             + ", ".join(f"{busy[worker]:.2f}" for worker in work))
        lines.append(f"took {self.seconds:.1f} s" + (f"; resumed after {self.resumed} unit(s) an earlier run finished"
                                                      if self.resumed else "") + f"; manifest {self.manifest}")
        return lines


def _stored(keys: tuple[str, ...], cache: ResultCache) -> bool:
    return all(cache.contains(key) for key in keys)


def _strict_put(cache: ResultCache, key: str, arrays: Arrays) -> None:
    cache.put(key, arrays)
    if cache.unsaved:
        raise cannot_write(cache.folder, cache.unsaved)


def run_atlas(request: AtlasRequest, engine: Engine | None = None, folder: Path | None = None,
              progress: AtlasProgress | None = None, loaded: LoadedModel | None = None) -> Summary:
    """Compute what ``request`` asks into the cache under ``folder`` (default: the app's), skipping what is there.
    ``loaded``: the request's model, when the caller has opened it already (to check it first), so it is not read twice."""
    started = time.perf_counter()
    folder = folder or cache_dir()
    reason = unwritable(folder)
    if reason:
        raise cannot_write(folder, reason)
    plan = make_plan(request, loaded or open_model(request), folder)
    filter_cache = ResultCache(folder / render.CACHE_NAMESPACE, memory_entries=0)
    topk_cache = ResultCache(folder / topk.CACHE_NAMESPACE, memory_entries=0)
    manifest = Manifest(folder / "atlas" / f"{plan.job_id}.jsonl")
    earlier = {record["unit"] for record in manifest.records()}
    engine = engine or LocalEngine()
    report = progress or (lambda what, done, total: None)
    pending = [unit for unit in plan.units if not _stored(unit.keys, filter_cache)]
    names = {unit.name for unit in plan.units} | {shard.name for shard in plan.shards}
    summary = Summary("", len(plan.layers), plan.filter_count, images=plan.count, manifest=manifest.path,
                      resumed=len(earlier & names), plan=plan)
    filters_done = plan.filter_count - sum(len(unit.filters) for unit in pending)
    report("filters", filters_done, plan.filter_count)
    try:
        phase = time.perf_counter()
        engine.start(plan)
        summary.engine = engine.describe()
        summary.start_wall = time.perf_counter() - phase
        phase = time.perf_counter()
        # Checked again as each unit is handed out: another writer may have finished it meanwhile.
        for outcome in engine.filters(unit for unit in pending if not _stored(unit.keys, filter_cache)):
            for key, arrays in outcome.entries:
                _strict_put(filter_cache, key, arrays)
            unit = outcome.unit
            manifest.record("filters", unit.name, outcome.seconds, layer=unit.layer, filters=list(unit.filters))
            summary.filters_computed += len(unit.filters)
            summary.filter_seconds += outcome.seconds
            _count(summary.filter_work, outcome.work)
            filters_done += len(unit.filters)
            report("filters", filters_done, plan.filter_count)
        summary.filter_wall = time.perf_counter() - phase
        if plan.dataset is not None and not _stored(plan.index_keys, topk_cache):
            phase = time.perf_counter()
            _rank(plan, engine, topk_cache, manifest, summary, report)
            summary.image_wall = time.perf_counter() - phase
    finally:
        engine.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(totals: dict[str, Work], work: tuple[Work, ...]) -> None:
    for done in work:
        before = totals.get(done.worker, Work(done.worker, 0, 0.0))
        totals[done.worker] = Work(done.worker, before.batches + done.batches, before.seconds + done.seconds)


def _rank(plan: Plan, engine: Engine, cache: ResultCache, manifest: Manifest, summary: Summary,
          report: AtlasProgress) -> None:
    """Rank the shards not yet in the cache, then join each layer's shards into its index."""
    pending = [shard for shard in plan.shards if not _stored(shard.keys, cache)]
    images_done = plan.count - sum(shard.stop - shard.first for shard in pending)
    report("images", images_done, plan.count)

    def advance(images: int) -> None:
        nonlocal images_done
        images_done += images
        report("images", images_done, plan.count)

    for outcome in engine.shards(iter(pending), advance):
        shard = outcome.shard
        for key, piece in zip(shard.keys, outcome.pieces):
            _strict_put(cache, key, piece.to_arrays())
        manifest.record("shard", shard.name, outcome.seconds, first=shard.first, stop=shard.stop)
        summary.images_computed += shard.stop - shard.first
        summary.image_seconds += outcome.seconds
        _count(summary.image_work, outcome.work)
    for layer, (path, key) in enumerate(zip(plan.layers, plan.index_keys)):
        if cache.contains(key):
            continue
        started = time.perf_counter()
        pieces = [topk.TopKIndex.from_arrays(cache.get(shard.keys[layer])) for shard in plan.shards]
        _strict_put(cache, key, topk.TopKIndex.joined(pieces, plan.keep).to_arrays())
        manifest.record("index", path, time.perf_counter() - started, images=plan.count)
