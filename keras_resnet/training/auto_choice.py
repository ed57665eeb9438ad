"""Choose the precision and XLA setting: measured fastest on this device, and cached.

``"auto"`` is measured, not looked up: on an accelerator the first use times a few
training steps of each candidate and caches the fastest per device. On CPUs it is
float32, as measured on this project's 2-core CPU with ``benchmarks/precision.py``:
``mixed_bfloat16`` ran at 0.62x-1.52x the float32 speed (median 0.92x); XLA is off on
TensorFlow (``jit_compile=True`` ran at 0.30x-0.40x) and PyTorch, and on for JAX, where
it is ``jax.jit`` itself (``benchmarks/backend_train.py``).

``precision="auto"`` / ``jit_compile="auto"`` read the cached choice for the current
accelerator; when there is none they time a few training steps of each candidate
(:func:`measure_auto_choice`) once and write the winner to the cache, as
``benchmarks/gpu.py --write-cache`` also does. On CPUs nothing is measured: the
choice measured fastest there for each Keras backend is used (:data:`CPU_CHOICES`,
``benchmarks/precision.py``, ``benchmarks/backend_train.py``, ``docs/performance.md``).
The cache is a JSON file keyed by backend and device (``$KERAS_RESNET_AUTO_CACHE``,
default ``~/.cache/keras_resnet/auto_choice.json``). Accelerators are found through the
backend in use, so none of this needs TensorFlow on JAX or PyTorch.
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

from keras_resnet.training.config import PRECISIONS
from keras_resnet.training.precision import precision_scope
from keras_resnet.utils.atomic import write_json_atomic
from keras_resnet.utils.checks import check_choice

logger = logging.getLogger("keras_resnet.training")

# float32 on every backend (bf16 was no faster on the project's CPU). TensorFlow without
# XLA (XLA trained ResNets at 0.30x-0.40x the speed); JAX compiled with jax.jit (``False``
# runs every op eagerly: the digits recipe at ~8x TensorFlow's step time); PyTorch eager
# (torch.compile measured slower there, docs/performance.md).
CPU_CHOICES = {
    "tensorflow": {"precision": "float32", "jit_compile": False, "source": "cpu default"},
    "jax": {"precision": "float32", "jit_compile": True, "source": "cpu default"},
    "torch": {"precision": "float32", "jit_compile": False, "source": "cpu default"},
}
CPU_CHOICE = CPU_CHOICES["tensorflow"]
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

    The accelerator is looked up through the Keras backend in use (TensorFlow, JAX or
    PyTorch), so a machine without TensorFlow needs none.

    Example (on a machine without a GPU or TPU; with one it reads, e.g.,
    ``"tensorflow:NVIDIA H100 80GB HBM3"``):
        >>> print(device_key())
        None
    """
    backend = keras.backend.backend()
    name = accelerator_name(backend)
    return None if name is None else f"{backend}:{name}"


def accelerator_name(backend: str | None = None) -> str | None:
    """The first accelerator's name as ``backend`` sees it (``"TPU"`` for TPUs), or ``None``.

    Args:
        backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``; default: Keras' backend.

    Example:
        >>> accelerator_name("jax") is None or isinstance(accelerator_name("jax"), str)
        True
    """
    backend = backend or keras.backend.backend()
    if backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform != "cpu"]
        if not devices:
            return None
        return "TPU" if devices[0].platform == "tpu" else str(devices[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


def candidates(key: str) -> list[tuple[str, bool]]:
    """The (precision, jit_compile) pairs worth timing on device ``key``.

    Example:
        >>> ("mixed_float16", True) in candidates("tensorflow:NVIDIA H100")
        True
    """
    float16 = [] if key.endswith(":TPU") else ["mixed_float16"]  # TPUs compute in bfloat16
    # Keras on JAX without jit runs every op eagerly: never the faster choice.
    jits = (True,) if key.startswith("jax:") else (False, True)
    return [(p, jit) for p in ["float32", *float16, "mixed_bfloat16"] for jit in jits]


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
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache_path(), {**_read_cache(), key: choice})
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
    from keras_resnet.models.factory import create_model

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
    """The precision / jit_compile that ``"auto"`` means here (measured once per device;
    on a CPU, :data:`CPU_CHOICES` of the Keras backend).

    Example (on a CPU: float32 without XLA, nothing measured):
        >>> auto_choice()
        {'precision': 'float32', 'jit_compile': False, 'source': 'cpu default'}
    """
    key = device_key()
    if key is None:
        return CPU_CHOICES.get(keras.backend.backend(), CPU_CHOICE)
    choice = cached_choice(key)
    if choice is None:
        logger.info("No measured auto choice for %s; timing the candidates once", key)
        choice = measure_auto_choice(key, **MEASURE_DEFAULTS)
    logger.info("auto on %s -> %s, jit_compile=%s", key, choice["precision"], choice["jit_compile"])
    return choice


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype-policy name for ``precision``, resolving ``"auto"``.

    Args:
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Returns:
        A dtype-policy name. ``"auto"`` gives the policy measured fastest on this
        accelerator (:func:`~keras_resnet.training.auto_choice.auto_choice`) and
        ``"float32"`` on CPUs (bf16 measured no faster on the project's CPU).

    Example:
        >>> resolve_precision("float32")
        'float32'
    """
    check_choice("precision", precision, PRECISIONS)
    return precision if precision != "auto" else auto_choice()["precision"]


def resolve_jit_compile(jit_compile: bool | str = "auto") -> bool:
    """Whether to compile the train step with XLA; ``"auto"``: as measured fastest here.

    ``"auto"`` on a CPU depends on the Keras backend: False on TensorFlow (XLA trained
    slower) and PyTorch (eager), True on JAX (without ``jax.jit`` every op runs
    eagerly); on accelerators it is the measured choice (see :func:`resolve_precision`).

    Args:
        jit_compile: ``True``, ``False`` or ``"auto"``.

    Example:
        >>> resolve_jit_compile(False)
        False
    """
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: {jit_compile!r}")
    return bool(jit_compile if jit_compile != "auto" else auto_choice()["jit_compile"])
