"""Atlas jobs: every chosen filter and top-k index precomputed into the pages' cache, on either engine.

LeNet and a few hundred real MNIST digits keep each run to seconds; the pages that answer from an
atlas (and the issue's own command on MobileNet) are in test_atlas_pages.py. The reference for every
comparison is one uninterrupted local run: a killed-and-resumed run, a Ray run and two runs racing on
one folder must leave exactly its entries.
Pictures are bit-equal only between runs that give TensorFlow the same number of threads per
operation (its sums are split by thread count), so Ray workers here get the local process's count.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import pytest

from convvis_core import topk
from convvis_core.atlas import AtlasRequest, LocalEngine, run_atlas
from convvis_core.atlas import plan as atlas_plan
from convvis_core.atlas.manifest import Manifest
from convvis_core.cache import ResultCache
from convvis_core.cli import main
from convvis_core.datasets.base import IMAGES_READ
from convvis_core.datasets.packaged import mnist_dataset
from convvis_core.featureviz import PRESETS, cached_filters, visualize_filters
from convvis_core.models import load_model
from convvis_core.parallel import cores
from convvis_core.topk import cached_index, scan

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("conv1", "conv2_relu")
IMAGES = 1100  # two shards (1,024 + 76 images): the index is joined across them
REQUEST = AtlasRequest("lenet_mnist", LAYERS, "0-15", "quick preview", steps=8, dataset="mnist", images=IMAGES)
SETTINGS = PRESETS["quick preview"].replace(steps=8)
UNITS = 2 * len(LAYERS)  # batches of 8 filters
CLI = [sys.executable, "-m", "convvis_core", "atlas", "lenet_mnist", "--layers", *LAYERS, "--filters", "0-15",
       "--preset", "quick preview", "--steps", "8", "--dataset", "mnist", "--images", str(IMAGES)]

pytestmark = pytest.mark.slow  # real jobs, subprocesses and a local Ray: minutes, not seconds


def entries(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every result stored under a cache folder (pictures, index pieces, indexes), by file name."""
    found = {}
    for path in sorted(folder.glob("*/*/*.npz")):
        with np.load(path, allow_pickle=False) as stored:
            found[f"{path.parent.parent.name}/{path.name}"] = {name: stored[name] for name in stored.files}
    return found


def assert_same_entries(folder: Path, reference: Path, count: int | None = None) -> None:
    """``folder`` holds what ``reference`` holds, or ``count`` of its entries, each equal to the array."""
    mine, theirs = entries(folder), entries(reference)
    if count is None:
        assert sorted(mine) == sorted(theirs)
    else:
        assert len(mine) == count and set(mine) <= set(theirs)
    for name, arrays in mine.items():
        assert sorted(arrays) == sorted(theirs[name]), name
        for field, array in arrays.items():
            np.testing.assert_array_equal(array, theirs[name][field], err_msg=f"{name}: {field}")


def cli_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "CONVVIS_CACHE_DIR": str(folder)}


@pytest.fixture(scope="module")
def reference(lenet, tmp_path_factory) -> dict:
    """One uninterrupted local run, counting the MNIST images it read."""
    folder = tmp_path_factory.mktemp("reference")
    before = IMAGES_READ[mnist_dataset().identity]
    summary = run_atlas(REQUEST, folder=folder)
    return {"folder": folder, "summary": summary, "images_read": IMAGES_READ[mnist_dataset().identity] - before}


def test_the_atlas_stores_what_the_pages_compute_under_their_keys(lenet, reference):
    folder = reference["folder"]
    assert reference["summary"].filters_computed == 32 and reference["summary"].images_computed == IMAGES
    for layer in LAYERS:
        stored = visualize_filters(lenet, layer, range(16), SETTINGS, cache=ResultCache(folder / "featureviz-v2"))
        assert all(result.from_cache for result in stored)
        fresh = visualize_filters(lenet, layer, range(16), SETTINGS, cache=ResultCache(None))
        for mine, page in zip(stored, fresh):
            np.testing.assert_array_equal(mine.image, page.image)
            assert (mine.final_activation, mine.dead) == (page.final_activation, page.dead)
        index = cached_index(lenet, mnist_dataset(), layer, IMAGES, cache=ResultCache(folder / "topk-v1"))
        assert index is not None and index.from_cache
        page = scan(lenet, mnist_dataset(), layer, IMAGES, cache=ResultCache(None)).to_arrays()
        for name, array in index.to_arrays().items():
            np.testing.assert_array_equal(array, page[name], err_msg=name)


