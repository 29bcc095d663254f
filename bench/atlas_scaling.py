"""Atlas engines side by side: one atlas with ``local``, then with ``ray`` at 1 and 2 workers of one CPU each.

The atlas: MobileNet's conv_pw_3/8/13_relu, 32 filters each, "quick preview", plus the gallery's
top-k for the three layers. Every run starts from an empty cache folder, so all of it is computed;
each is timed from the job's start to its end (model loading, tracing, Ray's actors included), with
the local Ray itself started beforehand, as a cluster would be. A Ray worker computes with as many
TensorFlow threads as it has CPUs, so the two workers do not fight over the cores.

Goals: ray at 2 workers within 10 % of local on both cores (engine overhead); 2 one-CPU workers at
least 1.6 times as fast as 1 (how it would scale over machines). Pictures are bit-equal between runs
with equal threads per worker; top-k indexes always. Run: ``python bench/atlas_scaling.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import ray  # noqa: E402
import tensorflow as tf  # noqa: E402

from convvis_core.atlas import AtlasRequest, LocalEngine, run_atlas  # noqa: E402
from convvis_core.atlas.ray_engine import RayEngine  # noqa: E402
from convvis_core.parallel import cores  # noqa: E402


def stored(folder: Path, kind: str) -> dict[str, dict[str, np.ndarray]]:
    """The results of one kind ("featureviz" or "topk") under a cache folder, by file name."""
    found = {}
    for path in sorted(folder.glob(f"{kind}-*/*/*.npz")):
        with np.load(path) as arrays:
            found[path.name] = {name: arrays[name] for name in arrays.files}
    return found


def equal(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(
        first[name].keys() == second[name].keys()
        and all(np.array_equal(first[name][field], second[name][field]) for field in first[name])
        for name in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", default="0-31")
    parser.add_argument("--preset", default="quick preview")
    parser.add_argument("--dataset", default="gallery")
    args = parser.parse_args()
    request = AtlasRequest("mobilenet", ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu"), args.filters,
                           args.preset, dataset=args.dataset)
    work = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    os.environ["CONVVIS_CACHE_DIR"] = str(work / "models-cache")  # the converted MobileNet, shared by all runs
    runs = {"local": LocalEngine(), "ray, 1 worker x 1 CPU": RayEngine(workers=1, threads=1),
            "ray, 2 workers x 1 CPU": RayEngine(workers=2, threads=1)}
    seconds, folders, summaries = {}, {}, {}
    load = os.getloadavg()[0]
    try:
        run_atlas(AtlasRequest("mobilenet", ("conv_pw_3_relu",), "0", "quick preview", steps=1))  # convert once
        started = time.perf_counter()
        ray.init(num_cpus=cores(), include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
                 log_to_driver=False)
        ray_start = time.perf_counter() - started
        for name, engine in runs.items():
            folders[name] = work / name.split(",")[0].replace(" ", "") / str(len(folders))
            started = time.perf_counter()
            summaries[name] = run_atlas(request, engine, folder=folders[name])
            seconds[name] = time.perf_counter() - started
        load = max(load, os.getloadavg()[0])
    finally:
        ray.shutdown()

    summary = summaries["local"]
    print(f"MobileNet conv_pw_3/8/13_relu, {summary.filters} filters ({args.preset!r}) + {args.dataset} top-k "
          f"({summary.images} images, 3 layers in one pass); {cores()} CPU cores, TensorFlow {tf.__version__}, "
          f"Ray {ray.__version__} (local Ray started in {ray_start:.1f} s, not counted); load average up to "
          f"{load:.1f} during the runs")
    for name, taken in seconds.items():
        done = summaries[name]
        print(f"  {name:<24} {taken:7.1f} s   {done.filter_seconds / done.filters:6.3f} s per filter, "
              f"{done.image_seconds / max(done.images, 1):6.4f} s per image (worker time)")
    local, one, two = seconds.values()
    print(f"  ray 2 workers / local:        {two / local:5.2f}   (goal <= 1.10)")
    print(f"  1 worker / 2 workers speed-up: {one / two:5.2f}   (goal >= 1.60)")
    pictures = [stored(folder, "featureviz") for folder in folders.values()]
    indexes = [stored(folder, "topk") for folder in folders.values()]
    print(f"  top-k indexes equal in all three runs: {all(equal(indexes[0], other) for other in indexes[1:])}; "
          f"pictures equal, ray 1 vs 2 workers (1 thread each): {equal(pictures[1], pictures[2])}, "
          f"ray vs local ({cores()} threads): {equal(pictures[0], pictures[2])}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
