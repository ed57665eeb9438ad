"""GPU training throughput and mixed-precision soundness, per installed Keras backend.

Needs Keras and any of TensorFlow, JAX or PyTorch: GPUs are found through each
backend (``tf.config``, ``jax.devices()``, ``torch.cuda``), so a machine with JAX and/or
PyTorch and no TensorFlow runs it too. Each backend runs in its own process
(``KERAS_BACKEND`` is fixed per process) and:

1. measures training throughput (images/s, synthetic data, SGD with momentum) of
   ``resnet50`` at 224x224 and ``resnet20`` at 32x32 in ``float32``,
   ``mixed_float16`` and ``mixed_bfloat16``: over ``--steps`` timed steps after 2
   warm-up steps (the first compiles). TensorFlow runs with and without XLA, JAX
   always compiles (``jax.jit``), PyTorch runs eagerly (torch.compile trained slower
   here and compiles for minutes, docs/performance.md). Configurations run most
   important first and stop at ``--budget-s``, printing ``skipped`` for the rest;
2. checks that mixed precision trains soundly: ``resnet20`` on scikit-learn's digits
   (a small real task; upsampled to 32x32) for ``--check-steps`` steps per policy:
   every loss finite, the last 20 steps' mean loss below half the first 20 steps',
   float32 logits, and, for ``mixed_float16``, the optimizer's dynamic loss scale
   (Keras' ``LossScaleOptimizer``, finite and > 0).

Each measurement prints ONE JSON line; at the end ONE table sums it up. The whole run
(compilation included) ends within 8 minutes with the defaults. When no backend sees
a GPU it prints ``{"error": "no GPU visible", ...}`` and exits with status 3, unless
``--quick`` (a few steps of the ``_tiny`` test model on the CPU: checks that the
script runs end to end; its figures mean nothing).
``--write-cache`` writes the fastest TensorFlow setting for resnet50 to the cache of
``precision="auto"`` / ``jit_compile="auto"`` (:mod:`keras_resnet.training.auto_choice`).

On a GPU machine without internet access (no package registry), with Keras, a
backend and this checkout (carry the keras wheel if Keras is missing:
``pip install --no-deps keras-*.whl``), one command:
    PYTHONPATH=. python benchmarks/gpu.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"resnet50": 224, "resnet20": 32, "_tiny": 16}
PRECISIONS = ("mixed_float16", "float32", "mixed_bfloat16")
BACKENDS = ("tensorflow", "jax", "torch")
NO_GPU_EXIT = 3
BUDGET_SHARE = {"tensorflow": 0.4, "jax": 0.35, "torch": 0.25}


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def gpus(backend: str) -> list[str]:
    """Names of the GPUs ``backend`` sees (empty on a CPU-only machine)."""
    if backend == "jax":
        import jax

        return [str(d.device_kind) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [torch.cuda.get_device_name(i) for i in range(count)]
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(d) for d in devices]
    return [d.get("device_name", "GPU") for d in details]


def _configs(args, backend: str) -> list[dict]:
    sizes = sorted((int(b) for b in args.batch_sizes.split(",")), reverse=True)
    xla = {"tensorflow": (True, False), "jax": (True,), "torch": (False,)}[backend]
    return [
        {"model": m, "batch_size": b, "precision": p, "xla": x}
        for m in args.models.split(",")
        for b in sizes
        for p in PRECISIONS
        for x in xla
    ]


def _peak_memory_gb(backend: str) -> float | None:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30, 2)
        if backend == "torch":
            import torch

            return round(torch.cuda.max_memory_allocated() / 2**30, 2) or None
        import jax

        stats = jax.local_devices()[0].memory_stats() or {}
        return round(stats.get("peak_bytes_in_use", 0) / 2**30, 2) or None
    except Exception:  # CPU (--quick) or no memory statistics
        return None


def _reset_peak(backend: str) -> None:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
    except Exception:  # CPU: nothing to reset
        pass


def _build(model: str, precision: str, size: int):
    """``model`` built under the dtype policy ``precision`` (restored afterwards)."""
    import keras

    from keras_resnet.models.factory import create_model  # no TensorFlow needed

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        return create_model(model, input_shape=(size, size, 3), classes=10)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def time_training(precision: str, xla: bool, model: str, size: int, batch: int, steps: int):
    """Images/s and last loss of ``steps`` steps on synthetic data, after 2 warm-up steps
    (as :func:`keras_resnet.training.auto_choice.time_training`, without TensorFlow)."""
    import keras
    import numpy as np

    net = _build(model, precision, size)
    net.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy",
                jit_compile=xla)  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(batch,)).astype("int32")
    for _ in range(2):  # compile and warm up
        net.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = net.train_on_batch(x, y)
    loss = float(np.asarray(loss))  # waits for the device
    seconds = time.perf_counter() - start
    return {"precision": precision, "jit_compile": xla, "loss": loss,
            "images_per_s": round(steps * batch / seconds, 1)}  # fmt: skip


def _digits(size: int):
    """scikit-learn's digits, upsampled to ``size`` x ``size``, 3 channels, in [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") / 16.0
    reps = math.ceil(size / 8)
    images = np.kron(images, np.ones((reps, reps), "float32"))[:, :size, :size]
    return np.repeat(images[..., None], 3, axis=-1), digits.target.astype("int32")


