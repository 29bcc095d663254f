"""The Heatmaps page's "Can I trust these maps?": the model randomization check of every map shown (does
it depend on the model?) as a chart with its flag in words, and MuFidelity, stability and complexity as a
table with the line that says what each measures. Both run on request (they cost several maps per
method) and are kept in the core's disk cache, so a rerun, or another session, reads them back at once."""

from __future__ import annotations

from typing import Mapping

import pandas as pd
import streamlit as st
from PIL import Image

from convvis_core.cam.base import HeatmapMethod
from convvis_core.cam.randomization import DEPTHS, MEASURES, MODES, SanityCheck, sanity_check
from convvis_core.cam.scoring import ScoredHeatmap
from convvis_core.cam.trust import METRICS, TrustScores, trust_scores
from convvis_core.errors import ConvVisError
from convvis_core.models import LoadedModel
from convvis_ui import links
from convvis_ui.charts import sanity_figure

TOGGLE = "heatmaps_trust"


def trust_view(loaded: LoadedModel, seen: Image.Image, scored: Mapping[str, ScoredHeatmap],
               methods: Mapping[str, HeatmapMethod], baseline: str) -> set[str]:
    """The expander for the maps ``scored`` (each by its method object in ``methods``); the methods whose
    map fails the sanity check. The check itself always runs (cascading, the layers above the explained one:
    a step or a few, so the page's verdict never recommends a map that fails it); the toggle shows its curves,
    other randomizations and the metrics, which cost more."""
    links.consume(TOGGLE, True if st.query_params.get("trust") == "1" else None)
    with st.expander("Can I trust these maps?", expanded=bool(st.session_state.get(TOGGLE))):
        run = st.toggle("Check the maps shown", key=TOGGLE, help=(
            "A map that explains the model must change when the model's weights are randomized (Adebayo et al. "
            "2018). Each check recomputes the map once per randomization step (one per weighted layer above the "
            "explained one; for pixel methods, every weighted layer); the metrics take about 130 forward passes "
            "and 9 maps per method. Results are cached."))
        links.reflect(trust="1" if run else None)
        if not scored:
            return set()
        if not run:
            checks, _ = computed(loaded, seen, scored, methods, baseline, "cascading", "above", metrics=False)
            for check in checks.values():
                st.markdown(("⚠️ " if check.flagged else "") + check.sentence())
            st.caption("The sanity check re-initializes the model's layers from the output down and says whether "
                       "each map still looks the same (then it shows the image, not the model). Check the maps "
                       "for its curves, other randomizations, and MuFidelity, stability and complexity, which "
                       "score the maps as Xplique and Quantus do.")
            return {method for method, check in checks.items() if check.flagged}
        pick_mode, pick_measure, pick_depth = st.columns(3)
        mode = pick_mode.radio("Randomization", list(MODES), format_func=MODES.get, key="heatmaps_trust_mode")
        measure = pick_measure.radio("Similarity", list(MEASURES), format_func=lambda m: m.replace("ssim", "SSIM")
                                     .replace("spearman", "Spearman"), key="heatmaps_trust_measure",
                                     help=" · ".join(MEASURES.values()))
        depth = "all" if pick_depth.checkbox("Down to the input", key="heatmaps_trust_depth",
                                             help=f"Re-initialize {DEPTHS['all']} (the paper's full cascade), "
                                                  f"not only {DEPTHS['above']}: one map more per layer.") else "above"
        checks, scores = computed(loaded, seen, scored, methods, baseline, mode, depth, metrics=True)
        if checks:
            st.plotly_chart(sanity_figure(list(checks.values()), measure), key="sanity_chart",
                            config={"displayModeBar": False})
            for check in checks.values():
                st.markdown(("⚠️ " if check.flagged else "") + check.sentence())
        st.dataframe(pd.DataFrame([
            {"method": methods[method].title, **{METRICS[name].heading: value for name, value in found.values().items()},
             "sanity check": "—" if method not in checks or checks[method].flagged is None
             else ("fails" if checks[method].flagged else "passes")}
            for method, found in scores.items()]), hide_index=True, column_config={
                METRICS[name].heading: st.column_config.NumberColumn(format="%.3f") for name in METRICS})
        most = next(iter(scores.values())).most_complex if scores else None
        for name, metric in METRICS.items():
            here = f" (log(pixels) = {most:.2f} here)" if name == "complexity" and most else ""
            st.caption(f"**{metric.heading}**: {metric.meaning}{here}.")
    return {method for method, check in checks.items() if check.flagged}


def computed(loaded: LoadedModel, seen: Image.Image, scored: Mapping[str, ScoredHeatmap],
             methods: Mapping[str, HeatmapMethod], baseline: str, mode: str, depth: str,
             metrics: bool) -> tuple[dict[str, SanityCheck], dict[str, TrustScores]]:
    """Each map's check (and with ``metrics`` its metrics) from the core's disk cache or computed, in a status
    box with a bar; a method that cannot be checked says why, and the others go on."""
    checks, scores, problems = {}, {}, []
    with st.status(f"Checking {len(scored)} map(s)…", expanded=False) as status:
        bar = st.progress(0.0)
        for done, (method, result) in enumerate(scored.items()):
            title, share = methods[method].title, 1 / len(scored)

            def report(maps: int, in_all: int) -> None:
                bar.progress((done + 0.8 * maps / in_all) * share, text=f"{title}: map {maps} of {in_all}")

            try:
                checks[method] = sanity_check(loaded, seen, methods[method], result.heatmap.target,
                                              result.heatmap.layer, mode, depth, baseline=baseline, progress=report)
            except ConvVisError as error:
                problems.append(f"{title}: {error}")
            if metrics:
                bar.progress((done + 0.8) * share, text=f"{title}: MuFidelity, stability, complexity")
                scores[method] = trust_scores(loaded, seen, methods[method], result.heatmap, baseline=baseline)
        cached = all(check.from_cache for check in checks.values()) and all(s.from_cache for s in scores.values())
        status.update(label=f"Checked {len(scored)} map(s){' (cached)' if cached else ''}", state="complete")
    for problem in problems:
        st.warning(problem, icon=":material/block:")
    return checks, scores
