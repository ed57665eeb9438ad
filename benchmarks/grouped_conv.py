"""Training-step time of ResNeXt against ResNet, side by side, scaled by their MACs.

Pairs (same batch and input in each pair): ``resnext50_32x4d`` vs ``resnet50`` at
64x64 and ``resnext29_8x64d`` vs ``resnet56`` at 32x32. All models are built in ONE
process and timed in interleaved rounds (A, B, C, D, A, ...), so the load of the shared
machine hits them alike. Reports CPU-seconds per step (median over rounds), the MACs
per image, and for each pair ``ratio`` (step time ResNeXt / ResNet) and
``ratio_per_mac`` (the same divided by the MAC ratio: 1.0 = as fast per MAC as the
dense ResNet). ``--native`` also times the grouped models built with plain
``keras.layers.Conv2D(groups=...)`` (the formulation before ``GroupedConv2D``; slow on
TensorFlow CPU: one step takes tens of seconds). ``--layers`` adds the forward+backward
CPU ms of every distinct grouped layer of each ResNeXt in every formulation (with
``--native`` also TensorFlow's own) and which one ``GroupedConv2D`` picks; ``--rounds 0``
skips the model timing. ``--pairs`` narrows to ``imagenet`` or ``cifar``. Pin it to one
core (``taskset -c 1``) as docs/performance.md does. Prints ONE JSON line.

Usage: taskset -c 1 python benchmarks/grouped_conv.py [--batch-size 8] [--rounds 3]
           [--steps 2] [--native] [--layers] [--pairs imagenet,cifar]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from unittest import mock

import keras
import numpy as np

from keras_resnet import create_model
from keras_resnet.analysis import count_flops
from keras_resnet.layers import grouped_conv
from keras_resnet.models import ops

PAIRS = {
    "imagenet": ("resnext50_32x4d", "resnet50", 64),
    "cifar": ("resnext29_8x64d", "resnet56", 32),
}


def build(name: str, size: int, native: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D if native else grouped_conv.GroupedConv2D
    with mock.patch.object(ops, "GroupedConv2D", conv):
        model = create_model(name, input_shape=(size, size, 3), classes=10)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy"
    )
    return model


def cpu_seconds(fn, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def time_models(args) -> dict:
    rng = np.random.default_rng(0)
    models, data = {}, {}
    for grouped, dense, size in (PAIRS[p] for p in args.pairs):
        data[size] = (
            rng.normal(size=(args.batch_size, size, size, 3)).astype("float32"),
            rng.integers(0, 10, size=(args.batch_size,)).astype("int32"),
        )
        for name in (grouped, dense):
            models[name] = (build(name, size), size)
        if args.native:
            models[f"{grouped}_native"] = (build(grouped, size, native=True), size)
    for model, size in models.values():
        model.train_on_batch(*data[size])  # trace
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.rounds):
        for key, (model, size) in models.items():
            steps = 1 if key.endswith("_native") else args.steps
            times[key].append(
                cpu_seconds(lambda m=model, s=size: m.train_on_batch(*data[s]), steps)
            )
    step = {k: round(statistics.median(v), 4) for k, v in times.items()}
    result = {"cpu_s_per_step": step, "pairs": {}}
    for pair in args.pairs:
        grouped, dense, size = PAIRS[pair]
        macs = {n: count_flops(n, (size, size, 3)) for n in (grouped, dense)}
        ratio = step[grouped] / step[dense]
        result["pairs"][pair] = {
            "models": [grouped, dense],
            "input": size,
            "macs_per_image": macs,
            "ratio": round(ratio, 3),
            "ratio_per_mac": round(ratio * macs[dense] / macs[grouped], 3),
        }
        if args.native:
            result["pairs"][pair]["native_ratio"] = round(
                step[f"{grouped}_native"] / step[dense], 3
            )
    return result


def _profile_layer(x, kernel, groups: int, strides, padding: str, native: bool) -> dict:
    """Forward+backward CPU ms of one grouped conv in each formulation of ``forms``."""
    import tensorflow as tf

    fns = {"native": lambda a: keras.ops.conv(a, kernel, strides=strides, padding=padding)}
    for form in grouped_conv._candidate_formulations(groups):
        fns[form] = lambda a, form=form: grouped_conv._compute(
            form, a, kernel, groups, strides, padding
        )
    row = {}
    for form in [f for f in fns if f != "native" or native]:
        fn = fns[form]
        if (
            form == "depthwise"
            and x.shape[0] * x.shape[1] * x.shape[2] * kernel.shape[2] * kernel.shape[3] > 2**26
        ):
            continue  # its intermediate (input x outputs per group) would not fit in memory

        @tf.function
        def fwd_bwd(a, fn=fn):
            with tf.GradientTape() as tape:
                tape.watch(a)
                loss = tf.reduce_sum(tf.square(fn(a)))
            return tape.gradient(loss, [a, kernel])

        fwd_bwd(x)
        reps = 1 if form == "native" else 5
        row[form] = round(1000 * cpu_seconds(lambda f=fwd_bwd: f(x), reps), 2)
    return row


def profile_layers(batch: int, native: bool, pairs: list[str]) -> dict:
    """Forward+backward ms of every distinct grouped conv of each ResNeXt, per formulation.

    ``chosen`` is what :class:`GroupedConv2D` uses there; ``count`` how many layers of
    the model have that shape (``total_ms`` sums ``count x`` each formulation).
    """
    out = {}
    for grouped, _, size in (PAIRS[p] for p in pairs):
        model = build(grouped, size)
        shapes: dict[tuple, list] = {}
        for layer in model.layers:
            if isinstance(layer, grouped_conv.GroupedConv2D):
                key = (tuple(layer.input.shape[1:]), tuple(layer.kernel.shape), layer.strides)
                shapes.setdefault(key, [layer, 0])[1] += 1
        rows, total = [], {}
        for (shape, kernel_shape, strides), (layer, count) in shapes.items():
            x = keras.random.normal((batch, *shape), seed=0)
            kernel = keras.random.normal(kernel_shape, seed=1)
            row = _profile_layer(x, kernel, layer.groups, strides, layer.padding, native)
            chosen = grouped_conv.grouped_conv_formulation(layer, (batch, *shape))
            for form, ms in row.items():
                total[form] = round(total.get(form, 0.0) + count * ms, 1)
            total["chosen"] = round(total.get("chosen", 0.0) + count * row[chosen], 1)
            rows.append(
                {"input": list(shape), "kernel": list(kernel_shape), "strides": list(strides),
                 "groups": layer.groups, "count": count, "chosen": chosen, "fwd_bwd_ms": row}
            )  # fmt: skip
        out[grouped] = {"layers": rows, "total_ms": total}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps per model per round")
    parser.add_argument("--native", action="store_true")
    parser.add_argument("--layers", action="store_true")
    parser.add_argument(
        "--pairs", type=lambda s: s.split(","), default=list(PAIRS), help="imagenet,cifar"
    )
    args = parser.parse_args()
    result = {"backend": keras.backend.backend(), "batch_size": args.batch_size}
    if args.layers and keras.backend.backend() == "tensorflow":
        result["layers"] = profile_layers(args.batch_size, args.native, args.pairs)
    if args.rounds:
        result.update(time_models(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
