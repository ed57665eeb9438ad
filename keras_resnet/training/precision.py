"""Choose and apply the mixed-precision policy and XLA compilation.

Measured on this project's 2-core CPU (avx512_bf16, no AMX) with
``benchmarks/precision.py``: a resnet20 training step under ``mixed_bfloat16`` ran at
0.62x to 1.52x the float32 speed over four runs (median 0.92x: no consistent gain on
the shared machine) and at 0.30x-0.40x with ``jit_compile=True`` (keras.applications
ResNet-50 was ~3x slower with XLA too). So ``"auto"``
picks float32 and no XLA on CPUs; mixed_float16 (with loss scaling, which Keras'
``compile(auto_scale_loss=True)`` adds) on GPUs of compute capability >= 7.0;
mixed_bfloat16 on TPUs.
"""

from __future__ import annotations

import logging

import keras

from keras_resnet.checks import check_choice
from keras_resnet.training.config import PRECISIONS

logger = logging.getLogger("keras_resnet.training")


def _accelerator() -> str:
    """``"tpu"``, ``"gpu"`` (compute capability >= 7.0), ``"old_gpu"`` or ``"cpu"``."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "tpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "cpu"
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability", (0, 0))
    return "gpu" if tuple(capability) >= (7, 0) else "old_gpu"


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype-policy name for ``precision``, resolving ``"auto"``.

    Args:
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Returns:
        A dtype-policy name. ``"auto"`` gives ``"mixed_float16"`` on GPUs with tensor
        cores, ``"mixed_bfloat16"`` on TPUs and ``"float32"`` on CPUs (bf16 measured
        slower on the project's CPU; pass it explicitly where it helps).

    Example:
        >>> resolve_precision("float32")
        'float32'
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    kind = _accelerator()
    choice = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(kind, "float32")
    logger.info("precision='auto' on %s -> %s", kind, choice)
    return choice


def resolve_jit_compile(jit_compile: bool | str = "auto") -> bool:
    """Whether to compile the train step with XLA; ``"auto"`` enables it on GPU/TPU only.

    Args:
        jit_compile: ``True``, ``False`` or ``"auto"``.

    Example:
        >>> resolve_jit_compile(False)
        False
    """
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: {jit_compile!r}")
    if jit_compile != "auto":
        return bool(jit_compile)
    return _accelerator() in ("gpu", "tpu")


class precision_scope:  # noqa: N801 - used like a function: ``with precision_scope(...):``
    """Context manager setting the global Keras dtype policy, restoring it on exit.

    Layers take their policy when they are created, so the model must be built inside.

    Args:
        policy: A dtype-policy name (see :func:`resolve_precision`).

    Example:
        >>> with precision_scope("mixed_bfloat16"):
        ...     keras.layers.Dense(2).compute_dtype
        'bfloat16'
    """

    def __init__(self, policy: str) -> None:
        check_choice("policy", policy, PRECISIONS[1:])
        self.policy = policy

    def __enter__(self) -> str:
        self._previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(self.policy)
        return self.policy

    def __exit__(self, *exc: object) -> None:
        keras.mixed_precision.set_dtype_policy(self._previous)
