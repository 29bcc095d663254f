"""Live camera speed: the per-frame processing function alone (frame in → overlay + top-5 out), on
MobileNet at 224 px, against a plain prediction of the same frame.

A 640×480 frame (the bundled cat photo) goes through ``LiveProcessor.process`` (conversion to the
model's input, one traced forward + backward pass, the map, the overlay at the frame's size) and,
alternately, through a plain prediction (the same conversion and the same traced forward pass, no
gradient, no map). Both are warmed up first. Prints the median and 95th percentile time per frame,
frames per second, and the ratio to the plain prediction (goal: >= 15 frames/s for Grad-CAM, ratio
<= 1.6x).

Not measured here (see README, *Live*): two viewers through ``streamlit run`` and fake-camera
Chromium sessions.

Run: ``python bench/live_fps.py [--frames 200] [--methods gradcam layercam saliency]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from convvis_core.cam.base import probe_for  # noqa: E402
from convvis_core.cam.targets import ClassTarget  # noqa: E402
from convvis_core.images import model_pixels  # noqa: E402
from convvis_core.live import LiveProcessor, LiveSettings  # noqa: E402
from convvis_core.models import load_model  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402
from convvis_core.precision import SPEED_FLAGS, cpu_flags  # noqa: E402
from convvis_core.samples import load_sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--methods", nargs="+", default=["gradcam", "layercam", "saliency"])
    args = parser.parse_args()
    shown = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or "none of " + " ".join(SPEED_FLAGS)
    print(f"CPU flags: {shown}; {cores()} CPU cores for this process")
    loaded = load_model("mobilenet")
    frame = np.asarray(load_sample("chelsea").convert("RGB").resize((640, 480), Image.BILINEAR))
    processor = LiveProcessor.for_model(loaded)
    layer = processor.settings.layer
    probe = probe_for(loaded, layer, ClassTarget())

    def predict() -> None:
        probe.outputs(model_pixels(Image.fromarray(frame), loaded.info, "stretch"))

    print(f"MobileNet, 224 px input, 640×480 frames, layer {layer}, {args.frames} frames each, alternated")
    print(f"{'method':10} {'median':>9} {'p95':>9} {'frames/s':>9} {'model pass':>11} {'plain predict':>14} {'ratio':>6}")
    for method in args.methods:
        processor.configure(LiveSettings(layer, method))
        processor.process(frame), predict()  # warm up: trace both
        ours, plain, model = [], [], []
        for _ in range(args.frames):
            started = time.perf_counter()
            result = processor.process(frame)
            ours.append(time.perf_counter() - started)
            model.append(result.model_s)
            started = time.perf_counter()
            predict()
            plain.append(time.perf_counter() - started)
        median, p95, base = np.median(ours), np.percentile(ours, 95), np.median(plain)
        print(f"{method:10} {median * 1000:7.1f} ms {p95 * 1000:6.1f} ms {1 / median:9.1f} "
              f"{np.median(model) * 1000:8.1f} ms {base * 1000:11.1f} ms {median / base:5.2f}x")
    print("goals: Grad-CAM >= 15 frames/s; ratio to a plain predict <= 1.6x")


if __name__ == "__main__":
    main()
