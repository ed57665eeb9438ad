"""Where a TensorFlow training step's CPU time goes, by kind of op (tf.profiler trace).

Builds one model (batch 8, SGD momentum 0.9, 10 classes), warms up, times ``--steps``
``train_on_batch`` calls (process CPU-seconds), then traces ``--steps`` more with
``tf.profiler`` and sums the op events of the trace per category: convolution forward,
its input and kernel gradients, batch normalization (forward, backward, moving
statistics), the optimizer update, split/concat, other forward and other backward ops.
Op times are wall time inside the TensorFlow executor, so pin the process to one core
(``taskset -c 1``) for them to add up to CPU time. ``--plain`` builds the model with
Keras' own ``BatchNormalization`` and ``Conv2D(groups=...)`` (what the toolkit used
before ``FusedBatchNormalization`` and ``GroupedConv2D``). Prints ONE JSON line.

Usage: taskset -c 1 python benchmarks/profile_step.py [--model resnet50] [--size 64]
           [--steps 3] [--plain]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import tempfile
import time
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from keras_resnet import create_model
from keras_resnet.models import ops

BN_LAYER = re.compile(r"(^|_)bn\d*(_\d+)?$")


def build(name: str, size: int, plain: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    patches = []
    if plain:
        patches = [
            mock.patch.object(ops, "GroupedConv2D", keras.layers.Conv2D),
            mock.patch.object(ops, "FusedBatchNormalization", keras.layers.BatchNormalization),
        ]
    for patch in patches:
        patch.start()
    try:
        model = create_model(name, input_shape=(size, size, 3), classes=10)
    finally:
        for patch in patches:
            patch.stop()
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    return model


def category(op_name: str, op_type: str) -> str:
    """The kind of work of one traced op, from its node name and kernel type."""
    parts = op_name.split("/")
    backward = parts[0] == "gradient_tape"
    if parts[0] in ("sgd", "SGD") or parts[0].startswith("sgd"):
        return "optimizer_update"
    if "Conv2DBackpropInput" in op_type or "DepthwiseConv2dNativeBackpropInput" in op_type:
        return "conv_backward_input"
    if "Conv2DBackpropFilter" in op_type or "DepthwiseConv2dNativeBackpropFilter" in op_type:
        return "conv_backward_kernel"
    if "Conv2D" in op_type or "DepthwiseConv2dNative" in op_type:
        return "conv_forward"
    if any(BN_LAYER.search(p) for p in parts) or "FusedBatchNorm" in op_type:
        return "batch_norm_backward" if backward else "batch_norm_forward"
    if op_type.startswith(("Split", "Concat")):
        return "split_concat"
    if op_type in ("AssignVariableOp", "AssignAddVariableOp") or parts[0].startswith("Add"):
        return "variable_updates"
    return "other_backward" if backward else "other_forward"


def op_times(logdir: str) -> tuple[collections.Counter, collections.Counter]:
    """Milliseconds per category and per op type, summed over the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    by_category, by_type = collections.Counter(), collections.Counter()
    for line in host.lines:
        if line.name == "python":
            continue
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            if ":" not in name or "::" in name:
                continue  # executor bookkeeping, allocations
            op_name, op_type = name.rsplit(":", 1)
            ms = event.duration_ps / 1e9
            by_category[category(op_name, op_type)] += ms
            by_type[op_type] += ms
    return by_category, by_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()
    model = build(args.model, args.size, args.plain)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(args.batch_size,)).astype("int32")
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.process_time()
    for _ in range(args.steps):
        model.train_on_batch(x, y)
    cpu_s = (time.process_time() - start) / args.steps
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
        by_category, by_type = op_times(logdir)

    def per_step(counter, n=None):
        return {k: round(v / args.steps, 1) for k, v in counter.most_common(n)}

    result = {
        "model": args.model,
        "input": args.size,
        "batch_size": args.batch_size,
        "plain_keras_layers": args.plain,
        "cpu_s_per_step": round(cpu_s, 4),
        "traced_op_ms_per_step": round(sum(by_category.values()) / args.steps, 1),
        "ms_per_step": per_step(by_category),
        "top_op_types_ms_per_step": per_step(by_type, 12),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
