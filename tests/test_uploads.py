"""Users' own model files: good ones load and predict as before; code-carrying ones are refused (an
upload on the Filters page: test_filters_page.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from PIL import Image

from convvis_core.errors import ModelError, UnsafeModelError
from convvis_core.labels import read_labels
from convvis_core.layers import spatial_layers
from convvis_core.models import load_model, load_uploaded_model
from convvis_core.predictions import top_k


def small_cnn(channels: int = 3) -> keras.Model:
    inputs = keras.Input((32, 32, channels))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="head")(x), name="small")


def saved(model: keras.Model, path: Path) -> bytes:
    model.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_plain_model_loads_and_predicts_as_before(tmp_path, suffix):
    model = small_cnn()
    loaded = load_uploaded_model(saved(model, tmp_path / f"m{suffix}"), f"mine{suffix}")
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert loaded.info.input_size == (32, 32) and loaded.info.channels == 3
    assert loaded.info.class_names == ("class 0", "class 1", "class 2", "class 3")
    assert [layer.path for layer in spatial_layers(loaded.model)] == ["conv"]


def test_a_model_path_loads_through_the_registry_entry_point(tmp_path):
    path = tmp_path / "gray.keras"
    small_cnn(channels=1).save(path)
    assert load_model(str(path)).info.channels == 1


def _lambda_model(marker: Path) -> keras.Model:
    def leave_a_mark(x):
        marker.write_text("code ran")
        return x * 2.0

    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Lambda(leave_a_mark, name="sneaky")(inputs))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_lambda_layer_is_refused_without_running_it(tmp_path, suffix):
    marker = tmp_path / "marker.txt"
    data = saved(_lambda_model(marker), tmp_path / f"lambda{suffix}")
    marker.unlink()  # building the model ran the function once; loading must not
    with pytest.raises(UnsafeModelError, match="Lambda layer \\('sneaky'\\).*never executes code"):
        load_uploaded_model(data, f"lambda{suffix}")
    assert not marker.exists()


@keras.saving.register_keras_serializable(package="Untrusted")
class Doubler(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


def test_a_custom_class_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 3))
    data = saved(keras.Model(inputs, Doubler(name="doubler")(inputs)), tmp_path / "custom.keras")
    with pytest.raises(UnsafeModelError, match="custom class Untrusted>Doubler"):
        load_uploaded_model(data, "custom.keras")


def test_random_and_broken_files_are_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ModelError, match="not a Keras model file"):
        load_uploaded_model(rng.bytes(4096), "random.keras")
    with pytest.raises(ModelError, match="empty"):
        load_uploaded_model(b"", "empty.h5")
    good = saved(small_cnn(), tmp_path / "good.keras")
    with pytest.raises(ModelError, match="corrupt or truncated"):
        load_uploaded_model(good[: len(good) // 2], "half.keras")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ModelError, match="not a Keras model \\(no config.json\\)"):
        load_uploaded_model(buffer.getvalue(), "notes.keras")


def test_a_weights_only_file_asks_for_the_whole_model(tmp_path):
    path = tmp_path / "w.weights.h5"
    small_cnn().save_weights(path)
    with pytest.raises(ModelError, match="weights only"):
        load_uploaded_model(path.read_bytes(), "w.weights.h5")


def test_models_that_are_not_image_cnns_are_explained(tmp_path):
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    two_inputs = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(ModelError, match="2 inputs"):
        load_uploaded_model(saved(two_inputs, tmp_path / "two.keras"), "two.keras")
    vector = keras.Input((10,))
    mlp = keras.Model(vector, keras.layers.Dense(2)(vector))
    with pytest.raises(ModelError, match=r"input of shape \(10,\)"):
        load_uploaded_model(saved(mlp, tmp_path / "mlp.keras"), "mlp.keras")


@pytest.mark.parametrize("file_name, text", [
    ("labels.txt", "daisy\ndandelion\nrose\ntulip\n"),
    ("labels.json", '["daisy", "dandelion", "rose", "tulip"]'),
    ("index.json", '{"0": "daisy", "1": "dandelion", "2": "rose", "3": "tulip"}'),
    ("class_indices.json", '{"rose": 2, "daisy": 0, "tulip": 3, "dandelion": 1}'),  # Keras' class_indices
])
def test_labels_files_name_an_own_models_classes(tmp_path, file_name, text):
    loaded = load_uploaded_model(saved(small_cnn(), tmp_path / "m.keras"), "flowers.keras")
    named = loaded.with_labels(read_labels(text.encode(), file_name), file_name)
    assert named.info.class_names == ("daisy", "dandelion", "rose", "tulip")
    assert named.info.key != loaded.info.key  # results cached under the old names are not reused
    x = np.asarray(Image.new("RGB", (32, 32), (200, 30, 30)))
    assert {p.class_name for p in top_k(named, Image.fromarray(x), k=4)} == set(named.info.class_names)


@pytest.mark.parametrize("file_name, text, message", [
    ("labels.txt", "daisy\nrose\n", "names 2 classes, but flowers.keras has 4 outputs"),
    ("labels.txt", "daisy\n\nrose\ntulip\n", "an empty line"),
    ("labels.json", '{"daisy": 0, "rose": 2}', "every index from 0 up"),
    ("labels.json", "[daisy", "not valid JSON"),
    ("labels.txt", "\n", "no names"),
])
def test_wrong_labels_files_get_a_clear_message(tmp_path, file_name, text, message):
    loaded = load_uploaded_model(saved(small_cnn(), tmp_path / "m.keras"), "flowers.keras")
    with pytest.raises(ModelError, match=message):
        loaded.with_labels(read_labels(text.encode(), file_name), file_name)


@pytest.mark.slow  # a subprocess: TensorFlow's import alone takes seconds
def test_cli_takes_labels_and_preprocessing_for_a_model_file(tmp_path):
    path = tmp_path / "flowers.keras"
    small_cnn().save(path)
    (tmp_path / "labels.txt").write_text("daisy\ndandelion\nrose\ntulip\n")
    Image.new("RGB", (40, 40), (10, 200, 10)).save(tmp_path / "green.png")
    command = [sys.executable, "-m", "convvis_core", "predict", str(path), str(tmp_path / "green.png"), "--top", "4"]
    inferred = subprocess.run(command + ["--labels", str(tmp_path / "labels.txt")], capture_output=True, text=True, timeout=300)
    assert inferred.returncode == 0, inferred.stderr
    assert "preprocessing: unit" in inferred.stderr and "nothing in the model says" in inferred.stderr
    assert {line.split()[1] for line in inferred.stdout.splitlines()} == {"daisy", "dandelion", "rose", "tulip"}
    chosen = subprocess.run(command + ["--labels", str(tmp_path / "labels.txt"), "--preprocessing", "tf"],
                            capture_output=True, text=True, timeout=300)
    assert "preprocessing: tf" in chosen.stderr and chosen.stdout != inferred.stdout
    wrong = subprocess.run(command + ["--labels", str(path)], capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


def test_the_identity_changes_with_the_pixels_the_labels_and_how_an_output_is_read(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs))
    logits = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))  # a linear vector: classes or values
    loaded = load_uploaded_model(saved(logits, tmp_path / "m.keras"), "flowers.keras")
    other = next(mode for mode in ("tf", "caffe") if mode != loaded.info.preprocessing)
    views = [loaded, loaded.with_preprocessing(other), loaded.with_labels(["a", "b", "c", "d"], "labels.txt"),
             loaded.with_output(0, "values")]
    assert len({view.identity for view in views}) == len(views)
    assert len({view.info.key for view in views}) == 2  # widget keys: the pixels and the reading keep them
    assert loaded.with_preprocessing(loaded.info.preprocessing).identity == loaded.identity
    assert loaded.with_output(0, "values").with_output(0, "classes").identity == loaded.identity
