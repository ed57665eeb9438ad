"""Does a training step fit in memory? A lower bound, checked before a run starts.

Backpropagation keeps the input of every layer with a kernel (convolutions, dense
layers) until its kernel's gradient is computed, so one training step holds at least
``batch x sum(input sizes) x bytes per value`` of activations, whatever the
framework fuses or frees. The input pipeline holds at least two float32 batches on the
host (the one training and the one prefetched). Weights, optimizer state, gradients,
caches and the framework's own buffers come on top, so the estimate never refuses a
run that fits. :func:`check_training_memory` compares it with the memory available:
host memory when the model trains on the CPU; on a GPU or TPU only the pipeline's part
is checked against the host (the device reports its own out-of-memory error at the
first step).
"""

from __future__ import annotations

import math
import os
from typing import Any

import keras
import numpy as np

GB = 1024**3


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup "max": no limit


def available_memory() -> int | None:
    """Bytes of memory this process can still use: ``MemAvailable`` of the machine,
    capped by the cgroup's limit (a container's ``memory.max`` minus its use).

    Returns:
        The bytes, or ``None`` where the system does not say (then nothing is refused).

    Example:
        >>> free = available_memory()
        >>> free is None or free > 0
        True
    """
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 1 << 60:
            found.append(max(0, cap - used))
    return min(found) if found else None


def _kernel_layers(layer: Any) -> list[Any]:
    found = []
    for sub in getattr(layer, "layers", []):
        if getattr(sub, "kernel", None) is not None and sub.trainable_weights:
            found.append(sub)
        found += _kernel_layers(sub)
    return found


def activation_bytes(model: keras.Model, batch_size: int) -> tuple[int, int]:
    """The activations one training step keeps at least: the inputs of every layer with
    a kernel, for ``batch_size`` examples, at the layers' compute precision.

    Args:
        model: A functional model (a subclassed model's layers have no known inputs
            and count nothing).
        batch_size: Examples in one step (per replica).

    Returns:
        ``(bytes, layers counted)``.

    Example:
        >>> from keras_resnet import create_model
        >>> nbytes, layers = activation_bytes(create_model("_tiny", input_shape=(32, 32, 3)), 8)
        >>> # 8 examples x 4 bytes x (stem 32x32x3, three 32x32x8 inputs, the padded
        >>> # 34x34x8 of the strided conv, 16x16x16, the head's 16 features)
        >>> layers, nbytes == 8 * 4 * (32*32*3 + 3 * 32*32*8 + 34*34*8 + 16*16*16 + 16)
        (7, True)
    """
    total, counted = 0, 0
    for layer in _kernel_layers(model):
        try:
            inputs = keras.tree.flatten(layer.input)
        except (AttributeError, ValueError):  # no symbolic input: a subclassed model's layer
            continue
        size = np.dtype(layer.compute_dtype).itemsize
        total += sum(math.prod(t.shape[1:]) * size for t in inputs)
        counted += 1
    return batch_size * total, counted


def _accelerators() -> bool:
    """Whether TensorFlow sees a GPU or TPU (where the activations of a step live)."""
    import tensorflow as tf

    return any(d.device_type in ("GPU", "TPU") for d in tf.config.list_logical_devices())


def check_training_memory(
    model: keras.Model,
    image_shape: tuple[int, int, int],
    batch_size: int,
    *,
    replicas: int = 1,
    on_host: bool | None = None,
    available: int | None = None,
) -> None:
    """Refuse an image size (with a batch size) whose training step cannot fit in memory.

    Args:
        model: The model to train, built at ``image_shape``.
        image_shape: ``(height, width, channels)`` of the training images.
        batch_size: The global batch size.
        replicas: Replicas the batch is split among (each holds its share).
        on_host: The model trains on the CPU (its activations are in host memory);
            ``None``: when TensorFlow sees no GPU or TPU.
        available: Bytes available (default :func:`available_memory`).

    Raises:
        ValueError: The lower bound exceeds the memory available; the message names
            the image size, the estimate, the memory and the largest size that fits.

    Example:
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(32, 32, 3))
        >>> check_training_memory(model, (32, 32, 3), 8, available=GB)  # fits: nothing happens
        >>> check_training_memory(model, (32, 32, 3), 8, available=1000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `image_size` (32, 32) needs at least 0.00... GB ... at most 1x1 ...
    """
    if available is None:
        available = available_memory()
    if available is None:
        return
    if on_host is None:
        on_host = not _accelerators()
    height, width, channels = (int(v) for v in image_shape)
    need, layers = 2 * batch_size * height * width * channels * 4, 0  # the input pipeline
    if on_host:
        activations, layers = activation_bytes(model, math.ceil(batch_size / max(1, replicas)))
        need += activations * max(1, replicas)
    if need <= available:
        return
    # both terms grow with the pixels: the largest square-ish size that fits
    scale = math.sqrt(available / need)
    fits = (max(1, int(height * scale)), max(1, int(width * scale)))
    kept = f"the inputs of its {layers} kernel layers kept for the backward pass and "
    what = kept if layers else ""
    raise ValueError(
        f"`image_size` ({height}, {width}) needs at least {need / GB:.3g} GB of memory for "
        f"one training step at batch size {batch_size} ({what}two float32 batches of the "
        f"input pipeline), but {available / GB:.3g} GB is available. Allowed: at most "
        f"{fits[0]}x{fits[1]} at this batch size, or a smaller batch size. Received: "
        f"image_size=({height}, {width}), batch_size={batch_size}"
    )
