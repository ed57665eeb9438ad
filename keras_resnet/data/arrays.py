"""Checks and conversion of in-memory image/label arrays (what ``from_arrays`` takes).

Nothing is guessed or clipped: non-finite pixels, pixels outside the accepted ranges
and labels outside ``[0, num_classes)`` are refused with their count and first index.
"""

from __future__ import annotations

import numpy as np


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_labels(labels: np.ndarray, num_classes: int | None, what: str) -> np.ndarray:
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.number) or not np.all(np.mod(labels, 1) == 0):
            raise ValueError(
                f"Labels for `{what}` must be integers. Received: dtype={labels.dtype}"
            )
    labels = labels.astype(np.int64)
    bad = (labels < 0) if num_classes is None else (labels < 0) | (labels >= num_classes)
    if bad.any():
        first = _first_index(bad)[0]
        allowed = ">= 0" if num_classes is None else f"[0, {num_classes})"
        raise ValueError(
            f"Labels for `{what}` must lie in {allowed}: {int(bad.sum())} label(s) do not, "
            f"the first at index {first}. Received: label {int(labels[first])}"
        )
    return labels.astype(np.int32)


def _refuse(bad: np.ndarray, images: np.ndarray, what: str, problem: str) -> None:
    """Raise naming how many pixels are ``bad`` (``{n}`` in ``problem``) and the first."""
    if bad.any():
        first = _first_index(bad)
        raise ValueError(
            f"`{what}` {problem.format(n=int(bad.sum()))}, the first at index {first}. "
            f"Received: value {images[first]}"
        )


def _check_pixels(images: np.ndarray, what: str) -> np.ndarray:
    """Convert images to uint8, refusing values that would have to be guessed or clipped."""
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.integer):
        _refuse(
            (images < 0) | (images > 255),
            images,
            what,
            "integer images must lie in [0, 255]: {n} pixel(s) do not",
        )
        return images.astype(np.uint8)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"`{what}` images must be uint8 or float. Received: dtype={images.dtype}")
    _refuse(~np.isfinite(images), images, what, "images hold {n} non-finite pixel(s) (NaN or inf)")
    images = images.astype(np.float32)
    if images.max() <= 1.0:
        images = images * 255.0
    _refuse(
        (images < 0) | (images > 255),
        images,
        what,
        "float images must lie in [0, 1] or [0, 255]: {n} pixel(s) do not",
    )
    return np.round(images).astype(np.uint8)


def check_arrays(
    images: np.ndarray, labels: np.ndarray, *, num_classes: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert an image/label pair to ``uint8 (N, H, W, C)`` / ``int32 (N,)``.

    Float images with a maximum <= 1 are taken to be in [0, 1] and scaled by 255;
    other floats are taken to be in [0, 255]; integers must lie in [0, 255].
    Non-finite pixels, pixels outside those ranges, negative labels and labels
    ``>= num_classes`` are refused (``ValueError`` with their count and first index).

    Args:
        images: ``(N, H, W)`` or ``(N, H, W, C)`` with C in (1, 3).
        labels: ``(N,)`` (or ``(N, 1)``) integer labels.
        num_classes: int, or None to check only that labels are >= 0.
        what: the split's name, used in messages (``"train"``).

    Returns:
        ``(images, labels)`` as uint8 and int32 arrays.

    Example:
        >>> x = np.full((2, 4, 4), 0.5, "float32")
        >>> x[1, 0, 0] = np.nan
        >>> check_arrays(x, np.array([0, 1]), num_classes=2, what="train")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `train` images hold 1 non-finite pixel(s) ... at index (1, 0, 0, 0). ...
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"`{what}` images must have shape (N, H, W) or (N, H, W, C) with C in (1, 3). "
            f"Received: {what}.shape={images.shape}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"`{what}` is empty: no examples. Received: {what}.shape={images.shape}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"Labels for `{what}` must be a vector with one integer label per image. "
            f"Received: labels.shape={labels.shape} for images.shape={images.shape}"
        )
    labels = _check_labels(labels, num_classes, what)
    return _check_pixels(images, what), labels
