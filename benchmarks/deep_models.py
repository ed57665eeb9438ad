"""Build, train one step, save and load the deepest networks; print one JSON line.

Measures what ``keras_resnet.models.depth`` is about: Keras walks a functional graph
recursively, so the deepest variants need a raised recursion limit, and their build
time grows with depth. ``--probe-blocks`` builds CIFAR basic nets of N blocks in all
(``stage_depths=(N - 2, 1, 1)``), also beyond the accepted maximum (the check is lifted
for the probe), to show how deep Keras can go and how long it takes.

    python benchmarks/deep_models.py --models resnet1202 preact_resnet1001
    python benchmarks/deep_models.py --models --probe-blocks 1000 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import keras
import numpy as np

import keras_resnet
from keras_resnet.models.depth import MAX_BLOCKS
from keras_resnet.models.resnet import config as config_module


def lifecycle(build, size: int) -> dict:
    """Times of build, one training step, save and load (same process)."""
    row: dict = {}
    t = time.perf_counter()
    try:
        model = build()
        row["build_s"] = round(time.perf_counter() - t, 1)
        row["layers"] = len(model.layers)
        x = np.random.default_rng(0).random((2, size, size, 3), dtype="float32")
        model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        t = time.perf_counter()
        row["loss"] = float(model.train_on_batch(x, np.array([0, 1])))
        row["train_step_s"] = round(time.perf_counter() - t, 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.keras")
            t = time.perf_counter()
            model.save(path)
            row["save_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            loaded = keras.saving.load_model(path, safe_mode=True)
            row["load_s"] = round(time.perf_counter() - t, 1)
            row["same_output"] = bool(
                np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
            )
    except (RecursionError, MemoryError) as err:
        row["error"] = f"{type(err).__name__}: {str(err)[:120]}"
    row["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    keras.backend.clear_session()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["resnet1202", "preact_resnet1001"])
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--probe-blocks", type=int, nargs="*", default=[])
    args = parser.parse_args(argv)
    size = args.input_size
    result: dict = {"recursion_limit": sys.getrecursionlimit(), "max_blocks": MAX_BLOCKS}
    for name in args.models:
        result[name] = lifecycle(
            lambda n=name: keras_resnet.create_model(n, input_shape=(size, size, 3), classes=2),
            size,
        )
    for blocks in args.probe_blocks:
        config_module.MAX_BLOCKS = max(MAX_BLOCKS, blocks)  # lift the check for the probe
        spec = dict(keras_resnet.model_spec("resnet20"), stage_depths=(blocks - 2, 1, 1))
        result[f"probe_{blocks}_blocks"] = lifecycle(
            lambda s=spec: keras_resnet.ResNet(**s, input_shape=(size, size, 3), classes=2), size
        )
    result["backend"] = keras.backend.backend()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
