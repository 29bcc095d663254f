"""Atlas engines side by side: one atlas with ``local``, then with ``ray`` at 1 and 2 workers of one CPU each,
each phase timed on its own, with every worker's busy fraction (its time in work / the phase's wall time).

The atlas: MobileNet's conv_pw_3/8/13_relu, 32 filters each, "quick preview", plus the gallery's top-k for
the three layers (12 images: on 2 workers, 2 batches of 6); then, in the same folder (the filters found in
the cache), the top-k of 2,000 MNIST digits, where batches (32 of 64) outnumber the workers. Every engine
starts from an empty cache folder, so all of it is computed; the local Ray is started beforehand, as a
cluster would be. Each job starts its engine once ("start": Ray's actors up, each with the model loaded),
timed apart from the two phases it then serves, and shown with the whole job's time. A Ray worker computes
with one TensorFlow thread, so the two workers do not fight over threads (they do over the two vCPUs: see
the per-filter time alone and together).

Goals: ray at 2 workers within 10 % of local on both cores, on each phase (engine overhead); how 2
workers compare with 1 (how it would scale over machines), next to each worker's time per filter alone
and beside the other. Pictures are bit-equal between runs with equal threads per worker; top-k indexes
always. The machine's load average is printed before and after (other jobs on it skew the ratios).
Run: ``python bench/atlas_scaling.py`` (about 6 minutes on 2 vCPUs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
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


PHASES = (("filters", "filters"), ("gallery top-k", "images"), ("MNIST top-k", "images"))
JOBS = ("job 1: start, filters, gallery top-k", "job 2: start, MNIST top-k (filters cached)")


def loads() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def busy(summary, phase: str) -> str:
    """Each worker's busy fraction and batches, in the order they first reported."""
    work, fractions = (summary.filter_work if phase == "filters" else summary.image_work), summary.busy(phase)
    return ", ".join(f"{fractions[worker]:.2f} ({work[worker].batches} batches)" for worker in work) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", default="0-31")
    parser.add_argument("--preset", default="quick preview")
    parser.add_argument("--dataset", default="gallery")
    parser.add_argument("--images", type=int, default=2000, help="MNIST digits of the second top-k (0: none)")
    args = parser.parse_args()
    layers = ("conv_pw_3_relu", "conv_pw_8_relu", "conv_pw_13_relu")
    request = AtlasRequest("mobilenet", layers, args.filters, args.preset, dataset=args.dataset)
    digits = AtlasRequest("mobilenet", layers, args.filters, args.preset, dataset="mnist", images=args.images)
    work = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    os.environ["CONVVIS_CACHE_DIR"] = str(work / "models-cache")  # the converted MobileNet, shared by all runs
    runs = {"local": LocalEngine(), "ray, 1 worker x 1 CPU": RayEngine(workers=1, threads=1),
            "ray, 2 workers x 1 CPU": RayEngine(workers=2, threads=1)}
    walls, folders, summaries = {}, {}, {}
    load_before = loads()
    try:
        run_atlas(AtlasRequest("mobilenet", ("conv_pw_3_relu",), "0", "quick preview", steps=1))  # convert once
        started = time.perf_counter()
        ray.init(num_cpus=cores(), include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
                 log_to_driver=False)
        ray_start = time.perf_counter() - started
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, engine in runs.items():
                folders[name] = work / name.split(",")[0].replace(" ", "") / str(len(folders))
                first = run_atlas(request, engine, folder=folders[name])
                second = run_atlas(digits, engine, folder=folders[name]) if args.images else None
                summaries[name] = (first, first, second)
                walls[name] = (first.filter_wall, first.image_wall, second.image_wall if second else float("nan"))
        unused = [str(warning.message) for warning in caught if "fully utilize" in str(warning.message)]
    finally:
        ray.shutdown()
    load_after = loads()

    summary = summaries["local"][0]
    print(f"MobileNet conv_pw_3/8/13_relu, {summary.filters} filters ({args.preset!r}) + {args.dataset} top-k "
          f"({summary.images} images) + {args.images} MNIST top-k (3 layers in one pass); {cores()} CPU cores, "
          f"TensorFlow {tf.__version__}, Ray {ray.__version__} (local Ray started in {ray_start:.1f} s, not counted)")
    print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}")
    for name in runs:
        print(f"  {name}")
        for (phase, kind), summary, wall in zip(PHASES, summaries[name], walls[name]):
            if summary is None:
                continue
            if phase != "gallery top-k":  # each job's start, once, before its phases
                print(f"    {'start':<14} {summary.start_wall:7.1f} s wall  (job {1 if kind == 'filters' else 2}: "
                      f"workers up, model loaded; {summary.seconds:.1f} s the whole job)")
            done = summary.filters_computed if kind == "filters" else summary.images_computed
            seconds = summary.filter_seconds if kind == "filters" else summary.image_seconds
            unit = "filter" if kind == "filters" else "image"
            print(f"    {phase:<14} {wall:7.1f} s wall  {seconds / max(done, 1):7.4f} s per {unit} (worker time)  "
                  f"busy: {busy(summary, kind)}")
    local, one, two = (walls[name] for name in runs)
    for index, (phase, _) in enumerate(PHASES):
        if args.images or index < 2:
            print(f"  {phase:<14} ray 2 workers / local: {two[index] / local[index]:5.2f} (goal <= 1.10);  "
                  f"1 worker / 2 workers: {one[index] / two[index]:5.2f}")
    for index, job in enumerate(JOBS[:2 if args.images else 1]):
        local_job, one_job, two_job = (summaries[name][2 * index].seconds for name in runs)
        print(f"  {job}: ray 2 workers / local {two_job / local_job:5.2f};  1 worker / 2 workers: "
              f"{one_job / two_job:5.2f}")
    alone, together = (summaries[name][0].filter_seconds / summaries[name][0].filters_computed
                       for name in list(runs)[1:])
    print(f"  per filter, one worker alone {alone:.3f} s, each of two together {together:.3f} s: "
          f"{together / alone:.2f}x slower side by side, so 2 workers can be at most {2 * alone / together:.2f}x "
          "as fast as 1 on these two vCPUs")
    if args.images:
        alone, together = (summaries[name][2].image_seconds / summaries[name][2].images_computed
                           for name in list(runs)[1:])
        print(f"  per MNIST image, one worker alone {alone * 1000:.1f} ms, each of two together "
              f"{together * 1000:.1f} ms: {together / alone:.2f}x slower side by side")
    print(f"  Ray warnings about unused concurrency: {len(unused)}" + "".join(f"\n    {text}" for text in unused))
    pictures = [stored(folder, "featureviz") for folder in folders.values()]
    indexes = [stored(folder, "topk") for folder in folders.values()]
    print(f"  top-k indexes equal in all three runs: {all(equal(indexes[0], other) for other in indexes[1:])}; "
          f"pictures equal, ray 1 vs 2 workers (1 thread each): {equal(pictures[1], pictures[2])}, "
          f"ray vs local ({cores()} threads): {equal(pictures[0], pictures[2])}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
