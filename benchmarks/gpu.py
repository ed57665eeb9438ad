"""GPU training throughput: float32 vs mixed precision, with and without XLA, TF and JAX.

Synthetic data (so the input pipeline is not measured), ``resnet50`` at 224x224 and
``resnet20`` at 32x32, batch sizes 64/128/256, SGD with momentum. Each backend runs in
its own process (``KERAS_BACKEND`` is fixed per process); every configuration prints
ONE JSON line: images/s over ``--steps`` timed steps after 2 warm-up steps (the first
compiles), peak GPU memory (TensorFlow: per configuration; JAX: peak of the process so
far, JAX cannot reset it) and the loss after the last step (a silent divergence shows as
a non-finite or growing loss). On JAX the train step is always XLA-compiled, so only
``xla: true`` rows exist. Configurations run most important first (resnet50, largest
batch, mixed_float16 + XLA) and stop at ``--budget-s`` (default 270 s in all), printing
a ``skipped`` line for each one left, so the whole run ends within 5 minutes.

With ``--write-cache`` the fastest TensorFlow setting for resnet50 at the largest
batch is written to the cache that ``precision="auto"`` / ``jit_compile="auto"`` read
(:mod:`keras_resnet.training.auto_choice`).

When no GPU is visible it prints one JSON line ``{"error": "no GPU visible", ...}`` and
exits with status 3.

Setup on a fresh GPU machine (CUDA 12 driver), then one command:
    pip install -e . "tensorflow[and-cuda]" "jax[cuda12]"
    python benchmarks/gpu.py --write-cache
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

SIZES = {"resnet50": 224, "resnet20": 32}
PRECISIONS = ("mixed_float16", "float32", "mixed_bfloat16")
NO_GPU_EXIT = 3


def _gpus() -> list[str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def _configs(args) -> list[dict]:
    sizes = sorted((int(b) for b in args.batch_sizes.split(",")), reverse=True)
    return [
        {"model": m, "batch_size": b, "precision": p, "xla": x}
        for m in args.models.split(",")
        for b in sizes
        for p in PRECISIONS
        for x in (True, False)
    ]


def _peak_memory_gb(backend: str) -> float | None:
    if backend == "tensorflow":
        import tensorflow as tf

        return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30, 2)
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    return round(stats.get("peak_bytes_in_use", 0) / 2**30, 2) or None


def worker(args) -> None:
    import keras

    from keras_resnet.training import auto_choice

    backend = keras.backend.backend()
    deadline = time.monotonic() + args.budget_s
    cache_rows = []
    for config in _configs(args):
        row = {"backend": backend, **config}
        if backend == "jax" and not config["xla"]:
            continue  # Keras on JAX always compiles the train step with XLA
        if time.monotonic() > deadline:
            print(json.dumps({**row, "skipped": "time budget (--budget-s)"}), flush=True)
            continue
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        try:
            result = auto_choice.time_training(
                config["precision"],
                config["xla"],
                model=config["model"],
                input_size=SIZES[config["model"]],
                batch_size=config["batch_size"],
                steps=args.steps,
            )
            row.update(images_per_s=result["images_per_s"], loss=result["loss"])
            row["peak_memory_gb"] = _peak_memory_gb(backend)
            if backend == "tensorflow" and config["model"] == args.models.split(",")[0]:
                if config["batch_size"] == max(int(b) for b in args.batch_sizes.split(",")):
                    cache_rows.append(result)
        except Exception as error:  # e.g. out of memory or no bf16 on this GPU: report it
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        print(json.dumps(row), flush=True)
    if args.write_cache and cache_rows:
        choice = auto_choice.record_choice(
            auto_choice.device_key(), cache_rows, "benchmarks/gpu.py"
        )
        print(json.dumps({"backend": backend, "auto_choice": choice}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--models", default="resnet50,resnet20")
    parser.add_argument("--batch-sizes", default="64,128,256")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=270.0, help="for all backends")
    parser.add_argument("--write-cache", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    gpus = _gpus()
    if not gpus:
        print(
            json.dumps(
                {
                    "error": "no GPU visible",
                    "hint": "TensorFlow lists no GPU: install tensorflow[and-cuda] on a "
                    "machine with an NVIDIA driver (see docs/performance.md)",
                    "exit_status": NO_GPU_EXIT,
                }
            )
        )
        return NO_GPU_EXIT
    backends = [b for b in args.backends.split(",") if importlib.util.find_spec(b)]
    shares = {"tensorflow": 0.6, "jax": 0.4} if len(backends) == 2 else {b: 1.0 for b in backends}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--worker", "--models", args.models]
        cmd += ["--batch-sizes", args.batch_sizes, "--steps", str(args.steps)]
        cmd += ["--budget-s", str(args.budget_s * shares[backend])]
        cmd += ["--write-cache"] if args.write_cache else []
        done = subprocess.run(cmd, env=env, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            error = done.stderr.strip().splitlines()[-1:] or ["?"]
            print(json.dumps({"backend": backend, "error": error[0][:300]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
