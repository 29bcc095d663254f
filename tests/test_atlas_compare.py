"""`convvis atlas A --compare B`: both atlases, the comparison stored in the cache, and a compare page per
layer in the export. B is LeNet with only conv1 fine-tuned here (on inverted digits), so conv1 changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convvis_core.cache import ResultCache, default_cache
from convvis_core.cli import main
from convvis_core.compare import similarity
from convvis_core.compare.changes import most_changed
from convvis_core.datasets.packaged import mnist_dataset
from convvis_core.models import load_model
from convvis_core.presentation.site import slug
from convvis_testing.models import copy_model, fine_tune, one_conv_model
from test_export import references

LAYERS = ("conv1", "conv2_relu")
ATLAS = ["atlas", "lenet_mnist", "--layers", *LAYERS, "--filters", "0-3", "--preset", "keras.io example", "--steps", "4",
         "--size", "28", "--dataset", "mnist", "--images", "64"]


@pytest.fixture(scope="module")
def tuned_file(lenet, tmp_path_factory) -> Path:
    digits = mnist_dataset()
    tuned = copy_model(lenet, "conv1-only")
    fine_tune(tuned, 255 - digits.images[:1000], digits.labels[:1000], ("conv2", "fc1", "logits"), epochs=1)
    path = tmp_path_factory.mktemp("tuned") / "tuned.keras"
    tuned.model.save(path)
    return path


@pytest.mark.slow  # two atlases and two exported sites
def test_compare_pages_show_compare_models_and_a_rerun_finds_the_comparison(lenet, tuned_file, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "cache"))
    computed = similarity.COMPARISONS[lenet.info.display_name]
    site = tmp_path / "site"
    assert main([*ATLAS, "--compare", str(tuned_file), "--export", str(site)]) == 0
    assert "2 compare pages and B's site in other/" in capsys.readouterr().out
    assert similarity.COMPARISONS[lenet.info.display_name] == computed + 1
    default_cache(similarity.CACHE_NAMESPACE).forget_memory()  # as a new process: only the disk
    assert main([*ATLAS, "--compare", str(tuned_file)]) == 0
    assert similarity.COMPARISONS[lenet.info.display_name] == computed + 1 and "(cached)" in capsys.readouterr().out

    other = load_model(str(tuned_file))
    expected = similarity.compare_models(lenet, other, mnist_dataset(), 64, LAYERS,
                                                                cache=ResultCache(tmp_path / "fresh"))
    assert expected.layer_cka("conv1") < 1.0 - 1e-6  # conv1 did change: the check below is not 1 == 1
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "other/index.html" in index
    for layer in LAYERS:
        page = (site / "compare" / f"{slug(layer)}.html").read_text(encoding="utf-8")
        assert float(re.search(r"linear CKA ([0-9.]+)", page).group(1)) == pytest.approx(
            expected.layer_cka(layer), abs=1e-6)
        ranked = [change.filter for change in most_changed(lenet, other, expected, layer)]
        assert [int(f) for f in re.findall(r"<tr><td>#(\d+)</td>", page)] == ranked
        for f in ranked:  # each row: A's unit page and B's, from both atlases' exports
            assert f"../units/{slug(layer)}/{f}.html" in page and f"../other/units/{slug(layer)}/{f}.html" in page
        assert f"compare/{slug(layer)}.html" in index
        assert f"../compare/{slug(layer)}.html" in (site / "layers" / f"{slug(layer)}.html").read_text(encoding="utf-8")
    for f in range(4):  # B's pictures are B's own: conv1's weights changed, so each picture differs from A's
        mine, theirs = site / "img" / "conv1" / f"{f}.png", site / "other" / "img" / "conv1" / f"{f}.png"
        assert (site / "other" / "units" / "conv1" / f"{f}.html").is_file()
        assert mine.is_file() and theirs.is_file() and mine.read_bytes() != theirs.read_bytes()
    for page in site.rglob("*.html"):
        for target in references(page):
            assert (page.parent / target).resolve().is_file(), f"{page}: {target} is missing"


@pytest.mark.parametrize("size, layer, message", [(32, "conv1", "different images"),
                                                  (28, "elsewhere", "no spatial layer at the same path")])
def test_a_model_b_that_cannot_be_compared_is_a_message_before_any_work(size, layer, message, tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "other.keras"
    one_conv_model(size, layer).save(path)
    assert main([*ATLAS, "--compare", str(path), "--export", str(tmp_path / "site")]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert "engine:" not in captured.out and not (tmp_path / "site").exists()


@pytest.mark.slow  # a local Ray started by the command, two atlases on each engine
def test_the_ray_engine_exports_the_same_comparison_and_pictures_as_the_local_one(tuned_file, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "cache"))
    assert main([*ATLAS, "--compare", str(tuned_file), "--export", str(tmp_path / "local")]) == 0
    monkeypatch.setenv("CONVVIS_CACHE_DIR", str(tmp_path / "ray-cache"))  # nothing computed locally is reused
    assert main([*ATLAS, "--compare", str(tuned_file), "--engine", "ray", "--workers", "2", "--threads", "2",
                 "--export", str(tmp_path / "ray")]) == 0
    local = {path.relative_to(tmp_path / "local") for path in (tmp_path / "local").rglob("*") if path.is_file()}
    ray = {path.relative_to(tmp_path / "ray") for path in (tmp_path / "ray").rglob("*") if path.is_file()}
    assert local == ray and Path("other/img/conv1/3.png") in ray and Path("compare/conv1.html") in ray
    differing = [str(path) for path in sorted(local)
                 if (tmp_path / "local" / path).read_bytes() != (tmp_path / "ray" / path).read_bytes()]
    assert not differing
