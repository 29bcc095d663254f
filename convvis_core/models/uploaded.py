"""Loading users' own ``.keras`` / ``.h5`` files without ever running code that came with them.

Before Keras sees the file, its architecture JSON is read as plain data and refused if it holds a
``Lambda`` layer (pickled Python bytecode) or any class from outside Keras (custom code). Keras
then loads it with ``safe_mode=True`` as a second line of defence.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import h5py
import keras

from convvis_core.config import MAX_MODEL_BYTES
from convvis_core.errors import ModelError, UnsafeModelError
from convvis_core.graph import unreadable
from convvis_core.models.base import LoadedModel, ModelInfo, cached_view
from convvis_core.models.heads import KINDS, describe_inputs, describe_outputs
from convvis_core.preprocessing import infer_preprocessing

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
DEFAULT_INPUT_SIZE = 224


def _model_config(path: Path, file_name: str) -> dict:
    """The architecture JSON of a .keras (zip) or .h5 file, read as data only."""
    head = path.read_bytes()[:8]
    try:
        if head.startswith(_ZIP_MAGIC):
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    raise ModelError(f"'{file_name}' is a zip file but not a Keras model (no config.json). "
                                     "Save the model with model.save('model.keras') and upload that file.")
                return json.loads(archive.read("config.json"))
        if head.startswith(_HDF5_MAGIC):
            with h5py.File(path, "r") as file:
                raw = file.attrs.get("model_config")
                if raw is None:
                    raise ModelError(
                        f"'{file_name}' holds weights only, no architecture. Save the whole model "
                        "with model.save('model.keras') and upload that file."
                    )
                return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"'{file_name}' is corrupt or truncated ({error}). Save the model again and re-upload it.") from error
    raise ModelError(
        f"'{file_name}' is not a Keras model file. Upload a model saved with model.save(...) as "
        ".keras (Keras 3) or .h5 (Keras 2)."
    )


def _layer_configs(node: Any) -> Iterator[dict]:
    """Every dict in the config that describes a Keras object (has a ``class_name``)."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from _layer_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _layer_configs(value)


def check_safe(config: dict, file_name: str) -> None:
    """Refuse configs that would make Keras deserialize code: Lambda layers and custom classes."""
    for item in _layer_configs(config):
        class_name = str(item.get("class_name"))
        name = item.get("config", {}).get("name", "?") if isinstance(item.get("config"), dict) else "?"
        if class_name in _CODE_LAYERS:
            raise UnsafeModelError(
                f"'{file_name}' contains a {class_name} layer ('{name}'), which carries Python code. "
                "ConvVis never executes code from an uploaded file. Replace the Lambda with a "
                "built-in Keras layer, save again, and re-upload."
            )
        module = item.get("module")
        registered = str(item.get("registered_name") or "")
        if (isinstance(module, str) and module and not module.startswith("keras")) or ">" in registered:
            raise UnsafeModelError(
                f"'{file_name}' uses the custom class {registered or class_name}"
                + (f" (module {module})" if module else "") + ", whose code is not part of Keras. "
                "ConvVis never executes code from an uploaded file: rebuild the model from built-in "
                "Keras layers to visualize it."
            )


def load_uploaded_model(data: bytes, file_name: str) -> LoadedModel:
    """Validate and load an uploaded model file; every failure is a :class:`ModelError`."""
    if not data:
        raise ModelError(f"'{file_name}' is empty (0 bytes). Upload a model saved with model.save(...) as "
                         ".keras (Keras 3) or .h5 (Keras 2).")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(
            f"'{file_name}' is {len(data) / 2**20:.0f} MB; the limit is {MAX_MODEL_BYTES / 2**20:.0f} MB."
        )
    digest = hashlib.sha256(data).hexdigest()[:16]
    suffix = ".keras" if data.startswith(_ZIP_MAGIC) else ".h5"
    # Keras reads a path: the bytes go to a private temporary folder, deleted once loaded, so uploads
    # never pile up on the server's disk and two sessions uploading at once never share a file.
    with tempfile.TemporaryDirectory(prefix="convvis-upload-") as folder:
        path = Path(folder) / f"{digest}{suffix}"
        path.write_bytes(data)
        return load_model_file(path, file_name, key=f"upload:{file_name}#{digest}")


def load_model_file(path: str | Path, file_name: str | None = None, key: str | None = None) -> LoadedModel:
    """Load a model file from disk after the safety checks (the CLI's path argument too)."""
    path = Path(path)
    file_name = file_name or path.name
    if not path.is_file():
        raise ModelError(f"No such model file: {path}")
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"'{file_name}' is not a model file: ConvVis loads .keras and .h5 files.")
    check_safe(_model_config(path, file_name), file_name)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for unreadable files
        raise ModelError(
            f"Keras could not load '{file_name}': {error}. It may come from an incompatible Keras "
            "version or use layers Keras no longer has; re-save it with Keras 3 as .keras."
        ) from error
    return describe_uploaded(model, file_name, key or f"file:{path}")


def describe_uploaded(model: keras.Model, file_name: str, key: str, origin: str = "Uploaded model") -> LoadedModel:
    """Read what the pages need off the model itself; refuse shapes no page can use. A model with
    several inputs or outputs is viewed through its image input and first output (see ``heads``)."""
    if getattr(model, "inputs", None) is None:  # subclassed, or Sequential without an input shape
        raise unreadable(model, file_name)
    inputs = describe_inputs(model, file_name)
    image = next(info for info in inputs if info.is_image)
    if len(image.shape) != 3 or image.shape[-1] not in (1, 3):
        raise ModelError(
            f"'{file_name}' takes input of shape {image.shape}; ConvVis needs images of shape "
            "(height, width, 1) or (height, width, 3)."
        )
    height, width = (dim or DEFAULT_INPUT_SIZE for dim in image.shape[:2])
    outputs = describe_outputs(model)
    heads = ", ".join(f"{output.name} ({output.kind})" for output in outputs)
    # read off the view (image input to first output): a flat graph has one input
    preprocessing, why = infer_preprocessing(cached_view(model, inputs if len(inputs) > 1 else (), 0))
    classes = outputs[0].units if outputs[0].kind == "classes" else None
    held = [info.name for info in inputs if not info.is_image]
    info = ModelInfo(
        key=key,
        display_name=file_name,
        description=f"{origin}, {model.count_params():,} parameters"
        + (f", outputs: {heads}" if len(outputs) > 1 else f", {classes} classes" if classes
           else f", {KINDS.get(outputs[0].kind, 'no classifier output')}")
        + (f"; inputs held fixed: {', '.join(held)}" if held else ""),
        input_size=(int(height), int(width)),
        channels=int(image.shape[-1]),
        preprocessing=preprocessing,
        class_names=outputs[0].class_names if classes else None,
        offline=True,
        preprocessing_why=why,
        outputs=outputs,
        inputs=inputs if len(inputs) > 1 else (),
    )
    return LoadedModel(model, info).viewed(outputs, 0, info.inputs) if len(inputs) > 1 or len(outputs) > 1 \
        else LoadedModel(model, info)
