"""Circuits: which channels of the previous layer drive a filter, and through which weights.

A filter of a convolution is a weighted sum of the previous layer's channels; the kernel slice of
each input channel says how, and its L2 norm how strongly. Ranking the slices, calling each
excitatory or inhibitory, and showing each input channel's own feature visualization explains a
unit the way Distill's *Circuits* thread does.

The weights are first made the linear map the chosen layer really computes: BatchNormalization
after the conv is folded in (a negative scale flips excitatory and inhibitory), and MobileNet's
depthwise → pointwise pairs are composed into one ordinary kernel (see :func:`linear_conv`).
Kernel pictures and circuit sheets are drawn in drawing.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import keras
import numpy as np
from PIL import Image

from convvis_core.batches import model_input
from convvis_core.errors import LayerError
from convvis_core.images import Fit
from convvis_core.graph import flat_graph, sub_model
from convvis_core.layers import SpatialLayer, get_layer, spatial_layers
from convvis_core.models.base import LoadedModel
from convvis_core.preprocessing import preprocess

RankBy = Literal["weight", "contribution"]  # what a circuit's inputs are ordered by
# Layers between a conv and the layer picked that leave each channel a function of the same
# channel only: the filter is still the conv's filter.
_PER_CHANNEL = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation,
                keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Dropout, keras.layers.SpatialDropout2D,
                keras.layers.ZeroPadding2D)
# Layers in front of a conv that change nothing about what a channel means: skipped when naming
# the layer whose channels feed it (an activation or BatchNorm output is what the conv reads).
_TRANSPARENT = (keras.layers.ZeroPadding2D, keras.layers.Dropout, keras.layers.SpatialDropout2D,
                keras.layers.Rescaling, keras.layers.Normalization)
# Layers after a conv that keep each channel a function of the same channel (pooling too, unlike
# _PER_CHANNEL, since a pooled map no longer has the conv's positions): still that conv's filters.
_KEEPS_CHANNELS = _PER_CHANNEL + _TRANSPARENT + (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_COLOUR_NAMES = ("red", "green", "blue")
_NEGLIGIBLE = 1e-6  # a filter whose weights' norm is below this share of the layer's largest is all zeros


@dataclass(frozen=True)
class LinearConv:
    """The linear map from the channels of ``source`` to the filters of ``layer``, as one convolution.

    Applying ``kernel`` (with ``strides``, ``padding``, ``dilation``) to the output of
    ``conv_input`` and adding ``bias`` gives ``layer``'s values before any activation function.
    """

    layer: str  # the layer picked
    conv: str  # the Conv2D / SeparableConv2D computing its filters
    depthwise: str | None  # the DepthwiseConv2D composed into ``conv``, if any
    source: str | None  # the layer whose channels feed the filters; None: the image
    conv_input: str | None  # the layer whose output the first convolution reads; None: the model input
    kernel: np.ndarray = field(repr=False)  # (kh, kw, input channels, filters), BatchNorm folded in
    bias: np.ndarray = field(repr=False)  # (filters,)
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Connection:
    """One channel connected to a filter through a kernel slice: an input channel the filter reads
    (in a :class:`Circuit`), or a later filter that reads it (in :class:`Readers`)."""

    index: int
    name: str  # "conv_pw_7_relu #12", or "red" for an image channel
    kernel: np.ndarray = field(repr=False)  # (kh, kw) slice of the effective kernel
    norm: float  # L2 norm of the slice: how strongly the reading filter listens to the read channel
    total: float  # sum of the slice: > 0 excitatory (a uniform input raises the reader), < 0 inhibitory
    contribution: float | None = None  # mean over the output map of slice ⊙ input patch, on an image

    @property
    def sign(self) -> str:
        return "excitatory" if self.total > 0 else "inhibitory" if self.total < 0 else "zero"


@dataclass(frozen=True)
class Circuit:
    """A filter and every input channel, strongest first (by weight norm, or by contribution).

    Small on purpose (the kernel slices of one filter, not the layer's kernel): pages cache it.
    """

    layer: str
    filter_index: int
    conv: str  # as in :class:`LinearConv`
    depthwise: str | None
    source: str | None
    inputs: tuple[Connection, ...]
    ranked_by: RankBy
    bias: float
    zero_weights: bool = False  # weights ≈ 0 next to the layer's other filters: nothing drives it (a dead filter)

    def top(self, count: int) -> tuple[Connection, ...]:
        return self.inputs[:count]

    def table(self, count: int) -> list[dict]:
        """The ``count`` strongest inputs as rows (rank, channel, sign, norm, sum[, contribution])."""
        return [{"rank": rank, "channel": channel.index, "name": channel.name, "sign": channel.sign,
                 "norm": channel.norm, "sum": channel.total}
                | ({} if channel.contribution is None else {"contribution": channel.contribution})
                for rank, channel in enumerate(self.top(count), start=1)]


@dataclass
class _Trace:
    """The Keras layers a picked layer's filters come from (no weights read yet)."""

    conv: keras.layers.Layer
    conv_path: str
    output_norms: list[keras.layers.BatchNormalization]  # from the conv to the picked layer, in graph order
    depthwise: keras.layers.Layer | None = None
    depthwise_path: str | None = None
    inner_norms: list[keras.layers.BatchNormalization] = field(default_factory=list)  # between dw and pw
    first_path: str = ""  # the layer reading the input map: the depthwise conv if composed, else ``conv``


def _layer(model: keras.Model, path: str) -> keras.layers.Layer:
    layer = get_layer(model, path)
    if layer is None:
        raise LayerError(f"Model '{model.name}' has no layer named '{path}'.")
    return layer


def _producer(model: keras.Model, path: str) -> str | None:
    """The path of the layer whose output is the single input of ``path``; None for the model input
    (nested-model boundaries do not exist in the flat graph)."""
    _layer(model, path)
    return flat_graph(model).producer(path)


def _trace(model: keras.Model, path: str) -> _Trace:
    """Walk back from ``path`` through per-channel layers to the conv computing its filters."""
    current, norms = path, []
    layer = _layer(model, current)
    while isinstance(layer, _PER_CHANNEL):
        if isinstance(layer, keras.layers.BatchNormalization):
            norms.insert(0, layer)
        current = _producer(model, current)
        if current is None:
            raise LayerError(f"'{path}' is computed from the image without a convolution: it has no filters.")
        layer = _layer(model, current)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        raise LayerError(
            f"'{path}' comes from a depthwise convolution ({current}): each of its filters reads one "
            "channel only, so there is nothing to rank. Pick the pointwise layer after it.")
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D)):
        raise LayerError(f"'{path}' does not trace back to a convolution ({current} is a "
                         f"{type(layer).__name__} layer). Pick a conv layer or the BatchNorm/activation after one.")
    if layer.data_format != "channels_last" or getattr(layer, "groups", 1) != 1:
        raise LayerError(f"'{current}' is a grouped or channels-first convolution, which circuits do not support.")
    trace = _Trace(layer, current, norms, first_path=current)
    if isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel.shape[:2]) == (1, 1) \
            and tuple(layer.strides) == (1, 1):
        _compose_with_depthwise(model, trace)
    return trace


