"""Circuits: rankings, folded BatchNorm and composed depthwise+pointwise kernels checked against
numpy on the raw weights, against Keras' own layers, and contributions against explicit loops (the page:
test_circuits_page.py)."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.circuits import circuit, circuit_layers, linear_conv, readers
from convvis_core.presentation.sheets import kernel_images
from convvis_core.errors import LayerError
from convvis_core.models import LoadedModel, ModelInfo
from convvis_core.samples import load_sample


def apply(conv, inputs: np.ndarray) -> np.ndarray:
    """The effective convolution as one Keras conv op plus bias."""
    outputs = keras.ops.conv(inputs.astype(np.float32), conv.kernel, strides=conv.strides, padding=conv.padding,
                             dilation_rate=conv.dilation)
    return np.asarray(outputs) + conv.bias


def bn_scale(layer: keras.layers.BatchNormalization) -> np.ndarray:
    gamma, _, _, variance = layer.get_weights()
    return gamma / np.sqrt(variance + layer.epsilon)


def brute_force_contributions(inputs: np.ndarray, kernel: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """Σ over the window of slice ⊙ input patch, per channel, averaged over every output position: loops."""
    height, width, _ = inputs.shape
    kh, kw = kernel.shape[:2]
    if padding == "same":  # TensorFlow's SAME: the extra row/column of padding goes after
        out_h, out_w = -(-height // stride), -(-width // stride)
        pad_h, pad_w = max((out_h - 1) * stride + kh - height, 0), max((out_w - 1) * stride + kw - width, 0)
        inputs = np.pad(inputs, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    else:
        out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
    total = np.zeros(inputs.shape[-1])
    for y in range(out_h):
        for x in range(out_w):
            total += (inputs[y * stride:y * stride + kh, x * stride:x * stride + kw] * kernel).sum(axis=(0, 1))
    return total / (out_h * out_w)


def hand_built(kind: str) -> LoadedModel:
    """Small models with random, non-trivial BatchNorm statistics (negative scales included)."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((9, 9, 4), name="image")
    if kind == "conv_bn":
        x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    elif kind == "separable":
        x = keras.layers.SeparableConv2D(3, 3, strides=2, padding="same", depth_multiplier=2, name="conv")(inputs)
    else:  # depthwise (×2) → BN → linear activation → 1×1 conv, each with a bias
        x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(inputs)
        x = keras.layers.BatchNormalization(name="dw_bn")(x)
        x = keras.layers.Activation("linear", name="dw_act")(x)
        x = keras.layers.Conv2D(3, 1, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(x))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, size) * rng.choice([-1, 1], size), rng.normal(size=size),
                               rng.normal(size=size), rng.uniform(0.2, 3, size)])
        elif layer.weights:
            layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    return LoadedModel(model, ModelInfo(kind, kind, "test", (9, 9), 4, "raw"))


def test_lenet_ranking_is_the_kernel_slice_norm_order(lenet):
    kernel = lenet.model.get_layer("conv2").get_weights()[0][:, :, :, 3]
    norms, sums = np.linalg.norm(kernel, axis=(0, 1)), kernel.sum(axis=(0, 1))
    found = circuit(lenet, "conv2_relu", 3)
    assert found.source == "pool1" and found.conv == "conv2" and found.depthwise is None
    assert [c.index for c in found.inputs] == list(np.argsort(-norms, kind="stable"))
    for channel in found.inputs:
        np.testing.assert_allclose(channel.kernel, kernel[:, :, channel.index], rtol=1e-6)
        assert channel.norm == pytest.approx(norms[channel.index], rel=1e-5)
        assert channel.sign == ("excitatory" if sums[channel.index] > 0 else "inhibitory")
    assert found.table(4)[0] == {"rank": 1, "channel": found.inputs[0].index, "name": f"pool1 #{found.inputs[0].index}",
                                 "sign": found.inputs[0].sign, "norm": found.inputs[0].norm, "sum": found.inputs[0].total}


