"""Images/s of a resnet20 training step in float32 vs mixed_bfloat16 on this machine.

Each policy runs in its own subprocess (the Keras dtype policy is global), one after
the other, so both see the same machine load; the ratio is the figure to read.
Prints ONE JSON line, including what ``precision="auto"`` resolves to here.

Usage: python benchmarks/precision.py [--batch-size 64] [--steps 20] [--image-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, os, sys, time
import numpy as np
import keras
policy, jit = sys.argv[1], sys.argv[5] == "1"
batch, steps, size = (int(a) for a in sys.argv[2:5])
keras.mixed_precision.set_dtype_policy(policy)
from keras_resnet.zoo import create_model
keras.utils.set_random_seed(0)
model = create_model("resnet20", input_shape=(size, size, 3), classes=10)
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
              loss="sparse_categorical_crossentropy", jit_compile=jit)
x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
y = np.random.default_rng(1).integers(0, 10, size=(batch,)).astype("int32")
for _ in range(3):
    model.train_on_batch(x, y)
t = time.perf_counter()
for _ in range(steps):
    loss = model.train_on_batch(x, y)
dt = time.perf_counter() - t
print(json.dumps({"policy": policy, "images_per_s": batch * steps / dt, "loss": float(loss)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--jit", action="store_true", help="also time jit_compile=True")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    runs = [("float32", False), ("mixed_bfloat16", False)]
    if args.jit:
        runs.append(("float32", True))
    result: dict = {"model": "resnet20", "batch_size": args.batch_size, "steps": args.steps}
    for policy, jit in runs:
        argv = [policy, args.batch_size, args.steps, args.image_size, int(jit)]
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, *map(str, argv)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        record = json.loads(out.stdout.strip().splitlines()[-1])
        key = policy + ("_jit" if jit else "")
        result[f"{key}_images_per_s"] = round(record["images_per_s"], 1)
    result["bf16_over_fp32"] = round(
        result["mixed_bfloat16_images_per_s"] / result["float32_images_per_s"], 3
    )
    if args.jit:
        result["jit_over_fp32"] = round(
            result["float32_jit_images_per_s"] / result["float32_images_per_s"], 3
        )
    from keras_resnet.training import resolve_precision

    result["auto_picks"] = resolve_precision("auto")
    result["cpu_count"] = os.cpu_count()
    result["note"] = "shared 2-core machine: absolute figures are pessimistic; read the ratio"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
