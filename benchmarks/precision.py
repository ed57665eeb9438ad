"""Images/s of a resnet20 training step in float32 vs mixed_bfloat16 (and XLA) on this
machine, side by side.

All variants are built in ONE process (each model takes the dtype policy that is set
when its layers are created) and timed in interleaved rounds (A, B, C, A, B, C, ...),
so that the load of the shared machine hits them alike; the figures are medians over
rounds and the ratio is the median of per-round ratios. Prints ONE JSON line,
including what ``precision="auto"`` resolves to here.

Usage: python benchmarks/precision.py [--batch-size 64] [--steps 5] [--rounds 6] [--jit]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_resnet import create_model
from keras_resnet.training import precision_scope, resolve_precision


def build(policy: str, jit: bool, size: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    with precision_scope(policy):
        model = create_model("resnet20", input_shape=(size, size, 3), classes=10)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit,
        )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--jit", action="store_true", help="also time float32 + XLA")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(args.batch_size,)).astype("int32")
    variants = {"float32": ("float32", False), "mixed_bfloat16": ("mixed_bfloat16", False)}
    if args.jit:
        variants["float32_jit"] = ("float32", True)
    models = {k: build(p, j, args.image_size) for k, (p, j) in variants.items()}
    for model in models.values():
        for _ in range(3):  # trace and warm up
            model.train_on_batch(x, y)
    rates: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            rates[key].append(args.batch_size * args.steps / (time.perf_counter() - start))
    result: dict = {
        "model": "resnet20",
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "rounds": args.rounds,
        "steps": args.steps,
    }
    for key, values in rates.items():
        result[f"{key}_images_per_s"] = round(statistics.median(values), 1)
    for key in rates:
        if key != "float32":
            ratios = [b / a for a, b in zip(rates["float32"], rates[key], strict=True)]
            result[f"{key}_over_float32"] = round(statistics.median(ratios), 3)
    result["auto_picks"] = resolve_precision("auto")
    result["cpu_count"] = os.cpu_count()
    result["note"] = "shared 2-core machine: absolute figures are pessimistic; read the ratios"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
