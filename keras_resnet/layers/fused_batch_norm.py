"""``keras.layers.BatchNormalization`` computed by TensorFlow's fused kernel on CPU.

Keras 3 computes batch normalization from moments and elementwise ops on every
backend; on TensorFlow without a GPU those ops and their gradients took about a third
of a ``resnet20`` training step (``benchmarks/profile_step.py``, docs/performance.md).
:class:`FusedBatchNormalization` keeps the weights, names, config and numbers of
``BatchNormalization`` and only changes how TensorFlow on CPU computes it (one
``FusedBatchNormV3`` op and its gradient); JAX, PyTorch and TensorFlow on GPU keep
Keras' own computation.
"""

from __future__ import annotations

import keras

from keras_resnet.layers.grouped_conv import tensorflow_on_cpu


def fused_batch_norm_applies(layer: keras.layers.BatchNormalization, inputs, mask=None) -> bool:
    """Whether ``layer`` computes ``inputs`` with TensorFlow's fused kernel here.

    True on the TensorFlow backend without a GPU/TPU, for 4-D channels-last inputs
    without a mask, renormalization or synchronization (everything else, and every
    other backend or device, uses Keras' own ``BatchNormalization.call``).

    Args:
        layer: A ``BatchNormalization`` (or :class:`FusedBatchNormalization`).
        inputs: Its input (anything with a ``shape``).
        mask: Its mask, if any.

    Example:
        >>> import numpy as np
        >>> fused_batch_norm_applies(FusedBatchNormalization(), np.ones((1, 3)))
        False
        >>> fused_batch_norm_applies(FusedBatchNormalization(renorm=True), np.ones((1, 2, 2, 3)))
        False
    """
    rank = len(inputs.shape)
    return (
        mask is None
        and rank == 4
        and layer.axis in (-1, rank - 1)
        and not layer.renorm
        and not layer.synchronized
        and tensorflow_on_cpu()
    )


@keras.saving.register_keras_serializable(package="keras_resnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that uses TensorFlow's fused kernel on CPU.

    Same arguments, weights (``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``), config and results as ``keras.layers.BatchNormalization``
    (outputs, gradients and the updated moving statistics equal to 1e-5, in training
    and inference); only the computation differs where
    :func:`fused_batch_norm_applies`. The moving variance is updated with the batch's
    biased variance, as Keras does (TensorFlow's fused op returns the unbiased one).
    One difference: on TensorFlow CPU, grappler fuses the op with a following ReLU into
    oneDNN's kernel, which maps NaN inputs to 0 where Keras' ops propagate NaN.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype("float32")
        >>> fast, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
        >>> a, b = fast(x, training=True), plain(x, training=True)
        >>> bool(np.allclose(a, b, atol=1e-5))
        True
        >>> bool(np.allclose(fast.moving_variance, plain.moving_variance, atol=1e-6))
        True
    """

    def call(self, inputs, training=None, mask=None):
        if not fused_batch_norm_applies(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only reached on the TensorFlow backend

        x = tf.cast(inputs, "float32")  # as Keras does: statistics in float32
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        if training and self.trainable:
            y, mean, variance = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=[], variance=[], epsilon=self.epsilon
            )[:3]
            count = tf.cast(tf.size(x) // channels, "float32")
            # The fused op returns variance * n / (n - 1) (n > 1); Keras keeps the biased one.
            variance = tf.where(count > 1.0, variance * ((count - 1.0) / count), variance)
            momentum = self.momentum
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(tf.cast(moving, "float32") * momentum + batch * (1.0 - momentum))
        else:
            y = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=gamma,
                offset=beta,
                mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                is_training=False,
            )[0]
        return tf.cast(y, self.compute_dtype)
