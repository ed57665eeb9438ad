"""Tiny synthetic ``Datasets`` for the training tests (no data module needed)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class FakeInfo:
    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_examples: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class FakeDatasets(NamedTuple):
    train: Any
    validation: Any
    test: Any
    info: FakeInfo


def synthetic(n_train=64, n_test=32, batch_size=16, size=8, validation=True):
    """Two separable classes (bright vs dark images) in a 10-class head."""
    rng = np.random.default_rng(0)
    n = n_train + n_test
    y = (np.arange(n) % 2).astype("int32")
    x = (
        rng.normal(size=(n, size, size, 1)).astype("float32") * 0.3
        + (2 * y - 1)[:, None, None, None]
    )

    def make(a, b):
        return tf.data.Dataset.from_tensor_slices((a, b)).batch(batch_size)

    info = FakeInfo(
        "synthetic",
        10,
        (size, size, 1),
        tuple(str(i) for i in range(10)),
        (0.5,),
        (0.25,),
        {"train": n_train, "validation": n_test if validation else 0, "test": n_test},
    )
    test = make(x[n_train:], y[n_train:])
    return FakeDatasets(make(x[:n_train], y[:n_train]), test if validation else None, test, info)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a training subprocess: quiet, CPU only, this checkout first."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def pretrained_tiny(tmp_path, classes=3):
    """A ``_tiny`` model for 8x8 grey images with random BN statistics, saved as .keras."""
    import keras

    from keras_resnet import create_model

    model = create_model("_tiny", input_shape=(8, 8, 1), classes=classes)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, g), rng.normal(0, 0.1, g),
                               rng.normal(0, 0.1, g), rng.uniform(0.5, 1.5, g)])  # fmt: skip
    path = str(tmp_path / "pretrained.keras")
    model.save(path)
    return model, path
