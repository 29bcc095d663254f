"""Compute precision for the heavy optimization loops.

CPUs with native bfloat16 instructions (AVX512-BF16, AMX) run convolutions in bfloat16 about 1.5×
faster than in float32, with float32 weights and accumulation (Keras' ``mixed_bfloat16``). Gradient
ascent does not need more precision than that; reported values are still computed in float32.
Elsewhere (older CPUs, where bfloat16 is emulated and slow) everything stays float32.
``CONVVIS_PRECISION=float32|bfloat16|auto`` overrides the choice.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import keras

PRECISION_ENV = "CONVVIS_PRECISION"
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides TensorFlow's speed here


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (/proc/cpuinfo); empty where that file is missing. Benches print the
    :data:`SPEED_FLAGS` among them, since their numbers depend on them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))


def _cpu_has_native_bfloat16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def fast_dtype() -> str:
    """"bfloat16" where the CPU computes it natively (or when asked), else "float32"."""
    choice = os.environ.get(PRECISION_ENV, "auto")
    if choice in ("float32", "bfloat16"):
        return choice
    return "bfloat16" if _cpu_has_native_bfloat16() else "float32"


def with_compute_dtype(model: keras.Model, dtype: str) -> keras.Model:
    """A copy of a functional model computing in ``dtype`` (same weights); the model itself for float32."""
    if dtype == "float32":
        return model
    policy = keras.DTypePolicy(f"mixed_{dtype}")

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy
        return type(layer).from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    clone.set_weights(model.get_weights())
    clone.input_spec = None  # any image size, as the model it copies
    return clone