def _compose_with_depthwise(model: keras.Model, trace: _Trace) -> None:
    """If a 1×1 conv reads a depthwise conv (through BatchNorm/activation only), record the pair."""
    current = _producer(model, trace.conv_path)
    inner = []
    while current is not None:
        layer = _layer(model, current)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            if layer.data_format == "channels_last":
                trace.depthwise, trace.depthwise_path, trace.inner_norms = layer, current, inner
                trace.first_path = current
            return
        if not isinstance(layer, _PER_CHANNEL) or isinstance(layer, keras.layers.ZeroPadding2D):
            return
        if isinstance(layer, keras.layers.BatchNormalization):
            inner.insert(0, layer)
        current = _producer(model, current)


def _source(model: keras.Model, conv_input: str | None) -> str | None:
    """The layer whose channels the conv reads, skipping padding, dropout and rescaling."""
    current = conv_input
    while current is not None and isinstance(_layer(model, current), _TRANSPARENT):
        current = _producer(model, current)
    return current


def _affine(norms: Sequence[keras.layers.Layer], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization layers at inference, composed in order, as ``scale * x + shift``."""
    scale, shift = np.ones(channels, np.float64), np.zeros(channels, np.float64)
    for norm in norms:
        if norm.axis not in (-1, 3):
            raise LayerError(f"BatchNormalization '{norm.name}' normalizes axis {norm.axis}, not the channels.")
        gamma = 1.0 if norm.gamma is None else np.asarray(norm.gamma, np.float64)
        beta = 0.0 if norm.beta is None else np.asarray(norm.beta, np.float64)
        this_scale = gamma / np.sqrt(np.asarray(norm.moving_variance, np.float64) + norm.epsilon)
        this_shift = beta - this_scale * np.asarray(norm.moving_mean, np.float64)
        scale, shift = this_scale * scale, this_scale * shift + this_shift
    return scale, shift


def _weights(layer: keras.layers.Layer, name: str, size: int) -> np.ndarray:
    value = getattr(layer, name, None)
    return np.zeros(size, np.float64) if value is None else np.asarray(value, np.float64)


def compose_depthwise_pointwise(depthwise_kernel: np.ndarray, depthwise_bias: np.ndarray, inner_scale: np.ndarray,
                                inner_shift: np.ndarray, pointwise_kernel: np.ndarray,
                                pointwise_bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One kernel and bias for depthwise (kh, kw, C, m) → per-channel affine → pointwise (1, 1, C·m, F).

    ``effective[:, :, c, f] = Σ_k dw[:, :, c, k] · scale[c·m + k] · pw[c·m + k, f]`` (m = 1 for
    MobileNet: ``dw[:, :, c] · bn_dw_scale[c] · pw[0, 0, c, f]``). Depthwise output channel
    ``c·m + k`` is input channel ``c``'s k-th copy, as in ``tf.nn.depthwise_conv2d``.
    """
    channels, multiplier = depthwise_kernel.shape[2:]
    pointwise = pointwise_kernel.reshape(channels * multiplier, -1)
    weighted = (pointwise * inner_scale[:, None]).astype(np.float32).reshape(channels, multiplier, -1)
    kernel = np.einsum("hwcm,cmf->hwcf", depthwise_kernel.astype(np.float32), weighted)
    bias = (inner_scale * depthwise_bias + inner_shift) @ pointwise + pointwise_bias
    return kernel, bias


def linear_conv(model: keras.Model, layer: str) -> LinearConv:
    """The convolution computing ``layer``'s filters from the previous layer's channels.

    ``layer`` may be a conv or a BatchNorm/activation/dropout/padding layer after one; BatchNorm's
    per-channel scale ``gamma / sqrt(var + eps)`` is folded into the kernel (and its shift into the
    bias), so signs stay right when a scale is negative. A 1×1 conv reading a depthwise conv
    (MobileNet's conv_dw_i → BN → ReLU → conv_pw_i), or a SeparableConv2D, is composed into one
    kernel from the channels before the depthwise conv (see :func:`compose_depthwise_pointwise`).
    The composition ignores the ReLU between the two: it is the linear approximation Circuits-style
    analyses use (the same as reading a network's weights at all), exact wherever the depthwise
    outputs are positive, and the only way to give the pair a single kernel to show and rank.
    """
    trace = _trace(model, layer)
    conv = trace.conv
    if isinstance(conv, keras.layers.SeparableConv2D):
        depthwise_kernel = np.asarray(conv.depthwise_kernel)
        size = depthwise_kernel.shape[2] * depthwise_kernel.shape[3]
        kernel, bias = compose_depthwise_pointwise(depthwise_kernel, np.zeros(size), np.ones(size), np.zeros(size),
                                                   np.asarray(conv.pointwise_kernel, np.float64),
                                                   _weights(conv, "bias", conv.filters))
        spatial = conv
    elif trace.depthwise is not None:
        depthwise = trace.depthwise
        depthwise_kernel = np.asarray(depthwise.kernel)
        size = depthwise_kernel.shape[2] * depthwise_kernel.shape[3]
        kernel, bias = compose_depthwise_pointwise(depthwise_kernel, _weights(depthwise, "bias", size),
                                                   *_affine(trace.inner_norms, size),
                                                   np.asarray(conv.kernel, np.float64),
                                                   _weights(conv, "bias", conv.filters))
        spatial = depthwise
    else:
        kernel, bias = np.asarray(conv.kernel, np.float32), _weights(conv, "bias", conv.filters)
        spatial = conv
    scale, shift = _affine(trace.output_norms, kernel.shape[-1])
    conv_input = _producer(model, trace.first_path)
    return LinearConv(layer=layer, conv=trace.conv_path, depthwise=trace.depthwise_path,
                      source=_source(model, conv_input), conv_input=conv_input,
                      kernel=kernel * scale.astype(np.float32), bias=(bias * scale + shift).astype(np.float32),
                      strides=tuple(spatial.strides), padding=spatial.padding, dilation=tuple(spatial.dilation_rate))


def circuit_layers(model: keras.Model) -> list[SpatialLayer]:
    """The spatial layers whose filters trace back to a convolution (what a circuit can be built for)."""
    found = []
    for layer in spatial_layers(model):
        try:
            _trace(model, layer.path)
        except LayerError:
            continue
        found.append(layer)
    return found


def channel_contributions(inputs: np.ndarray, conv: LinearConv, filter_index: int) -> np.ndarray:
    """Each input channel's share of the filter, averaged over the output map: shape (C,).

    ``inputs`` is the conv's input map (H, W, C). Channel c contributes ``slice_c ⋆ input_c`` at
    every output position (one depthwise correlation does all channels at once); the shares plus
    the bias add up to the filter's mean pre-activation value.
    """
    kernel = conv.kernel[:, :, :, filter_index][..., None]
    terms = keras.ops.depthwise_conv(np.asarray(inputs, np.float32)[None], kernel, strides=conv.strides,
                                     padding=conv.padding, dilation_rate=conv.dilation)
    return np.asarray(keras.ops.convert_to_numpy(terms), np.float64)[0].mean(axis=(0, 1))


def conv_inputs(loaded: LoadedModel, conv: LinearConv, image: Image.Image, fit: Fit = "stretch") -> np.ndarray:
    """The map the circuit's first convolution reads, for one image: (H, W, C)."""
    batch = model_input(image, loaded.info, fit)
    if conv.conv_input is None:
        return batch[0]
    return np.asarray(sub_model(loaded.model, [conv.conv_input])(batch, training=False), np.float32)[0]


def _channel_names(conv: LinearConv, preprocessing: str) -> list[str]:
    channels = conv.kernel.shape[2]
    if conv.source is not None:
        return [f"{conv.source} #{c}" for c in range(channels)]
    if channels == 3:
        return [_COLOUR_NAMES[rgb] for rgb in np.argsort(rgb_to_model_channels(preprocessing))]
    return ["grey" if channels == 1 else f"input #{c}" for c in range(channels)]


def circuit(loaded: LoadedModel, layer: str, filter_index: int, image: Image.Image | None = None,
            fit: Fit = "stretch") -> Circuit:
    """Every input channel of one filter, ranked by kernel-slice norm, or by contribution on ``image``.

    Contributions can be negative (an inhibitory channel that is active on the image); they are
    ranked by size, and the sign is kept.
    """
    conv = linear_conv(loaded.model, layer)
    filters = conv.kernel.shape[-1]
    if not 0 <= filter_index < filters:
        raise LayerError(f"Filter {filter_index} is out of range: {layer} has {filters} filters (0–{filters - 1}).")
    slices = conv.kernel[:, :, :, filter_index]
    filter_norms = np.sqrt((conv.kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
    norms = np.sqrt((slices.astype(np.float64) ** 2).sum(axis=(0, 1)))
    totals = slices.sum(axis=(0, 1), dtype=np.float64)
    shares = None if image is None else channel_contributions(conv_inputs(loaded, conv, image, fit), conv, filter_index)
    order = np.argsort(-(norms if shares is None else np.abs(shares)), kind="stable")
    names = _channel_names(conv, loaded.info.preprocessing)
    inputs = tuple(Connection(int(c), names[c], slices[:, :, c], float(norms[c]), float(totals[c]),
                                None if shares is None else float(shares[c])) for c in order)
    return Circuit(layer, filter_index, conv.conv, conv.depthwise, conv.source, inputs,
                   "weight" if image is None else "contribution", float(conv.bias[filter_index]),
                   zero_weights=bool(filter_norms[filter_index] <= _NEGLIGIBLE * filter_norms.max()))


@dataclass(frozen=True)
class FilterWeights:
    """One filter's effective weights (BatchNorm folded, depthwise composed) beside its layer's."""

    norm: float  # L2 norm of the whole kernel
    bias: float
    mean: float
    minimum: float
    maximum: float
    rank: int  # 1: the largest norm of the layer
    filters: int  # in the layer


def weight_norms(model: keras.Model, layer: str) -> np.ndarray:
    """The L2 norm of every filter's effective kernel, (filters,): how strongly each listens at all."""
    return np.sqrt((linear_conv(model, layer).kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)))


def filter_weights(model: keras.Model, layer: str, filter_index: int) -> FilterWeights:
    conv = linear_conv(model, layer)
    if not 0 <= filter_index < conv.kernel.shape[-1]:
        raise LayerError(f"Filter {filter_index} is out of range: {layer} has {conv.kernel.shape[-1]} filters.")
    kernel = conv.kernel[..., filter_index].astype(np.float64)
    norms = weight_norms(model, layer)
    return FilterWeights(float(norms[filter_index]), float(conv.bias[filter_index]), float(kernel.mean()),
                         float(kernel.min()), float(kernel.max()), int((norms > norms[filter_index]).sum()) + 1,
                         len(norms))


@dataclass(frozen=True)
class Readers:
    """The filters of the next convolution that read one filter, strongest first (circuit *out*)."""

    layer: str
    filter_index: int
    reader_layer: str  # the later layer whose filters read it
    readers: tuple[Connection, ...]

    def top(self, count: int) -> tuple[Connection, ...]:
        return self.readers[:count]


def _reads_from(model: keras.Model, path: str) -> str | None:
    """The conv computing the channels ``path``'s filters read (no weights read); None for the image."""
    current = _source(model, _producer(model, _trace(model, path).first_path))
    while current is not None and isinstance(_layer(model, current), _KEEPS_CHANNELS):
        current = _producer(model, current)  # pooling keeps each channel: the same filter, smaller
    try:
        return None if current is None else _trace(model, current).conv_path
    except LayerError:  # it reads a sum or a concatenation: no single conv
        return None


def readers(model: keras.Model, layer: str, filter_index: int) -> Readers | None:
    """Circuit *out*: the filters of the first later layer that reads ``layer``'s filters, ranked by the
    norm of the kernel slice through which each reads ``filter_index`` (the measure :func:`circuit`
    ranks inputs by). The reading layer is given after its BatchNorm and activation, as users pick
    it. None when nothing convolves this layer's output (the last conv before the classifier)."""
    own = _trace(model, layer).conv_path
    groups: dict[str, list[str]] = {}  # conv -> the layers computed from it, in graph order
    for candidate in circuit_layers(model):
        groups.setdefault(_trace(model, candidate.path).conv_path, []).append(candidate.path)
    reader = next((paths[-1] for conv, paths in groups.items() if conv != own and _reads_from(model, paths[0]) == own),
                  None)
    if reader is None:
        return None
    conv = linear_conv(model, reader)
    if not 0 <= filter_index < conv.kernel.shape[2]:
        raise LayerError(f"Filter {filter_index} is out of range: {layer} has {conv.kernel.shape[2]} filters.")
    slices = conv.kernel[:, :, filter_index, :]
    norms = np.sqrt((slices.astype(np.float64) ** 2).sum(axis=(0, 1)))
    totals = slices.sum(axis=(0, 1), dtype=np.float64)
    order = np.argsort(-norms, kind="stable")
    return Readers(layer, filter_index, reader, tuple(
        Connection(int(f), f"{reader} #{f}", slices[:, :, f], float(norms[f]), float(totals[f])) for f in order))


def rgb_to_model_channels(preprocessing: str) -> np.ndarray:
    """Which model input channel each of red, green, blue lands in, read off the preprocessing
    itself (so BGR models, "caffe", are shown in colour as they see it)."""
    return np.argmax(preprocess(np.eye(3, dtype=np.float32) * 255.0, preprocessing), axis=-1)


def wiring(loaded: LoadedModel, layer: str, filter_index: int) -> tuple[Circuit, Readers | None, FilterWeights]:
    """A filter's circuit in, the filters of the next convolution that read it, and its own weights, as the
    Unit page and the API's ``unit`` show them; a :class:`ConvVisError` for a layer without weights of its
    own (a pooling, an input)."""
    return (circuit(loaded, layer, filter_index), readers(loaded.model, layer, filter_index),
            filter_weights(loaded.model, layer, filter_index))
