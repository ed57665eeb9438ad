"""GroupedConv2D is a drop-in for keras.layers.Conv2D(groups=...): same weights, names,
outputs and gradients on every backend; old .keras files still load."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from backend_compare import outputs_and_grads, require_backend, run_on_backend

from keras_resnet import create_model
from keras_resnet.layers import FusedBatchNormalization, grouped_conv
from keras_resnet.layers.grouped_conv import GroupedConv2D, grouped_conv_formulation

# (kwargs, input shape, formulation TensorFlow-on-CPU must pick)
CASES = [
    (dict(filters=8, kernel_size=3, groups=4, padding="same"), (2, 8, 8, 8), "per_4_groups"),
    (dict(filters=12, kernel_size=3, groups=4, strides=2), (2, 9, 9, 8), "per_4_groups"),
    (dict(filters=8, kernel_size=3, groups=2, padding="same"), (2, 8, 8, 40), "per_group"),
    (dict(filters=8, kernel_size=3, groups=4, padding="same"), (2, 4, 4, 64), "per_2_groups"),
    (dict(filters=16, kernel_size=3, groups=8, padding="same"), (2, 3, 3, 16), "per_8_groups"),
    (dict(filters=8, kernel_size=1, groups=4, use_bias=False), (2, 5, 5, 8), "per_4_groups"),
    (dict(filters=8, kernel_size=3, groups=4, dilation_rate=2), (2, 9, 9, 8), "native"),
]


def compare_with_conv2d() -> list[tuple[str, float, int]]:
    """Per case: the formulation used, the max relative difference, how many tensors."""
    report = []
    for kwargs, shape, _ in CASES:
        rng = np.random.default_rng(0)
        x = rng.normal(size=shape).astype("float32")
        plain, fast = keras.layers.Conv2D(**kwargs), GroupedConv2D(**kwargs)
        plain.build(shape)
        fast.build(shape)
        fast.set_weights([rng.normal(size=v.shape).astype("float32") for v in plain.weights])
        plain.set_weights(fast.get_weights())
        w = rng.normal(size=plain.compute_output_shape(shape)).astype("float32")
        a, b = outputs_and_grads(plain, x, w), outputs_and_grads(fast, x, w)
        err = max(float(np.max(np.abs(p - q) / np.maximum(1.0, np.abs(p)))) for p, q in zip(a, b))
        report.append((grouped_conv_formulation(fast, shape), err, len(a)))
    return report


def _compare(backend: str) -> list:
    if backend == keras.backend.backend():
        return compare_with_conv2d()
    return run_on_backend(backend, "test_grouped_conv", "compare_with_conv2d")


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_outputs_and_gradients_equal_conv2d_groups(backend):
    require_backend(backend)
    report = _compare(backend)
    for (kwargs, _, expected), (formulation, err, n) in zip(CASES, report, strict=True):
        # output, input gradient, kernel gradient (+ bias gradient)
        assert n == 3 + kwargs.get("use_bias", True), kwargs
        assert err < 1e-5, (backend, kwargs, formulation, err)
        if backend == "tensorflow":  # this machine has no GPU: the fast paths must run
            assert formulation == expected, (kwargs, formulation)
        else:
            assert formulation == "native", (backend, kwargs, formulation)


def _gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def test_same_weights_names_and_config_as_conv2d():
    with_plain = _build_plain("_tiny", groups=2, input_shape=(16, 16, 3))
    with_fast = create_model("_tiny", groups=2, input_shape=(16, 16, 3))
    grouped = [layer for layer in with_fast.layers if isinstance(layer, GroupedConv2D)]
    assert grouped and all(layer.groups == 2 for layer in grouped)
    assert [(w.path, w.shape) for w in with_plain.weights] == [
        (w.path, w.shape) for w in with_fast.weights
    ]
    plain_config = keras.layers.Conv2D(8, 3, groups=2, name="c").get_config()
    assert GroupedConv2D(8, 3, groups=2, name="c").get_config() == plain_config


def _build_plain(name: str, **kwargs) -> keras.Model:
    """The model as older code built it: plain Conv2D(groups=...) and BatchNormalization
    (before GroupedConv2D and FusedBatchNormalization)."""
    from unittest import mock

    from keras_resnet.models import ops

    with (
        mock.patch.object(ops, "GroupedConv2D", keras.layers.Conv2D),
        mock.patch.object(ops, "FusedBatchNormalization", keras.layers.BatchNormalization),
    ):
        return create_model(name, **kwargs)


LOAD = """
import sys, numpy as np, keras
from keras_resnet import create_model
from keras_resnet.layers import FusedBatchNormalization, GroupedConv2D
old = keras.saving.load_model(sys.argv[1] + "/old.keras")
x, y = np.load(sys.argv[1] + "/x.npy"), np.load(sys.argv[1] + "/y.npy")
np.testing.assert_allclose(old.predict(x, verbose=0), y, atol=1e-5)
new = create_model("_tiny", groups=2, input_shape=(16, 16, 3))
new.set_weights(old.get_weights())
np.testing.assert_allclose(new.predict(x, verbose=0), y, atol=1e-5)
new.save(sys.argv[1] + "/new.keras")
again = keras.saving.load_model(sys.argv[1] + "/new.keras")
assert any(isinstance(l, GroupedConv2D) for l in again.layers)
assert any(isinstance(l, FusedBatchNormalization) for l in again.layers)
np.testing.assert_allclose(again.predict(x, verbose=0), y, atol=1e-5)
print("ok")
"""


def test_keras_file_saved_with_plain_conv2d_still_loads(tmp_path):
    old = _build_plain("_tiny", groups=2, input_shape=(16, 16, 3))
    assert not any(isinstance(layer, GroupedConv2D) for layer in old.layers)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in old.layers)
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
    old.save(tmp_path / "old.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", old.predict(x, verbose=0))
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_formulation_thresholds_are_what_the_layer_uses():
    # TensorFlow on a CPU computes the merged formulations; every other case is native
    cpu = keras.backend.backend() == "tensorflow" and not _gpus()
    thin = grouped_conv.MERGED_MAX_CHANNELS // 8  # 8 groups this thin fill one convolution
    for groups, merged in [(32, "per_8_groups"), (4, "per_4_groups"), (6, "per_2_groups")]:
        layer = GroupedConv2D(groups, 3, groups=groups)
        layer.build((None, 8, 8, groups * thin))
        assert grouped_conv_formulation(layer) == (merged if cpu else "native"), groups
    layer = GroupedConv2D(64, 3, groups=2)
    layer.build((None, 8, 8, 2 * grouped_conv.MERGED_MAX_CHANNELS))
    assert grouped_conv_formulation(layer) == ("per_group" if cpu else "native")
    plain = GroupedConv2D(8, 3)
    plain.build((None, 8, 8, 8))
    assert grouped_conv_formulation(plain) == "native"
    np.testing.assert_array_equal(plain(np.ones((1, 8, 8, 8), "float32")).shape, (1, 6, 6, 8))
