"""Choose and apply the mixed-precision policy and XLA compilation.

``"auto"`` is measured, not looked up: on an accelerator the first use times a few
training steps of each candidate and caches the fastest per device
(:mod:`keras_resnet.training.auto_choice`; ``benchmarks/gpu.py --write-cache`` fills
the same cache). On CPUs it is float32, as measured on this project's 2-core CPU with
``benchmarks/precision.py``: ``mixed_bfloat16`` ran at 0.62x-1.52x the float32 speed
(median 0.92x); XLA is off on TensorFlow (``jit_compile=True`` ran at 0.30x-0.40x) and
PyTorch, and on for JAX, where it is ``jax.jit`` itself
(``benchmarks/backend_train.py``).
"""

from __future__ import annotations

import logging

import keras

from keras_resnet.checks import check_choice
from keras_resnet.training.auto_choice import auto_choice
from keras_resnet.training.config import PRECISIONS

logger = logging.getLogger("keras_resnet.training")


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype-policy name for ``precision``, resolving ``"auto"``.

    Args:
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Returns:
        A dtype-policy name. ``"auto"`` gives the policy measured fastest on this
        accelerator (:func:`~keras_resnet.training.auto_choice.auto_choice`) and
        ``"float32"`` on CPUs (bf16 measured no faster on the project's CPU).

    Example:
        >>> resolve_precision("float32")
        'float32'
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    return auto_choice()["precision"]


def resolve_jit_compile(jit_compile: bool | str = "auto") -> bool:
    """Whether to compile the train step with XLA; ``"auto"``: as measured fastest here.

    ``"auto"`` on a CPU depends on the Keras backend: False on TensorFlow (XLA trained
    slower) and PyTorch (eager), True on JAX (without ``jax.jit`` every op runs
    eagerly); on accelerators it is the measured choice (see :func:`resolve_precision`).

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
    return bool(auto_choice()["jit_compile"])


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
