"""Shared model checks (the pattern of timm's test_models / keras-hub backbone tests)."""

from __future__ import annotations

import keras
import numpy as np


def trainable_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def check_builds_and_trains(
    model: keras.Model, input_shape, classes: int, batch: int = 2, min_changed: float = 0.5
):
    """Output shape, one optimizer step without NaN that changes the weights.

    ``min_changed`` is the fraction of weight tensors the step must change (zero-init
    of the last BN legitimately stops gradients into the branch on the first step).
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *input_shape)).astype("float32")
    y = rng.integers(0, classes, size=(batch,))
    # Batch statistics, as the first training step sees them: in inference mode an
    # untrained resnet1202 overflows float32 (moving statistics 0 / 1, and each of its
    # 600 residual additions doubles the variance), which training removes.
    probs = keras.ops.convert_to_numpy(model(x, training=True))
    assert probs.shape == (batch, classes)
    assert np.all(np.isfinite(probs))
    # Eager: tracing a deep net's train step takes longer than running it once.
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    changed = sum(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
    assert changed >= min_changed * len(before)
    return x


def check_keras_round_trip(model: keras.Model, x: np.ndarray, tmp_path) -> None:
    """`.keras` save/load with safe_mode gives identical outputs, layers and parameters."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)  # rebuilt from the config

    def outputs(m: keras.Model) -> np.ndarray:
        return keras.ops.convert_to_numpy(m(x, training=False))

    np.testing.assert_array_equal(outputs(model), outputs(loaded))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.count_params() == model.count_params()
