"""Every limit lives in convvis_core/config.py and is enforced where the input enters: each one is
checked here at its real value where that is cheap (a refused input is never processed), otherwise
through the function's parameter whose default is the config value."""

from __future__ import annotations

import inspect
import os
import tomllib
from pathlib import Path
from typing import Callable, Hashable, Sequence

import numpy as np
import pytest
from PIL import Image

from bad_inputs.payloads import png_header, zip_of
from convvis_core import batches, config, topk
from convvis_core.cache import ResultCache, default_cache
from convvis_core.cam.base import probe_for
from convvis_core.cam.targets import ClassTarget, FilterTarget
from convvis_core.datasets import files
from convvis_core.datasets.base import ArrayDataset, DatasetError
from convvis_core.datasets.files import folder_dataset, zip_dataset
from convvis_core.errors import ConvVisError, ImageError, LayerError, ModelError
from convvis_core.featureviz import PRESETS, visualize_filters
from convvis_core.images import open_image, to_png_bytes
from convvis_core.graph import sub_model
from convvis_core.layers import spatial_layers
from convvis_core.models.uploaded import load_uploaded_model

ROOT = Path(__file__).resolve().parents[1]


def test_the_upload_limit_in_streamlits_config_is_the_one_in_config_py():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] == config.MAX_UPLOAD_MB
    # nothing the uploader lets through is refused later for its size, and nothing larger is accepted
    assert config.MAX_MODEL_BYTES == config.MAX_ZIP_BYTES == config.MAX_UPLOAD_MB * 2**20


def test_an_uploaded_model_over_the_limit_is_refused_before_it_is_read():
    with pytest.raises(ModelError, match=f"'big.keras' is 200 MB; the limit is {config.MAX_UPLOAD_MB} MB"):
        load_uploaded_model(bytes(config.MAX_MODEL_BYTES + 1), "big.keras")  # zero pages: costs no memory


def test_an_uploaded_model_leaves_no_file_behind(lenet, cache_folder, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    lenet.model.save(tmp_path / "mine.keras")
    data = (tmp_path / "mine.keras").read_bytes()
    (tmp_path / "mine.keras").unlink()
    loaded = load_uploaded_model(data, "mine.keras")
    assert loaded.model.count_params() == lenet.model.count_params()
    assert list(tmp_path.iterdir()) == []  # the temporary copy Keras read is gone
    assert not (Path(cache_folder) / "uploads").exists()  # and nothing accumulates in the cache folder


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    assert config.MAX_IMAGE_PIXELS == 40_000_000 and Image.MAX_IMAGE_PIXELS == config.MAX_IMAGE_PIXELS
    over = png_header(8000, 5001)  # 40.008 MP: our check, below Pillow's own error at twice the limit
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageError, match="8000×5001 pixels.*the limit is 40 MP"):
        open_image(over, name="big.png")
    with pytest.raises(ImageError, match="could not be decoded"):  # at the limit: size accepted, then decoded
        open_image(png_header(8000, 5000), name="limit.png")


def test_zip_archives_over_the_size_limit_are_refused_unread():
    with pytest.raises(DatasetError, match=f"the limit is {config.MAX_UPLOAD_MB} MB"):
        zip_dataset(bytes(config.MAX_ZIP_BYTES + 1), "big.zip")


def test_zip_members_and_expanded_size_limits_default_to_config_and_are_enforced(tmp_path):
    defaults = {name: parameter.default for name, parameter in inspect.signature(zip_dataset).parameters.items()}
    assert (defaults["max_bytes"], defaults["max_members"], defaults["max_member_bytes"],
            defaults["max_expanded_bytes"]) == (config.MAX_ZIP_BYTES, config.MAX_ZIP_MEMBERS,
                                                config.MAX_ZIP_MEMBER_BYTES, config.MAX_ZIP_EXPANDED_BYTES)
    folder_defaults = {name: p.default for name, p in inspect.signature(folder_dataset).parameters.items()}
    assert (folder_defaults["max_members"], folder_defaults["max_member_bytes"], folder_defaults["max_total_bytes"]) == (
        config.MAX_ZIP_MEMBERS, config.MAX_ZIP_MEMBER_BYTES, config.MAX_ZIP_EXPANDED_BYTES)
    png = to_png_bytes(Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)))
    archive = zip_of([(f"{i}.png", png) for i in range(5)])
    dataset = zip_dataset(archive, max_expanded_bytes=3 * len(png))  # the fourth and fifth go over the total
    assert dataset.names == ["0.png", "1.png", "2.png"]
    assert dataset.skipped == {files.OVER_TOTAL: ["3.png", "4.png"]}
    with pytest.raises(DatasetError, match="holds 5 files; the limit is 4"):
        zip_dataset(archive, max_members=4)
    assert len(zip_dataset(archive, max_members=5)) == 5


