"""Confusion matrix and per-class accuracy of one pass of predictions, and their plot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_resnet.utils.atomic import atomic_path

_NUMBERED_UP_TO = 30  # classes: beyond, the cells are too small to print counts in


def confusion_matrix(labels: Any, predicted: Any, classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: rows are true classes.

    Args:
        labels: Integer labels, shape ``(N,)``.
        predicted: Predicted classes, shape ``(N,)``.
        classes: Number of classes (> 0).

    Returns:
        An int64 array of shape ``(classes, classes)``.

    Example:
        >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3).tolist()
        [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    """
    labels, predicted = np.asarray(labels, "int64"), np.asarray(predicted, "int64")
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(
            "`labels` and `predicted` must be 1-D and of one length. "
            f"Received: labels.shape={labels.shape}, predicted.shape={predicted.shape}"
        )
    matrix = np.zeros((classes, classes), "int64")
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray, class_names: Any) -> list[dict[str, Any]]:
    """``{"class", "count", "correct", "accuracy"}`` per true class (row) of ``matrix``.

    ``accuracy`` is ``None`` for a class without examples. The counts weigh the
    per-class accuracies into the overall one: ``sum(correct) / sum(count)``.

    Example:
        >>> cat, dog = per_class_accuracy(np.array([[3, 1], [0, 0]]), ["cat", "dog"])
        >>> cat
        {'class': 'cat', 'count': 4, 'correct': 3, 'accuracy': 0.75}
        >>> dog["accuracy"] is None
        True
    """
    rows = []
    for i, name in enumerate(class_names):
        count, correct = int(matrix[i].sum()), int(matrix[i, i])
        accuracy = correct / count if count else None
        rows.append({"class": str(name), "count": count, "correct": correct, "accuracy": accuracy})
    return rows


def save_confusion_matrix_png(
    matrix: np.ndarray, class_names: Any, path: str | os.PathLike, title: str = ""
) -> str:
    """Plot ``matrix`` (class names on the axes, counts in the cells) to a PNG, atomically.

    Drawn with matplotlib's Agg canvas (no display, no pyplot state). Counts are
    printed in the cells up to 30 classes.

    Args:
        matrix: The ``(classes, classes)`` counts, rows the true classes.
        class_names: One name per class.
        path: The ``.png`` file to write (its folder is created).
        title: A title above the plot.

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "confusion_matrix.png")
        >>> png = save_confusion_matrix_png(np.array([[5, 1], [2, 7]]), ["a", "b"], path)
        >>> open(png, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
        True
    """
    from matplotlib.figure import Figure

    k = len(class_names)
    side = min(4 + 0.45 * k, 40)
    fig = Figure(figsize=(side, side), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), [str(n) for n in class_names], rotation=90)
    ax.set_yticks(range(k), [str(n) for n in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    if k <= _NUMBERED_UP_TO:
        light = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            color = "white" if count > light else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    with atomic_path(Path(path), overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return os.fspath(path)