@pytest.mark.parametrize("kind", ["conv_bn", "separable", "depthwise_pointwise"])
def test_the_linear_conv_reproduces_the_layer_and_folds_batchnorm(kind):
    loaded = hand_built(kind)
    model = loaded.model
    conv = linear_conv(model, "relu")
    x = np.random.default_rng(1).normal(size=(2, 9, 9, 4)).astype(np.float32)
    before_relu = np.asarray(keras.Model(model.input, model.get_layer("bn").output)(x))
    np.testing.assert_allclose(apply(conv, x), before_relu, rtol=1e-4, atol=1e-4)
    assert conv.source is None and conv.depthwise == ("dw" if kind == "depthwise_pointwise" else None)
    if kind == "conv_bn":  # the ranking on the raw weights × the BN scale, signs flipped where it is negative
        raw = model.get_layer("conv").get_weights()[0]
        scale = bn_scale(model.get_layer("bn"))
        for f in range(3):
            effective = raw[:, :, :, f] * scale[f]
            found = circuit(loaded, "relu", f)
            assert [c.index for c in found.inputs] == list(np.argsort(-np.linalg.norm(effective, axis=(0, 1))))
            raw_signs = np.sign(raw[:, :, :, f].sum(axis=(0, 1)))
            assert [c.sign == "excitatory" for c in found.inputs] == \
                   [raw_signs[c.index] * np.sign(scale[f]) > 0 for c in found.inputs]
        assert (scale < 0).any()  # the flip was exercised