def test_the_dataset_is_read_once_in_one_forward_pass_for_all_layers(reference):
    assert reference["images_read"] == IMAGES
    # The shards of 1,024 and 76 images in batches of 64, each batch one forward pass for both layers.
    passes = -(-1024 // topk.BATCH_SIZE) + -(-(IMAGES - 1024) // topk.BATCH_SIZE)
    assert [work.batches for work in reference["summary"].image_work.values()] == [passes]


def test_a_rerun_skips_everything_and_says_it_resumes(lenet, reference):
    summary = run_atlas(REQUEST, LocalEngine(), folder=reference["folder"])
    assert (summary.filters_computed, summary.images_computed) == (0, 0)
    assert not summary.filter_work and not summary.image_work  # no worker computed a unit
    assert summary.resumed == UNITS + 2  # every filter batch and both shards, from the manifest
    assert "32 in 2 layer(s): 0 computed, 32 from the cache" in "\n".join(summary.lines())


def test_a_job_killed_mid_run_resumes_to_the_uninterrupted_result(reference, tmp_path):
    started = subprocess.Popen(CLI, env=cli_env(tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    manifest = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and started.poll() is None:
        found = list((tmp_path / "atlas").glob("*.jsonl"))
        if found and Manifest(found[0]).done("filters"):
            manifest = Manifest(found[0])
            break
        time.sleep(0.05)
    started.send_signal(signal.SIGKILL)
    started.wait()
    assert manifest is not None, "the job finished no unit before the deadline"
    finished = len(manifest.done("filters"))
    assert 1 <= finished < UNITS  # killed mid-run, after its first unit
    resumed = subprocess.run(CLI, env=cli_env(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    computed = int(resumed.stdout.split("layer(s): ")[1].split(" computed")[0])
    assert computed <= 32 - 8 * finished  # what the killed run finished is not computed again
    assert_same_entries(tmp_path, reference["folder"])


def test_two_jobs_racing_on_one_folder_leave_whole_equal_entries(reference, tmp_path):
    command = [*CLI[:6], "conv2_relu", *CLI[8:]]  # one layer of the reference's: half the work
    runs = [subprocess.Popen(command, env=cli_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err
    assert_same_entries(tmp_path, reference["folder"], count=16 + 2 + 1)  # pictures, shard pieces, the index


# --- the ray engine ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray with 2 CPUs for this module, its session files in a folder of its own."""
    import ray

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_with_two_workers_leaves_exactly_the_local_result(reference, local_ray, tmp_path):
    from convvis_core.atlas.ray_engine import RayEngine

    summary = run_atlas(REQUEST, RayEngine(workers=2, threads=cores()), folder=tmp_path)
    assert summary.engine.startswith("ray (a local Ray, 2 CPUs: 2 worker(s)")
    assert (summary.filters_computed, summary.images_computed) == (32, IMAGES)
    assert_same_entries(tmp_path, reference["folder"])


def test_ray_workers_that_cannot_see_the_folder_send_results_to_the_driver(reference, local_ray, tmp_path):
    from convvis_core.atlas.ray_engine import RayEngine

    class Elsewhere(RayEngine):
        """As on machines that do not share the driver's folder: the workers never find its token."""

        def start(self, plan):
            super().start(plan)
            self.probe.unlink()

    request = AtlasRequest("lenet_mnist", ("conv2_relu",), "8-15", "quick preview", steps=8)
    run_atlas(request, Elsewhere(workers=1, threads=cores()), folder=tmp_path)
    assert_same_entries(tmp_path, reference["folder"], count=8)


def test_fewer_images_than_workers_times_a_batch_are_cut_so_every_worker_gets_one():
    assert [atlas_plan.batch_for(images, 2) for images in (1, 3, 12, 127, 128, 2000)] == [1, 2, 6, 64, 64, 64]
    assert atlas_plan.batch_for(12, 1) == 12
    assert [atlas_plan.pass_placement(first, count) for first, count in ((0, 1), (0, 3), (6, 6), (12, 6), (0, 64), (60, 64))] \
        == [(0, 16), (0, 16), (6, 16), (12, 32), (0, 64), (12, 128)]


def test_two_workers_both_rank_three_images_and_the_index_equals_the_local_one(lenet, local_ray, tmp_path):
    import warnings

    from convvis_core.atlas.ray_engine import RayEngine

    request = AtlasRequest("lenet_mnist", LAYERS, "0", "quick preview", steps=1, dataset="mnist", images=3)
    local = run_atlas(request, LocalEngine(), folder=tmp_path / "local")
    assert [work.batches for work in local.image_work.values()] == [1]  # one batch of 3, not padded to 64
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_atlas(request, RayEngine(workers=2, threads=cores()), folder=tmp_path / "ray")
    assert not [str(warning.message) for warning in caught if "fully utilize" in str(warning.message)]
    assert summary.images_computed == 3
    assert sorted(work.batches for work in summary.image_work.values()) == [1, 1]  # images 0–1 and 2, one actor each
    assert all(0 < fraction <= 1 for fraction in summary.busy("images").values())
    assert sorted(work.batches for work in summary.filter_work.values()) == [1, 1]  # filter 0 of each layer
    assert summary.filter_wall > 0 and len(summary.busy("filters")) == 2
    assert set(summary.image_work) == set(summary.filter_work)  # one pool: the same two actors serve both phases
    assert summary.start_wall > 0  # they started (and loaded the model) once, before both phases
    assert_same_entries(tmp_path / "ray", tmp_path / "local")
    for layer in LAYERS:  # and what the Top k page computes, in batches of 64
        index = cached_index(lenet, mnist_dataset(), layer, 3, cache=ResultCache(tmp_path / "ray" / "topk-v1"))
        page = scan(lenet, mnist_dataset(), layer, 3, cache=ResultCache(None)).to_arrays()
        for name, array in index.to_arrays().items():
            np.testing.assert_array_equal(array, page[name], err_msg=name)


# --- a model with several heads -----------------------------------------------------------------

def two_branch_model() -> keras.Model:
    """A shared conv 'trunk', then each head on a conv of its own: 'first_head' (2 classes) reads 'first_conv',
    'second_head' (3 classes) reads 'second_conv'. Untrained: only which layers and keys serve which head matters."""
    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1), name="image")
    trunk = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="trunk")(image)
    heads = []
    for name, classes in (("first", 2), ("second", 3)):
        branch = keras.layers.Conv2D(classes + 2, 3, activation="relu", name=f"{name}_conv")(trunk)
        pooled = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(branch)
        heads.append(keras.layers.Dense(classes, activation="softmax", name=f"{name}_head")(pooled))
    return keras.Model(image, heads, name="two_branches")


def test_the_atlas_explains_the_head_chosen_with_output_and_refuses_an_unknown_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "two_branches.keras"
    two_branch_model().save(path)
    site = tmp_path / "site"
    atlas = ["atlas", str(path), "--filters", "0-1", "--preset", "keras.io example", "--steps", "2", "--size", "28"]
    assert main([*atlas, "--output", "second_head", "--export", str(site)]) == 0
    out, err = capsys.readouterr()
    assert "output: second_head (classes); the model's outputs are 0: first_head (classes), 1: second_head" in err
    assert "exported 9 unit pages of 2 layers for output 'second_head' (4 with pictures" in out
    index = (site / "index.html").read_text(encoding="utf-8")
    assert ("Explains output <b>second_head</b> (index 1 of its 2 outputs); it holds class scores (a classifier), "
            "shape (3,): class 0, class 1, class 2.") in index
    assert "layers/trunk.html" in index and "layers/second_conv.html" in index and "first_conv" not in index
    trunk = (site / "units" / "trunk" / "0.html").read_text(encoding="utf-8")
    assert "<h2>Circuit out: what it drives</h2><p>filters of second_conv</p>" in trunk  # towards the second head

    # Stored under the keys the pages look up with the second head chosen, which are not the first head's.
    settings = PRESETS["keras.io example"].replace(steps=2, size=28)
    second = load_model(str(path)).with_output("second_head")
    assert sorted(cached_filters(second, "second_conv", range(4), settings)) == [0, 1]
    assert not cached_filters(load_model(str(path)), "trunk", range(4), settings)

    assert main([*atlas, "--output", "third_head"]) == 2
    err = capsys.readouterr().err
    assert "error: two_branches.keras has no output 'third_head'; its outputs are: first_head, second_head." in err
    assert "Traceback" not in err


def test_ray_workers_reopen_the_requested_head(local_ray, tmp_path):
    from convvis_core.atlas.ray_engine import RayEngine

    path = tmp_path / "two_branches.keras"
    two_branch_model().save(path)
    request = AtlasRequest(str(path), ("second_conv",), "0-1", "keras.io example", steps=2, size=28,
                           output="second_head")  # a layer only the second head's view has
    run_atlas(request, LocalEngine(), folder=tmp_path / "local")
    assert run_atlas(request, RayEngine(workers=1, threads=cores()), folder=tmp_path / "ray").filters_computed == 2
    assert_same_entries(tmp_path / "ray", tmp_path / "local")
