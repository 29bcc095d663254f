"""Filters, first preview frame on a layer not used before: seconds from Run to the first picture.

Each measurement is a fresh process, as a server is after a restart: the model is loaded and TensorFlow
has already run another layer (so only what is new to this layer is timed), then MobileNet
``conv_pw_5_relu``, 16 filters:
- **before**: the quick preview preset, Run pressed as soon as the layer is chosen, the first frame
  after 8 steps (as the app did before issue 17; the issue measured 2.0 s on a quiet machine);
- **Run at once**: the default preset, nothing prepared, the first frame after the first step;
- **Run after choosing**: the page starts tracing when the layer is chosen
  (``prepare_in_background``); Run comes ``--choosing`` seconds later (the user picking filters).
Goal: 1.5 s. The machine is shared: the load average is printed, and "before" is measured in the same
run. Run: ``python bench/filters_first_frame.py [--repeats 3] [--choosing 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL, LAYER, WARM_LAYER, FILTERS = "mobilenet", "conv_pw_5_relu", "conv_pw_3_relu", 16


def measure(preset: str | None, frame_step: int, choosing: float | None) -> dict[str, float]:
    """One fresh measurement (run in its own process): seconds from Run to the first frame shown after
    ``frame_step`` steps, and to the end. ``preset`` None: the model's default."""
    from convvis_core.cache import ResultCache
    from convvis_core.featureviz import visualize_filters
    from convvis_core.featureviz.presets import default_preset, fitted_preset
    from convvis_core.featureviz.render import prepare_in_background
    from convvis_core.models import load_model

    loaded = load_model(MODEL)
    settings = fitted_preset(preset or default_preset(loaded.info.input_size), loaded.info.input_size)
    visualize_filters(loaded, WARM_LAYER, [0], settings.replace(steps=1), cache=ResultCache(None))
    traced = float("nan")
    if choosing is not None:
        chosen = time.perf_counter()
        thread = prepare_in_background(loaded, LAYER, FILTERS, settings)
        thread.join(timeout=choosing)
        if not thread.is_alive():
            traced = time.perf_counter() - chosen
        time.sleep(max(0.0, choosing - (time.perf_counter() - chosen)))  # Run comes now, traced or not
    frames: list[float] = []
    start = time.perf_counter()

    def on_frame(step: int, images: dict) -> None:
        if step >= frame_step:
            frames.append(time.perf_counter() - start)

    visualize_filters(loaded, LAYER, list(range(FILTERS)), settings, cache=ResultCache(None), on_frame=on_frame)
    return {"first_frame": frames[0], "all": time.perf_counter() - start, "traced": traced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--choosing", type=float, default=2.0, help="seconds between choosing the layer and Run")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement's JSON arguments
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(*json.loads(args.one))))
        return
    from bench.filters_time_to_quality import load_average, machine

    print(machine())
    print(f"{MODEL} {LAYER}, {FILTERS} filters, default preset; median of {args.repeats} fresh processes; "
          f"load average {load_average()}")
    scenarios = {"before (quick preview, step 8)": ("quick preview", 8, None), "Run at once": (None, 1, None),
                 f"Run {args.choosing:g} s after choosing": (None, 1, args.choosing)}
    for label, arguments in scenarios.items():
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--one", json.dumps(arguments)], check=True,
                                          text=True, capture_output=True).stdout.strip().splitlines()[-1])
                for _ in range(args.repeats)]
        first = sorted(run["first_frame"] for run in runs)[len(runs) // 2]
        whole = sorted(run["all"] for run in runs)[len(runs) // 2]
        traced = sorted(run["traced"] for run in runs)[len(runs) // 2]
        note = "" if arguments[2] is None else f"; tracing while choosing took {traced:.2f} s (nan: still tracing at Run)"
        print(f"{label:32s} first frame {first:5.2f} s (goal <= 1.5)   all {FILTERS} filters {whole:6.2f} s{note}")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