def test_feature_visualization_requests_over_the_limits_are_refused_before_any_work(lenet):
    quick = PRESETS["quick preview"].replace(size=28, steps=4)
    too_large = [
        (list(range(config.MAX_FILTERS_PER_REQUEST + 1)), quick),
        ([0], quick.replace(steps=config.MAX_STEPS + 1)),
        ([0], quick.replace(size=config.MAX_IMAGE_SIDE + 1)),
    ]
    for filters, settings in too_large:
        with pytest.raises(ConvVisError, match="Request too large"):
            visualize_filters(lenet, "conv1", filters, settings, cache=ResultCache(None))
    # exactly at the limits the request passes that check (and fails on the filter index instead)
    at_limit = quick.replace(steps=config.MAX_STEPS, size=config.MAX_IMAGE_SIDE)
    with pytest.raises(LayerError, match="out of range"):
        visualize_filters(lenet, "conv1", list(range(config.MAX_FILTERS_PER_REQUEST)), at_limit,
                          cache=ResultCache(None))


def test_a_top_k_scan_reads_at_most_the_limit(lenet):
    many = ArrayDataset("many", "test-many-blank", np.zeros((config.MAX_SCAN_IMAGES + 1, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="Cannot scan 20,001 images.*choose 1 to 20,000"):
        topk.scan(lenet, many, "conv1", count=config.MAX_SCAN_IMAGES + 1, cache=ResultCache(None))
    assert batches.scan_count(many, None) == config.MAX_SCAN_IMAGES  # "all" means the limit


def test_the_disk_cache_evicts_the_least_recently_used_files_past_its_byte_limit(tmp_path):
    assert ResultCache(tmp_path).max_bytes == config.MAX_CACHE_BYTES
    assert default_cache("limits-test").max_bytes == config.MAX_CACHE_BYTES
    entry = {"values": np.zeros(1000, np.float64)}  # 8 kB of array, a little more as .npz
    writer = ResultCache(tmp_path, evict_every=10**6)  # evicted by hand below
    for index in range(5):
        writer.put(f"{index:064x}", entry)
    files = {index: tmp_path / "00" / f"{index:064x}.npz" for index in range(5)}
    size = files[0].stat().st_size
    for index, path in files.items():  # written in order, one second apart
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
    reader = ResultCache(tmp_path, max_bytes=3 * size, evict_every=10**6)  # a fresh process: reads the disk
    assert reader.get(f"{0:064x}") is not None  # the oldest is read again: now the most recently used
    reader.evict()
    assert sorted(index for index, path in files.items() if path.exists()) == [0, 3, 4]
    assert sum(path.stat().st_size for path in tmp_path.glob("*/*.npz")) <= 3 * size
    assert ResultCache(tmp_path).get(f"{1:064x}") is None  # an evicted result is a miss, to compute again

    automatic = ResultCache(tmp_path / "auto", max_bytes=2 * size, evict_every=1)  # evicts after every write
    for index in range(6):
        automatic.put(f"{index:064x}", entry)
    assert len(list((tmp_path / "auto").glob("*/*.npz"))) <= 2


def test_the_memory_layer_is_bounded_in_bytes_and_entries():
    cache = ResultCache(None, memory_entries=3, memory_bytes=20_000)
    for index in range(3):
        cache.put(str(index), {"values": np.zeros(1000)})  # 8 kB each: the third pushes out the first
    assert cache.get("0") is None and cache.get("1") is not None and cache.memory_used == 16_000
    cache.put("huge", {"values": np.zeros(10_000)})  # larger than the whole layer: not kept in memory
    assert cache.get("huge") is None and cache.memory_used == 16_000
    for index in range(3, 9):
        cache.put(str(index), {"values": np.zeros(10)})
    assert cache.get("8") is not None and cache.get("2") is None and cache.memory_used == 3 * 80
    stored = cache.get("8")["values"]
    with pytest.raises(ValueError, match="read-only"):
        stored[0] = 1.0  # shared by every session: nobody may change it in place


def assert_keeps_the_most_recent(get: Callable[[Hashable], object], keys: Sequence[Hashable], limit: int) -> None:
    """Asking for ``keys`` in turn keeps exactly the last ``limit`` objects: those come back as the
    same objects, and the one before them was dropped (asking again builds a new one)."""
    assert len(keys) > limit
    built = [get(key) for key in keys]
    for key, first in list(zip(keys, built))[-limit:]:  # oldest kept first, so no ask drops another
        assert get(key) is first
    assert get(keys[-limit - 1]) is not built[-limit - 1]


def test_objects_kept_per_model_are_bounded(lenet):
    paths = [layer.path for layer in spatial_layers(lenet.model)]
    subsets = [tuple(p for bit, p in enumerate(paths) if mask >> bit & 1) for mask in range(1, 2 ** len(paths))]
    most = config.MAX_FEATURE_MODELS_PER_MODEL
    assert_keeps_the_most_recent(lambda subset: sub_model(lenet.model, subset), subsets[:most + 3], most)
    targets = [ClassTarget(0)] + [FilterTarget(path, 0) for path in paths]
    assert_keeps_the_most_recent(lambda pair: probe_for(lenet, *pair),
                                 [(layer, target) for layer in paths for target in targets], config.MAX_PROBES_PER_MODEL)
    assert topk.REDUCERS.limit == config.MAX_REDUCERS_PER_MODEL  # a scan's traced reducer per layer
