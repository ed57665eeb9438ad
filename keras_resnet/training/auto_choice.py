"""Measure which precision and XLA setting trains fastest on this device, and cache it.

``precision="auto"`` / ``jit_compile="auto"`` read the cached choice for the current
accelerator; when there is none they time a few training steps of each candidate
(:func:`measure_auto_choice`) once and write the winner to the cache, as
``benchmarks/gpu.py --write-cache`` also does. On CPUs nothing is measured: float32
without XLA was measured fastest there (``benchmarks/precision.py``,
``docs/performance.md``). The cache is a JSON file keyed by device
(``$KERAS_RESNET_AUTO_CACHE``, default ``~/.cache/keras_resnet/auto_choice.json``).
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_resnet.atomic import write_json_atomic

logger = logging.getLogger("keras_resnet.training")

CPU_CHOICE = {"precision": "float32", "jit_compile": False, "source": "cpu default"}
# What a first use on an accelerator times per candidate (seconds each, plus compiling).
MEASURE_DEFAULTS = {"model": "resnet20", "input_size": 32, "batch_size": 128, "steps": 10}


def cache_path() -> Path:
    """The JSON file holding measured choices per device.

    Example:
        >>> cache_path().name
        'auto_choice.json'
    """
    default = Path.home() / ".cache" / "keras_resnet" / "auto_choice.json"
    return Path(os.environ.get("KERAS_RESNET_AUTO_CACHE", default))


def device_key() -> str | None:
    """``"<backend>:<device name>"`` of the first accelerator, or ``None`` on CPU.

    Example (on a machine without a GPU or TPU; with one it reads, e.g.,
    ``"tensorflow:NVIDIA H100 80GB HBM3"``):
        >>> print(device_key())
        None
    """
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return f"{keras.backend.backend()}:TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"{keras.backend.backend()}:{name}"


def candidates(key: str) -> list[tuple[str, bool]]:
    """The (precision, jit_compile) pairs worth timing on device ``key``.

    Example:
        >>> ("mixed_float16", True) in candidates("tensorflow:NVIDIA H100")
        True
    """
    float16 = [] if key.endswith(":TPU") else ["mixed_float16"]  # TPUs compute in bfloat16
    return [(p, jit) for p in ["float32", *float16, "mixed_bfloat16"] for jit in (False, True)]


def cached_choice(key: str) -> dict[str, Any] | None:
    """The cached choice for ``key``, or ``None`` (missing or unreadable cache).

    Example:
        >>> cached_choice("tensorflow:no such device") is None
        True
    """
    return _read_cache().get(key)


def _read_cache() -> dict[str, Any]:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def record_choice(key: str, results: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """Pick the fastest result with a finite loss, write it to the cache, return it.

    Args:
        key: The device key (:func:`device_key`).
        results: Dicts with ``precision``, ``jit_compile``, ``images_per_s``, ``loss``.
        source: What measured them (written with the choice).

    Example:
        >>> import os, tempfile
        >>> os.environ["KERAS_RESNET_AUTO_CACHE"] = os.path.join(tempfile.mkdtemp(), "c.json")
        >>> rows = [dict(precision="float32", jit_compile=False, images_per_s=10.0, loss=2.3),
        ...         dict(precision="mixed_float16", jit_compile=True, images_per_s=30.0,
        ...              loss=float("nan"))]
        >>> record_choice("tensorflow:Example GPU", rows, "doctest")["precision"]
        'float32'
        >>> del os.environ["KERAS_RESNET_AUTO_CACHE"]
    """
    valid = [r for r in results if r.get("loss") is not None and math.isfinite(r["loss"])]
    if not valid:
        raise ValueError(f"No candidate trained with a finite loss on {key}. Received: {results}")
    best = max(valid, key=lambda r: r["images_per_s"])
    choice = {
        "precision": best["precision"],
        "jit_compile": bool(best["jit_compile"]),
        "images_per_s": best["images_per_s"],
        "source": source,
        "date": datetime.date.today().isoformat(),
        "measured": results,
    }
    table = _read_cache()
    table[key] = choice
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache_path(), table)
    return choice


def time_training(
    precision: str,
    jit_compile: bool,
    *,
    model: str = "resnet20",
    input_size: int = 32,
    batch_size: int = 128,
    steps: int = 10,
) -> dict[str, Any]:
    """Images/s and final loss of ``steps`` training steps on synthetic data.

    Example:
        >>> r = time_training("float32", False, model="_tiny", input_size=8, batch_size=4,
        ...                   steps=1)
        >>> r["images_per_s"] > 0 and math.isfinite(r["loss"])
        True
    """
    from keras_resnet.registry import create_model
    from keras_resnet.training.precision import precision_scope  # imports this module

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    with precision_scope(precision):
        net = create_model(model, input_shape=(input_size, input_size, 3), classes=10)
    net.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        "sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, input_size, input_size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(batch_size,)).astype("int32")
    for _ in range(2):  # compile and warm up
        net.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = net.train_on_batch(x, y)
    loss = float(np.asarray(loss))  # waits for the device
    seconds = time.perf_counter() - start
    return {
        "precision": precision,
        "jit_compile": jit_compile,
        "images_per_s": round(steps * batch_size / seconds, 1),
        "loss": loss,
    }


def measure_auto_choice(
    key: str | None = None, pairs: list[tuple[str, bool]] | None = None, **timing: Any
) -> dict[str, Any]:
    """Time each (precision, jit_compile) pair on this device and cache the fastest.

    Args:
        key: Device key; defaults to :func:`device_key` (``"cpu"`` on a CPU).
        pairs: Candidates; defaults to :func:`candidates` for the device.
        **timing: Passed to :func:`time_training` (``model``, ``batch_size``, ...).

    Example:
        >>> import os, tempfile
        >>> os.environ["KERAS_RESNET_AUTO_CACHE"] = os.path.join(tempfile.mkdtemp(), "c.json")
        >>> c = measure_auto_choice("tensorflow:Example", [("float32", False)], model="_tiny",
        ...                         input_size=8, batch_size=4, steps=1)
        >>> cached_choice("tensorflow:Example")["precision"], c["precision"]
        ('float32', 'float32')
        >>> del os.environ["KERAS_RESNET_AUTO_CACHE"]
    """
    key = key or device_key() or f"{keras.backend.backend()}:cpu"
    results = []
    for precision, jit in pairs or candidates(key):
        try:
            results.append(time_training(precision, jit, **timing))
        except Exception as error:  # an unsupported pair on this device is not a choice
            logger.warning("auto choice: %s jit=%s failed on %s: %s", precision, jit, key, error)
    return record_choice(key, results, "measure_auto_choice")


def auto_choice() -> dict[str, Any]:
    """The precision / jit_compile that ``"auto"`` means here (measured once per device).

    Example (on a CPU: float32 without XLA, nothing measured):
        >>> auto_choice()
        {'precision': 'float32', 'jit_compile': False, 'source': 'cpu default'}
    """
    key = device_key()
    if key is None:
        return CPU_CHOICE
    choice = cached_choice(key)
    if choice is None:
        logger.info("No measured auto choice for %s; timing the candidates once", key)
        choice = measure_auto_choice(key, **MEASURE_DEFAULTS)
    logger.info("auto on %s -> %s, jit_compile=%s", key, choice["precision"], choice["jit_compile"])
    return choice
