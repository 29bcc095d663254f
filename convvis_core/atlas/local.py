"""The ``local`` engine: every unit in this process, one after another, each on all cores (TensorFlow's
own threads), exactly as the pages compute."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from convvis_core.atlas.plan import FilterUnit, Plan, Shard, batch_for, pass_placement
from convvis_core.atlas.work import FilterOutcome, ShardOutcome, rank_shard, render_unit
from convvis_core.featureviz import render
from convvis_core.parallel import cores
from convvis_core.topk import prepare_ranking


class LocalEngine:
    def start(self, plan: Plan) -> None:
        """The model is the plan's, already loaded; the top-k pass is traced now, as a Ray worker's is."""
        self.plan = plan
        if plan.dataset is not None:
            prepare_ranking(plan.loaded, plan.layers, plan.pass_rows(1))

    def describe(self) -> str:
        return f"local (this process, {cores()} cores)"

    def filters(self, units: Iterable[FilterUnit]) -> Iterator[FilterOutcome]:
        for unit in units:
            yield render_unit(self.plan.loaded, self.plan.settings, unit, self.plan.folder / render.CACHE_NAMESPACE)

    def shards(self, shards: Iterable[Shard], advance: Callable[[int], None]) -> Iterator[ShardOutcome]:
        plan = self.plan
        shards = list(shards)
        # One worker: fewer images than a batch are one batch, in a pass of 16 or 32 rows rather than 64
        # (each image at the row a pass of 64 gives it: the same values).
        batch = pass_placement(0, batch_for(sum(shard.stop - shard.first for shard in shards), 1, plan.batch_size))[1]
        for shard in shards:
            reported = [0]

            def progress(done: int, total: int) -> None:
                advance(done - reported[0])
                reported[0] = done

            yield rank_shard(plan.loaded, plan.dataset, plan.layers, shard, plan.keep, batch, progress)

    def close(self) -> None:
        pass
