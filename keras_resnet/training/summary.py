"""What ``summary.json`` reports about a run, and its one-line form."""

from __future__ import annotations

import math
import platform
from typing import Any

import keras


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow, Keras and keras_resnet, for ``summary.json``.

    Example:
        >>> sorted(versions())
        ['keras', 'keras_resnet', 'python', 'tensorflow']
    """
    import tensorflow as tf

    import keras_resnet

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_resnet": keras_resnet.__version__,
    }


def param_counts(model: keras.Model) -> dict[str, int]:
    """``trainable_params`` (as the zoo table counts) and ``total_params`` (also
    BatchNorm moving statistics, as ``count_params()``).

    Example:
        >>> net = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
        >>> param_counts(net)
        {'trainable_params': 6, 'total_params': 12}
    """
    return {
        "trainable_params": sum(int(math.prod(w.shape)) for w in model.trainable_weights),
        "total_params": int(model.count_params()),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """One human-readable line for a run summary.

    Args:
        summary: A ``summary.json`` dict.

    Example:
        >>> format_summary({"model": "resnet20", "dataset": "digits", "test_accuracy": 0.99,
        ...                 "epochs_completed": 15, "wall_time_s": 60.0})
        'resnet20 on digits: test accuracy 99.00% after 15 epochs (60.0 s of training)'
    """
    acc = summary.get("test_accuracy")
    acc_text = f"test accuracy {acc:.2%}" if acc is not None else "no test split"
    return (
        f"{summary.get('model')} on {summary.get('dataset')}: {acc_text} after "
        f"{summary.get('epochs_completed')} epochs ({summary.get('wall_time_s')} s of training)"
    )
