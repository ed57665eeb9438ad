"""FusedBatchNormalization is a drop-in for keras.layers.BatchNormalization: same
outputs, gradients and moving statistics on every backend, in training and inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from backend_compare import outputs_and_grads, require_backend, run_on_backend

from keras_resnet.layers import FusedBatchNormalization
from keras_resnet.layers.fused_batch_norm import fused_batch_norm_applies

# (kwargs, input shape, whether TensorFlow on CPU takes the fused path)
CASES = [
    (dict(), (4, 5, 5, 6), True),
    (dict(epsilon=1e-5, momentum=0.9), (8, 1, 1, 4), True),  # 1x1 maps, as in stage 4
    (dict(center=False, scale=False, epsilon=1e-3, momentum=0.5), (2, 3, 3, 4), True),
    (dict(), (1, 1, 1, 3), True),  # one value per channel: variance 0
    (dict(), (3, 6), False),  # not 4-D: Keras' own computation
    (dict(axis=1), (2, 4, 3, 3), False),  # channels first
]


def compare_with_batch_norm() -> list[tuple[bool, float, int]]:
    """Per case and mode: fused or not, max difference (relative to each tensor's
    largest value, at least 1), number of tensors compared."""
    report = []
    for kwargs, shape, _ in CASES:
        for training in (True, False):
            rng = np.random.default_rng(0)
            x = rng.normal(loc=1.0, scale=2.0, size=shape).astype("float32")
            plain = keras.layers.BatchNormalization(**kwargs)
            fast = FusedBatchNormalization(**kwargs)
            plain.build(shape)
            fast.build(shape)
            weights = [rng.normal(size=v.shape).astype("float32") for v in plain.weights]
            weights[-1] = rng.uniform(0.5, 2.0, size=weights[-1].shape).astype("float32")
            plain.set_weights(weights)
            fast.set_weights(weights)
            w = rng.normal(size=shape).astype("float32")
            a = outputs_and_grads(plain, x, w, training=training)
            b = outputs_and_grads(fast, x, w, training=training)
            err = max(
                float(np.max(np.abs(p - q)) / max(1.0, np.max(np.abs(p)))) for p, q in zip(a, b)
            )
            report.append((fused_batch_norm_applies(fast, x), err, len(a)))
    return report


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_outputs_gradients_and_moving_statistics_equal_batch_norm(backend):
    require_backend(backend)
    if backend == keras.backend.backend():
        report = compare_with_batch_norm()
    else:
        report = run_on_backend(backend, "test_fused_batch_norm", "compare_with_batch_norm")
    cases = [(case, training) for case in CASES for training in (True, False)]
    for ((kwargs, shape, fused), training), (applies, err, n) in zip(cases, report, strict=True):
        # output, input gradient, gamma/beta gradients, moving mean and variance
        assert n == 2 + 2 * kwargs.get("scale", True) * kwargs.get("center", True) + 2
        assert err < 1e-5, (backend, kwargs, shape, training, err)
        # this machine has no GPU: on TensorFlow the fused path must run where it applies
        assert applies == (fused and backend == "tensorflow"), (backend, kwargs, shape)


def test_mixed_precision_output_dtype_and_values():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    x = np.random.default_rng(0).normal(size=(4, 3, 3, 8)).astype("float32")
    fast, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
    for training in (True, False):
        a, b = fast(x, training=training), plain(x, training=training)
        assert keras.backend.standardize_dtype(a.dtype) == "bfloat16"
        np.testing.assert_allclose(np.asarray(a, "float32"), np.asarray(b, "float32"), atol=2e-2)
    assert fast.moving_mean.dtype == "float32"
    np.testing.assert_allclose(fast.moving_variance.numpy(), plain.moving_variance.numpy(), 1e-5)


def test_config_equals_batch_normalization():
    kwargs = dict(momentum=0.9, epsilon=1e-5, gamma_initializer="zeros", name="bn")
    fast = FusedBatchNormalization(**kwargs)
    assert fast.get_config() == keras.layers.BatchNormalization(**kwargs).get_config()
    again = FusedBatchNormalization.from_config(fast.get_config())
    assert isinstance(again, FusedBatchNormalization) and again.epsilon == 1e-5