def soundness(
    precision: str, steps: int, size: int = 32, batch_size: int = 64, model: str = "resnet20"
) -> dict:
    """Train resnet20 on digits under ``precision``: finite, decreasing loss, float32
    logits and (mixed_float16) a finite positive loss scale."""
    import keras
    import numpy as np

    x, y = _digits(size)
    net = _build(model, precision, size)
    net.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    order = np.random.default_rng(0).permutation(len(x))
    losses = []
    for step in range(steps):
        idx = np.take(order, range(step * batch_size, (step + 1) * batch_size), mode="wrap")
        losses.append(float(np.asarray(net.train_on_batch(x[idx], y[idx]))))
    window = max(1, min(20, steps // 4))
    first, last = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
    logits_dtype = str(keras.ops.convert_to_numpy(net(x[:2], training=False)).dtype)
    row = {
        "precision": precision,
        "check_steps": steps,
        "finite": all(math.isfinite(v) for v in losses),
        "first_loss": round(first, 4),
        "last_loss": round(last, 4),
        "decreasing": last < 0.5 * first,
        "logits_dtype": logits_dtype,
        "loss_scale": None,
    }
    if isinstance(net.optimizer, keras.optimizers.LossScaleOptimizer):
        row["loss_scale"] = float(keras.ops.convert_to_numpy(net.optimizer.dynamic_scale))
    ok = row["finite"] and row["decreasing"] and logits_dtype == "float32"
    if precision == "mixed_float16":
        scale = row["loss_scale"]
        ok = ok and scale is not None and math.isfinite(scale) and scale > 0
    row["sound"] = ok
    return row


def worker(args) -> int:
    import keras

    backend = keras.backend.backend()
    found = gpus(backend)
    print(json.dumps({"backend": backend, "gpus": found}), flush=True)
    if not found and not args.quick:
        return NO_GPU_EXIT
    deadline = time.monotonic() + args.budget_s
    cache_rows = []
    largest = max(int(b) for b in args.batch_sizes.split(","))
    for config in _configs(args, backend):
        row = {"backend": backend, **config}
        if time.monotonic() > deadline:
            print(json.dumps({**row, "skipped": "time budget (--budget-s)"}), flush=True)
            continue
        _reset_peak(backend)
        size = args.image_size or SIZES[config["model"]]
        try:
            result = time_training(config["precision"], config["xla"], config["model"], size,
                                   config["batch_size"], args.steps)  # fmt: skip
            row.update(images_per_s=result["images_per_s"], loss=result["loss"])
            row["peak_memory_gb"] = _peak_memory_gb(backend)
            first_model = config["model"] == args.models.split(",")[0]
            if backend == "tensorflow" and first_model and config["batch_size"] == largest:
                cache_rows.append(result)
        except Exception as error:  # e.g. out of memory or no bf16 on this GPU: report it
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        print(json.dumps(row), flush=True)
    for precision in PRECISIONS:
        try:
            sound = soundness(precision, args.check_steps, args.image_size or 32,
                              model="_tiny" if args.quick else "resnet20")  # fmt: skip
            row = {"backend": backend, "check": "digits", **sound}
        except Exception as error:
            row = {"backend": backend, "check": "digits", "precision": precision}
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        print(json.dumps(row), flush=True)
    if args.write_cache and cache_rows and found:
        from keras_resnet.training import auto_choice  # TensorFlow rows only: TF is here

        choice = auto_choice.record_choice(
            auto_choice.device_key(), cache_rows, "benchmarks/gpu.py"
        )
        print(json.dumps({"backend": backend, "auto_choice": choice}), flush=True)
    return 0


def table(rows: list[dict]) -> str:
    """One text table of the throughput rows and the soundness checks."""
    lines = [f"{'backend':<11}{'model':<10}{'batch':>6} {'precision':<15}{'xla':<6}"
             f"{'images/s':>10}{'peak GB':>9}  note"]  # fmt: skip
    for r in rows:
        if "model" not in r:
            continue
        note = r.get("error") or r.get("skipped") or f"loss {r.get('loss', float('nan')):.3f}"
        ips = r.get("images_per_s")
        lines.append(
            f"{r['backend']:<11}{r['model']:<10}{r['batch_size']:>6} {r['precision']:<15}"
            f"{str(r['xla']):<6}{ips if ips is not None else '-':>10}"
            f"{r.get('peak_memory_gb') or '-':>9}  {note[:60]}"
        )
    lines.append("")
    lines.append(f"{'backend':<11}{'soundness':<15}{'finite':<8}{'loss first->last':<22}"
                 f"{'logits':<9}{'loss scale':<12}sound")  # fmt: skip
    for r in rows:
        if r.get("check") != "digits":
            continue
        if "error" in r:
            lines.append(f"{r['backend']:<11}{r['precision']:<15}error: {r['error'][:70]}")
            continue
        losses = f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}"
        lines.append(
            f"{r['backend']:<11}{r['precision']:<15}{str(r['finite']):<8}{losses:<22}"
            f"{r['logits_dtype']:<9}{str(r['loss_scale']):<12}{r['sound']}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--models", default="resnet50,resnet20")
    parser.add_argument("--batch-sizes", default="256,128")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--check-steps", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=300.0, help="throughput, all backends")
    parser.add_argument("--image-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: tiny and short")
    parser.add_argument("--write-cache", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.models, args.batch_sizes, args.steps, args.check_steps = "_tiny", "8", 1, 8
        args.image_size = 16
    if args.worker:
        return worker(args)
    backends = [b for b in args.backends.split(",") if _importable(b)]
    rows: list[dict] = []
    seen_gpu = False
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--models", args.models]
        cmd += ["--batch-sizes", args.batch_sizes, "--steps", str(args.steps)]
        cmd += ["--check-steps", str(args.check_steps)]
        cmd += ["--budget-s", str(args.budget_s * BUDGET_SHARE[backend])]
        cmd += ["--quick"] * args.quick + ["--write-cache"] * args.write_cache
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                print(line, flush=True)
                row = json.loads(line)
                seen_gpu = seen_gpu or bool(row.get("gpus"))
                rows.append(row)
        if done.returncode not in (0, NO_GPU_EXIT):
            error = done.stderr.strip().splitlines()[-1:] or ["?"]
            print(json.dumps({"backend": backend, "error": error[0][:300]}), flush=True)
    if not seen_gpu and not args.quick:
        print(json.dumps({
            "error": "no GPU visible",
            "backends": backends,
            "hint": "no installed backend (" + ", ".join(backends or ["none"]) + ") sees a GPU: "
            "install a CUDA build of JAX, PyTorch or TensorFlow (docs/performance.md)",
            "exit_status": NO_GPU_EXIT,
        }))  # fmt: skip
        return NO_GPU_EXIT
    print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
