"""Spatial pyramid pooling, a registered layer (Keras' adaptive pooling fails on
run-time spatial sizes)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet.utils.checks import check_ints


@keras.saving.register_keras_serializable(package="keras_resnet")
class SpatialPyramidPooling(keras.layers.Layer):
    """Spatial pyramid max pooling (He et al. 2014) to a fixed-length vector.

    Each level ``n`` max-pools the feature map over an ``n x n`` grid of bins (bin
    ``i`` spans ``[floor(i*H/n), ceil((i+1)*H/n))`` as in adaptive pooling) and the
    flattened levels are concatenated, so the output length ``C * sum(n*n)`` does not
    depend on the input size. Written here because ``keras.layers.AdaptiveMaxPooling2D``
    (Keras 3.15) fails when the spatial size is only known at run time, which is exactly
    the case SPP exists for; the masked max below works with dynamic shapes on every
    backend.

    Args:
        levels: Grid sizes, e.g. ``(1, 2, 4)``.

    Example:
        >>> import numpy as np
        >>> spp = SpatialPyramidPooling((1, 2))
        >>> tuple(spp(np.ones((2, 5, 7, 3), "float32")).shape)
        (2, 15)
    """

    def __init__(self, levels: tuple[int, ...] = (1, 2, 4), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.levels = check_ints("levels", levels, min_value=1)

    @staticmethod
    def _bins(size, n: int):
        # (n, size) boolean mask: position p belongs to bin i.
        pos = ops.arange(size)[None, :]
        i = ops.arange(n)[:, None]
        start = (i * size) // n
        end = ((i + 1) * size + n - 1) // n
        return ops.logical_and(pos >= start, pos < end)

    def call(self, inputs):
        shape = ops.shape(inputs)
        height, width, channels = shape[1], shape[2], inputs.shape[-1]
        lowest = ops.cast(float("-inf"), inputs.dtype)
        pooled = []
        for n in self.levels:
            mask_h = self._bins(height, n)[None, :, :, None, None]
            rows = ops.max(ops.where(mask_h, inputs[:, None], lowest), axis=2)  # (b, n, W, C)
            mask_w = self._bins(width, n)[None, None, :, :, None]
            grid = ops.max(ops.where(mask_w, rows[:, :, None], lowest), axis=3)  # (b, n, n, C)
            pooled.append(ops.reshape(grid, (-1, n * n * channels)))
        return ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[-1] * sum(n * n for n in self.levels))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "levels": list(self.levels)}
