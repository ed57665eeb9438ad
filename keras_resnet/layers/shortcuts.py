"""Shortcut layers Keras lacks, each registered serializable (safe to load).

Keras has no parameter-free "option A" shortcut (subsample + zero channels) and no
highway combination ``T * F + (1 - T) * x``; writing them with ``Lambda`` would break
``safe_mode`` loading, so they are small ``Layer`` subclasses here.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet.utils.checks import check_int


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """Parameter-free shortcut (He et al. 2015, option A).

    Subsamples spatially by ``strides`` (taking every ``strides``-th pixel) and pads
    the channel axis with zeros up to ``filters``, split evenly before and after.

    Args:
        filters: Output channels; must be >= the input channels.
        strides: Spatial subsampling factor (1 keeps the size).

    Example:
        >>> import numpy as np
        >>> y = ZeroPadShortcut(filters=8, strides=2)(np.ones((1, 4, 4, 4), "float32"))
        >>> tuple(y.shape)
        (1, 2, 2, 8)
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, min_value=1)
        self.strides = check_int("strides", strides, min_value=1)

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] > self.filters:
            raise ValueError(
                f"ZeroPadShortcut cannot reduce channels: input has {input_shape[-1]}, "
                f"filters={self.filters}"
            )

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :] if self.strides > 1 else inputs
        extra = self.filters - x.shape[-1]
        if extra:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        height, width = (None if d is None else -(-d // self.strides) for d in input_shape[1:3])
        return (input_shape[0], height, width, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="keras_resnet")
class HighwayGate(keras.layers.Layer):
    """Combine a transform and a carry path through a gate: ``T * F + (1 - T) * x``.

    Srivastava et al. 2015 ("Highway Networks"); the identity shortcut is the special
    case ``T = 1``. Inputs are ``[gate, transform, carry]`` of equal shape, the gate
    already squashed to (0, 1) (a sigmoid 1x1 convolution in the residual blocks).

    Example:
        >>> import numpy as np
        >>> t = np.full((1, 2, 2, 3), 0.25, "float32")
        >>> y = HighwayGate()([t, np.ones_like(t), np.zeros_like(t)])
        >>> float(y[0, 0, 0, 0])
        0.25
    """

    def call(self, inputs):
        gate, transform, carry = inputs
        return gate * transform + (1.0 - gate) * carry

    def compute_output_shape(self, input_shape: list) -> tuple:
        return input_shape[0]
