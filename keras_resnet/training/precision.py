"""Apply a mixed-precision policy for a block of code (:class:`precision_scope`).

Which policy ``"auto"`` means is decided in :mod:`keras_resnet.training.auto_choice`.
"""

from __future__ import annotations

import logging

import keras

from keras_resnet.training.config import PRECISIONS
from keras_resnet.utils.checks import check_choice

logger = logging.getLogger("keras_resnet.training")


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
