"""Per-step time of ``train`` against a plain ``model.fit`` of the same model, per backend.

``train("resnet20", "digits", <recipe>)`` into a run folder (checkpoints, backup,
history, EMA: everything but the export) and, in the same process, a plain
``model.fit`` of the same model with the same optimizer, loss, metrics and
``jit_compile`` setting but no callbacks. Each side's time per step is the median over
its epochs after the first (the first compiles), from epoch begin to epoch end, so the
callbacks' per-epoch saving counts. Each backend runs in its own process
(``KERAS_BACKEND`` is fixed per process). Prints ONE JSON line.

The machine is shared: read the ratios, side by side, rather than the absolute times.

Usage: python benchmarks/backend_train.py [--backends tensorflow,jax,torch]
       [--epochs 4] [--recipe digits] [--jit-compile auto|true|false]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's keras_resnet, not an installed one


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch (epoch hooks only: keeps Keras' async dispatch)."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def _ms_per_step(seconds: list[float], steps: int) -> float:
    later = seconds[1:] or seconds
    return round(1000 * statistics.median(later) / steps, 1)


def worker(args) -> dict:
    import keras

    from keras_resnet.data import get_datasets
    from keras_resnet.models.factory import create_model
    from keras_resnet.training import get_recipe, train
    from keras_resnet.training.auto_choice import resolve_jit_compile
    from keras_resnet.training.factories import compile_model

    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    config = get_recipe(args.recipe, epochs=args.epochs, seed=0, jit_compile=jit)
    data = get_datasets(config.data_config("digits"))
    steps = int(data.train.cardinality())
    timer = _epoch_timer()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = train(
            "resnet20", "digits", config, output_dir=folder, verbose=0,
            callbacks=[timer],
        )  # fmt: skip
        train_total = time.perf_counter() - start
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    net = create_model("resnet20", input_shape=data.info.image_shape, classes=10)
    one_hot = len(data.train.element_spec[1].shape) == 2
    net = compile_model(net, config, steps_per_epoch=steps, one_hot=one_hot)
    plain = _epoch_timer()
    net.fit(data.train, epochs=args.epochs, callbacks=[plain], verbose=0)
    row = {
        "backend": keras.backend.backend(),
        "jit_compile": resolve_jit_compile(config.jit_compile),
        "steps_per_epoch": steps,
        "train_ms_per_step": _ms_per_step(timer.seconds, steps),
        "fit_ms_per_step": _ms_per_step(plain.seconds, steps),
        "train_first_epoch_s": round(timer.seconds[0], 1),
        "fit_first_epoch_s": round(plain.seconds[0], 1),
        "train_total_s": round(train_total, 1),
        "test_accuracy": round(result.summary["test_accuracy"], 4),
    }
    row["train_over_fit"] = round(row["train_ms_per_step"] / row["fit_ms_per_step"], 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--recipe", default="digits")
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "true", "false"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return 0
    rows = []
    for backend in args.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            rows.append({"backend": backend, "error": "not installed"})
            continue
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--epochs", str(args.epochs)]
        cmd += ["--recipe", args.recipe, "--jit-compile", args.jit_compile]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            error = done.stderr.strip().splitlines()[-1:] or ["?"]
            rows.append({"backend": backend, "error": error[0][:300]})
        else:
            rows.append(json.loads(lines[-1]))
    versions = {"python": sys.version.split()[0], "numpy": np.__version__}
    for name in ("tensorflow", "keras", "jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            versions[name] = __import__(name).__version__
    print(json.dumps({"benchmark": "backend_train", "epochs": args.epochs,
                      "recipe": args.recipe, "rows": rows, "versions": versions}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
