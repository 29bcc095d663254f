"""What a batch saves in the notebook API: one call on 32 images against 32 calls on one image each, for
Grad-CAM and the vanilla gradient on MobileNet (224 px), measured side by side in one run, with the
largest difference between the two maps.

On a CPU, convolutions are already parallel within one image, so a batch saves the per-call overhead and
some kernel efficiency, not the work: expect a ratio near 0.8 on two cores. The difference: TensorFlow's
oneDNN kernels sum in another order for a batch of 32 than for one image (logits differ by about 1e-6
relatively), and where a ReLU6 unit sits at its boundary that flips its gradient, so an input-gradient map
can differ by up to about 1e-2 on a few pixels of an image (with TF_ENABLE_ONEDNN_OPTS=0 every map agrees
to 1e-6). Maps at a layer (Grad-CAM) agree to about 1e-6 either way.

The 32 images are the packaged photo gallery (12 photos) repeated, as numpy pixels at the model's size.
Each timing is the median of ``--repeats`` runs, the two ways alternating, after a warm-up run of both
(traces are not measured); wall time and this process's CPU time (less moved by other processes' load).

    .venv/bin/python bench/api_batch.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from convvis_core import GradCAM, Saliency, load_model  # noqa: E402
from convvis_core.datasets.catalog import open_dataset  # noqa: E402
from convvis_core.batches import pixel_batch  # noqa: E402
from convvis_testing.timing import machine_line, side_by_side  # noqa: E402

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine_line())
    model = load_model("mobilenet")
    gallery = open_dataset("gallery")
    images = pixel_batch([gallery.image(i % len(gallery)) for i in range(BATCH)], model.info)
    print(f"MobileNet, {BATCH} gallery photos at {images.shape[1]}×{images.shape[2]}, median of {args.repeats} runs each")
    for kind in (GradCAM, Saliency):
        method = kind(model)
        batched = lambda: method(images)  # noqa: E731
        single = lambda: [method(image[None]) for image in images]  # noqa: E731
        difference = float(np.nanmax(np.abs(np.asarray(batched()) - np.concatenate([np.asarray(m) for m in single()]))))
        (batch_s, batch_cpu), (singles_s, singles_cpu) = side_by_side(batched, single, args.repeats)
        print(f"{kind.__name__:>9}: a batch of {BATCH}: {batch_s:.2f} s ({batch_cpu:.2f} s CPU); {BATCH} single calls: "
              f"{singles_s:.2f} s ({singles_cpu:.2f} s CPU); ratio {batch_s / singles_s:.2f} wall, "
              f"{batch_cpu / singles_cpu:.2f} CPU (batch / singles, below 1 is a saving); "
              f"largest difference {difference:.1e}")


if __name__ == "__main__":
    main()
