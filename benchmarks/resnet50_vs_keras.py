"""Training-step throughput and peak memory: our ResNet-50 vs keras.applications.ResNet50.

Each model trains in its own child process (so peak memory is attributable), at the
same batch size and input size, with the rounds interleaved (ours, keras, ours, ...)
so that machine noise hits all models alike. Prints one JSON line with images/s,
peak resident memory, and the ratios ours / keras.applications.

Models compared:
- ``resnet50``: keras_resnet's default ResNet-50 v1.5 (stride on the 3x3, 4.09 G MACs).
- ``resnet50_keras``: keras_resnet's keras.applications layout (stride on the 1x1,
  3.86 G MACs): the architecture-for-architecture comparison.
- ``keras.applications``: ``keras.applications.ResNet50(weights=None)``.

Usage:
    python benchmarks/resnet50_vs_keras.py --batch 16 --image-size 128 --steps 5 --rounds 2
On a GPU machine with the JAX backend: ``KERAS_BACKEND=jax python benchmarks/...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

MODELS = ("resnet50", "resnet50_keras", "keras.applications")


def _child(model_name: str, batch: int, size: int, warmup: int, steps: int) -> dict:
    import resource
    import time

    import keras
    import numpy as np

    if model_name == "keras.applications":
        model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    else:
        from keras_resnet import create_model

        model = create_model(model_name, input_shape=(size, size, 3))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,  # XLA measured ~3x slower for ResNet-50 on this CPU
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 1000, size=(batch,))
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "img_per_s": batch * steps / elapsed,
        "peak_rss_mb": peak_kb / 1024,
        "params": model.count_params(),
        "backend": keras.backend.backend(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("batch", "image_size", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.image_size < 32:
        parser.error(
            f"--image-size must be >= 32 (ResNet-50 downsamples by 32), got {args.image_size}"
        )

    if args.child:
        result = _child(args.child, args.batch, args.image_size, args.warmup, args.steps)
        print("RESULT " + json.dumps(result))
        return

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    runs: dict[str, list[dict]] = {m: [] for m in MODELS}
    for _ in range(args.rounds):
        for model in MODELS:
            cmd = [sys.executable, __file__, "--child", model, "--batch", str(args.batch),
                   "--image-size", str(args.image_size), "--warmup", str(args.warmup),
                   "--steps", str(args.steps)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            runs[model].append(json.loads(line[len("RESULT ") :]))

    summary = {
        m: {
            "img_per_s": round(statistics.median(r["img_per_s"] for r in runs[m]), 2),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs[m]), 1),
            "params": runs[m][0]["params"],
        }
        for m in MODELS
    }
    ref = summary["keras.applications"]
    print(
        json.dumps(
            {
                "benchmark": "resnet50_train_step_vs_keras_applications",
                "backend": runs[MODELS[0]][0]["backend"],
                "batch": args.batch,
                "image_size": args.image_size,
                "steps": args.steps,
                "rounds": args.rounds,
                "models": summary,
                "speed_ratio_resnet50_vs_keras": round(
                    summary["resnet50"]["img_per_s"] / ref["img_per_s"], 3
                ),
                "speed_ratio_resnet50_keras_vs_keras": round(
                    summary["resnet50_keras"]["img_per_s"] / ref["img_per_s"], 3
                ),
                "memory_ratio_resnet50_vs_keras": round(
                    summary["resnet50"]["peak_rss_mb"] / ref["peak_rss_mb"], 3
                ),
                "memory_ratio_resnet50_keras_vs_keras": round(
                    summary["resnet50_keras"]["peak_rss_mb"] / ref["peak_rss_mb"], 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
