"""Training-step throughput and peak memory: our DenseNet-121 vs keras.applications.DenseNet121.

The two have the same layout (same convolutions, BN, pooling and concatenations), so
this compares the implementations. Each model trains in its own child process (peak
resident memory is attributable), same batch and input size, rounds interleaved
(ours, keras, ours, keras, ...) so machine noise hits both alike. Prints one JSON line:
images/s, peak resident memory (MB) and the ratios ours / keras.applications.

Usage:
    python benchmarks/densenet_vs_keras.py --batch 8 --image-size 96 --steps 5 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

OURS, KERAS = "densenet121", "keras.applications.DenseNet121"


def _measure(model_name: str, batch: int, size: int, warmup: int, steps: int) -> dict:
    import resource
    import time

    import keras
    import numpy as np

    shape = (size, size, 3)
    if model_name == KERAS:
        model = keras.applications.DenseNet121(weights=None, input_shape=shape)
    else:
        from keras_resnet import create_model

        model = create_model(model_name, input_shape=shape)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,  # as in resnet50_vs_keras.py: XLA was slower on the CPU
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *shape)).astype("float32")
    y = rng.integers(0, 1000, size=(batch,))
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return {
        "img_per_s": batch * steps / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": model.count_params(),
        "backend": keras.backend.backend(),
    }


def _run_child(model: str, args: argparse.Namespace) -> dict:
    options = ["--batch", args.batch, "--image-size", args.image_size, "--warmup", args.warmup]
    cmd = [sys.executable, __file__, "--child", model, *map(str, options + ["--steps", args.steps])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=(OURS, KERAS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.image_size < 32:
        parser.error(
            f"--image-size must be >= 32 (DenseNet-121 downsamples by 32), got {args.image_size}"
        )
    if args.child:
        print(
            json.dumps(_measure(args.child, args.batch, args.image_size, args.warmup, args.steps))
        )
        return

    runs: dict[str, list[dict]] = {OURS: [], KERAS: []}
    for _ in range(args.rounds):
        for model in runs:
            runs[model].append(_run_child(model, args))
    summary = {
        m: {
            "img_per_s": round(statistics.median(r["img_per_s"] for r in rs), 2),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rs), 1),
            "params": rs[0]["params"],
        }
        for m, rs in runs.items()
    }
    ours, ref = summary[OURS], summary[KERAS]
    result = {
        "benchmark": "densenet121_train_step_vs_keras_applications",
        "backend": runs[OURS][0]["backend"],
        "batch": args.batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "models": summary,
        "speed_ratio_vs_keras": round(ours["img_per_s"] / ref["img_per_s"], 3),
        "memory_ratio_vs_keras": round(ours["peak_rss_mb"] / ref["peak_rss_mb"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
