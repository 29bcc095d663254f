"""The ``local`` engine: every unit in this process, one after another, each on all cores (TensorFlow's
own threads), exactly as the pages compute."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from convvis_core.atlas.plan import FilterUnit, Plan, Shard
from convvis_core.atlas.work import FilterOutcome, ShardOutcome, rank_shard, render_unit
from convvis_core.featureviz import render
from convvis_core.parallel import cores


class LocalEngine:
    def start(self, plan: Plan) -> None:
        self.plan = plan

    def describe(self) -> str:
        return f"local (this process, {cores()} cores)"

    def filters(self, units: Iterable[FilterUnit]) -> Iterator[FilterOutcome]:
        for unit in units:
            yield render_unit(self.plan.loaded, self.plan.settings, unit, self.plan.folder / render.CACHE_NAMESPACE)

    def shards(self, shards: Iterable[Shard], advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        plan = self.plan
        for shard in shards:
            reported = [0]

            def progress(done: int, total: int) -> None:
                advance(done - reported[0])
                reported[0] = done

            yield rank_shard(plan.loaded, plan.dataset, plan.layers, shard, plan.keep, plan.batch_size, progress)

    def close(self) -> None:
        pass