def test_nested_models_are_traced_across_their_boundaries():
    base_input = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(base_input)
    x = keras.layers.ReLU(name="relu1")(keras.layers.BatchNormalization(name="bn1")(x))
    base = keras.Model(base_input, keras.layers.Conv2D(2, 3, name="conv2")(x), name="base")
    inputs = keras.Input((9, 9, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(base(keras.layers.Rescaling(0.5, name="scale")(inputs))))
    first, second = linear_conv(model, "base/relu1"), linear_conv(model, "base/conv2")
    assert (first.conv, first.conv_input, first.source) == ("base/conv1", "scale", None)  # the image, rescaled
    assert (second.conv, second.conv_input, second.source) == ("base/conv2", "base/relu1", "base/relu1")
    assert [layer.path for layer in circuit_layers(model)] == ["base/conv1", "base/bn1", "base/relu1", "base/conv2"]


@pytest.mark.parametrize("block", [2, 8])
def test_mobilenet_depthwise_pointwise_pairs_compose_into_one_conv(mobilenet, block):
    model = mobilenet.model
    conv = linear_conv(model, f"conv_pw_{block}_relu")
    assert (conv.conv, conv.depthwise, conv.source) == (f"conv_pw_{block}", f"conv_dw_{block}", f"conv_pw_{block - 1}_relu")
    assert conv.conv_input == ("conv_pad_2" if block == 2 else f"conv_pw_{block - 1}_relu")
    channels = model.get_layer(f"conv_dw_{block}").kernel.shape[2]
    x = np.random.default_rng(block).uniform(0, 6, size=(1, 11, 11, channels)).astype(np.float32)
    y = model.get_layer(f"conv_dw_{block}")(x)  # eager calls: no new nodes in the shared model
    y = model.get_layer(f"conv_dw_{block}_bn")(y, training=False)  # ReLU left out: the linear map
    y = model.get_layer(f"conv_pw_{block}_bn")(model.get_layer(f"conv_pw_{block}")(y), training=False)
    np.testing.assert_allclose(apply(conv, x), np.asarray(y), rtol=1e-3, atol=1e-3)
    dw, pw = model.get_layer(f"conv_dw_{block}").get_weights()[0][:, :, :, 0], model.get_layer(f"conv_pw_{block}").get_weights()[0][0, 0]
    expected = dw[:, :, :, None] * bn_scale(model.get_layer(f"conv_dw_{block}_bn"))[:, None] * pw \
        * bn_scale(model.get_layer(f"conv_pw_{block}_bn"))
    np.testing.assert_allclose(conv.kernel, expected, rtol=1e-4, atol=1e-7)


def test_contributions_equal_explicit_loops_and_add_up_to_the_filter(lenet, mobilenet):
    digit = load_sample("digit_7")
    found = circuit(lenet, "conv2", 3, image=digit)
    x = model_input(digit, lenet.info)
    pool1, conv2 = keras.Model(lenet.model.input, [lenet.model.get_layer(n).output for n in ("pool1", "conv2")])(x)
    kernel = lenet.model.get_layer("conv2").get_weights()[0][:, :, :, 3]
    expected = brute_force_contributions(np.asarray(pool1)[0], kernel, 1, "same")
    assert found.ranked_by == "contribution"
    assert [c.index for c in found.inputs] == list(np.argsort(-np.abs(expected), kind="stable"))
    np.testing.assert_allclose([c.contribution for c in found.inputs], expected[[c.index for c in found.inputs]],
                               rtol=1e-4, atol=1e-6)
    assert sum(c.contribution for c in found.inputs) + found.bias == pytest.approx(float(np.mean(conv2[0, :, :, 3])), abs=1e-4)

    cat = load_sample("chelsea")  # stride 2, valid, reading the explicitly padded map
    found = circuit(mobilenet, "conv_pw_2_relu", 7, image=cat)
    padded = keras.Model(mobilenet.model.input, mobilenet.model.get_layer("conv_pad_2").output)(model_input(cat, mobilenet.info))
    expected = brute_force_contributions(np.asarray(padded)[0], linear_conv(mobilenet.model, "conv_pw_2_relu").kernel[..., 7], 2, "valid")
    np.testing.assert_allclose([c.contribution for c in found.inputs], expected[[c.index for c in found.inputs]],
                               rtol=1e-3, atol=1e-5)


def test_first_layer_kernels_are_pictures_in_rgb(mobilenet, lenet):
    conv = linear_conv(mobilenet.model, "conv1_relu")
    images = kernel_images(conv, "tf")
    assert images.shape == (32, 3, 3, 3) and images.dtype == np.uint8
    assert (images.min(axis=(1, 2, 3)) == 0).all() and (images.max(axis=(1, 2, 3)) == 255).all()
    raw = mobilenet.model.get_layer("conv1").get_weights()[0] * bn_scale(mobilenet.model.get_layer("conv1_bn"))
    first = raw[..., 0]
    np.testing.assert_allclose(images[0], (first - first.min()) / (first.max() - first.min()) * 255, atol=0.51)
    np.testing.assert_array_equal(kernel_images(conv, "caffe"), images[..., ::-1])  # BGR models shown in RGB
    assert sorted(c.name for c in circuit(mobilenet, "conv1_relu", 5).inputs) == ["blue", "green", "red"]
    assert circuit(mobilenet, "conv1_relu", 0).zero_weights and not circuit(mobilenet, "conv1_relu", 5).zero_weights
    assert kernel_images(linear_conv(lenet.model, "conv1"), "unit").shape == (20, 5, 5)
    with pytest.raises(LayerError, match="reads pool1, not the image"):
        kernel_images(linear_conv(lenet.model, "conv2"), "unit")


def test_only_layers_that_trace_back_to_a_conv_are_offered(mobilenet):
    paths = [layer.path for layer in circuit_layers(mobilenet.model)]
    assert {"conv1_relu", "conv_pw_8", "conv_pw_8_bn", "conv_pw_8_relu", "conv_pw_13_relu"} <= set(paths)
    assert not {"conv_dw_8", "conv_dw_8_relu", "input_layer"} & set(paths)
    with pytest.raises(LayerError, match="depthwise convolution.*Pick the pointwise layer"):
        linear_conv(mobilenet.model, "conv_dw_8_relu")
    with pytest.raises(LayerError, match="Filter 600 is out of range: conv_pw_8_relu has 512 filters"):
        circuit(mobilenet, "conv_pw_8_relu", 600)


@pytest.mark.slow  # a subprocess: TensorFlow's import alone takes seconds
def test_cli_writes_the_sheet_and_prints_the_ranking(lenet, tmp_path):
    out = tmp_path / "c.png"
    result = subprocess.run([sys.executable, "-m", "convvis_core", "circuit", "lenet_mnist", "conv2", "3", "--top", "4",
                             "--steps", "8", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ranking = [line.split()[1:3] for line in result.stdout.splitlines() if line.strip()[:2] in ("1.", "2.", "3.", "4.")]
    assert ranking == [["pool1", f"#{c.index}"] for c in circuit(lenet, "conv2", 3).top(4)]
    with Image.open(out) as sheet:
        assert sheet.width == 6 + 4 * (96 + 6) and sheet.height > 2 * 96


def test_readers_are_the_next_layers_filters_ranked_by_the_slice_that_reads_the_filter(lenet):
    found = readers(lenet.model, "conv1_relu", 3)
    kernel = lenet.model.get_layer("conv2").get_weights()[0][:, :, 3, :]  # how each conv2 filter reads channel 3
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1)))
    assert found.reader_layer == "conv2_relu" and len(found.readers) == 50
    assert [r.index for r in found.top(5)] == list(np.argsort(-norms, kind="stable")[:5])
    np.testing.assert_allclose([r.norm for r in found.readers], np.sort(norms)[::-1], rtol=1e-6)
    assert readers(lenet.model, "conv2_relu", 0) is None  # a Dense layer reads it: no filters


def test_readers_across_a_depthwise_pointwise_pair_equal_the_composed_kernel(mobilenet):
    found = readers(mobilenet.model, "conv_pw_8_relu", 5)
    assert found.reader_layer == "conv_pw_9_relu"
    composed = linear_conv(mobilenet.model, "conv_pw_9_relu").kernel[:, :, 5, :]
    norms = np.sqrt((composed.astype(np.float64) ** 2).sum(axis=(0, 1)))
    assert found.readers[0].index == int(np.argmax(norms))
    assert found.readers[0].norm == pytest.approx(norms.max(), rel=1e-6)
