"""A drop-in for ``keras.layers.Conv2D(groups=...)`` that is fast on every backend.

TensorFlow's grouped ``Conv2D`` on CPU computes both gradients about 100x slower than
its arithmetic (1.25 s forward and backward for one 3x3, 128-channel, 32-group layer at
16x16, batch 8, against 4.7 ms as dense convolutions of 8 merged groups each; see
``docs/performance.md``). :class:`GroupedConv2D` keeps the kernel, its shape, the layer
name and the numbers of ``Conv2D(groups=...)`` and only changes how TensorFlow on CPU
computes it; JAX, PyTorch and TensorFlow on GPU keep the native grouped convolution.
"""

from __future__ import annotations

import functools

import keras
from keras import ops

# TensorFlow on CPU computes a grouped convolution as one dense convolution per
# `merge` adjacent groups (kernels on a block diagonal), merging groups while their
# input channels stay <= MERGED_MAX_CHANNELS. Measured per layer
# (benchmarks/grouped_conv.py --layers, docs/performance.md): merging 8 groups of 4
# channels and 4 of 8 won; at 16 channels per group merging 2 or 4 tied with 1; from 32
# one convolution per group won (a depthwise convolution plus a sum never won).
MERGED_MAX_CHANNELS = 32


@functools.cache
def tensorflow_on_cpu() -> bool:
    """Whether the TensorFlow backend runs without any GPU/TPU (queried once).

    Grouped convolution and batch normalization pick their TensorFlow-CPU kernels by it.

    Example:
        >>> tensorflow_on_cpu() in (True, False)
        True
    """
    if keras.backend.backend() != "tensorflow":
        return False
    return all(d.split(":")[0].lower() == "cpu" for d in keras.distribution.list_devices())


def grouped_conv_formulation(layer: keras.layers.Conv2D, input_shape: tuple | None = None) -> str:
    """How ``layer`` computes its grouped convolution on this backend and device.

    Returns ``"native"`` (``keras.ops.conv`` with the grouped kernel: JAX, PyTorch,
    TensorFlow on GPU, and every case the others do not cover), ``"per_group"`` (one
    dense convolution per group, concatenated: TensorFlow on CPU) or
    ``"per_{m}_groups"`` (one per ``m`` adjacent groups, their kernels on a block
    diagonal: TensorFlow on CPU with thin groups, ``m`` the largest power of two
    dividing ``groups`` with ``m`` x input channels per group <= ``MERGED_MAX_CHANNELS``).

    Args:
        layer: A built ``Conv2D`` (or :class:`GroupedConv2D`).
        input_shape: Its NHWC input shape (unused; kept for callers that pass it).

    Example:
        >>> layer = GroupedConv2D(128, 3, groups=32)
        >>> layer.build((None, 16, 16, 128))
        >>> grouped_conv_formulation(layer)  # TensorFlow on a CPU ("native" on a GPU)
        'per_8_groups'
    """
    if (
        layer.groups == 1
        or layer.data_format != "channels_last"
        or tuple(layer.dilation_rate) != (1, 1)
        or not tensorflow_on_cpu()
    ):
        return "native"
    merge, group_in = 1, layer.kernel.shape[2]
    while layer.groups % (2 * merge) == 0 and 2 * merge * group_in <= MERGED_MAX_CHANNELS:
        merge *= 2
    return "per_group" if merge == 1 else f"per_{merge}_groups"


def _candidate_formulations(groups: int) -> list[str]:
    """The formulations :func:`_compute` knows for ``groups`` groups."""
    merges = [m for m in (2, 4, 8) if groups % m == 0]
    return ["per_group", *(f"per_{m}_groups" for m in merges)]


def _compute(formulation: str, inputs, kernel, groups: int, strides, padding: str):
    """The grouped convolution of ``inputs`` computed as ``formulation`` (not "native").

    ``"per_group"`` is one dense convolution per group, concatenated; ``"per_{m}_groups"``
    one per ``m`` adjacent groups, each kernel holding its groups' kernels on a block
    diagonal (zeros elsewhere): ``m`` times the multiply-adds in ``m`` times fewer ops,
    which wins where the groups are thin (a few input channels each).
    """
    merge = 1 if formulation == "per_group" else int(formulation.split("_")[1])
    convs = groups // merge
    if merge > 1:
        # kernel[h, w, i, (c, g, o)] -> [h, w, (f, i), (c, g, o)], zero unless f == g: the
        # output axis keeps its order, so convolution c takes output columns c.
        kh, kw, group_in, filters = kernel.shape
        blocks = ops.reshape(kernel, (kh, kw, 1, group_in, convs, merge, filters // groups))
        diagonal = ops.reshape(ops.eye(merge, dtype=kernel.dtype), (1, 1, merge, 1, 1, merge, 1))
        kernel = ops.reshape(blocks * diagonal, (kh, kw, merge * group_in, filters))
    pieces = zip(ops.split(inputs, convs, axis=-1), ops.split(kernel, convs, axis=-1))
    return ops.concatenate(
        [ops.conv(x, k, strides=strides, padding=padding) for x, k in pieces], axis=-1
    )


@keras.saving.register_keras_serializable(package="keras_resnet")
class GroupedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose grouped case is computed the fastest correct way.

    Same arguments, kernel (``(kh, kw, in / groups, filters)``, named ``kernel``),
    config and results as ``keras.layers.Conv2D`` (outputs and gradients equal to
    1e-5); only the formulation differs, chosen by :func:`grouped_conv_formulation`.
    Weights move freely between the two (``set_weights``), and ``.keras`` files that
    hold a plain ``Conv2D(groups=...)`` still load as that layer.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(2, 8, 8, 8)).astype("float32")
        >>> fast = GroupedConv2D(8, 3, groups=4, padding="same")
        >>> plain = keras.layers.Conv2D(8, 3, groups=4, padding="same")
        >>> plain.build(x.shape)
        >>> fast.build(x.shape)
        >>> fast.set_weights(plain.get_weights())
        >>> bool(np.allclose(fast(x), plain(x), atol=1e-5))
        True
    """

    def convolution_op(self, inputs, kernel):
        formulation = grouped_conv_formulation(self, tuple(inputs.shape))
        if formulation == "native":
            return super().convolution_op(inputs, kernel)
        return _compute(formulation, inputs, kernel, self.groups, tuple(self.strides), self.padding)
