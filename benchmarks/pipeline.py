"""Input pipeline throughput vs. what a resnet20 training step consumes, in one run.

Measures, at the same batch size and on the same machine:
  * ``pipeline``: images/s of the keras_resnet training pipeline alone (shuffle,
    cifar preset = pad 4 + random crop + flip, normalization, batching, prefetch);
  * ``model``: images/s a resnet20 training step consumes (``model.fit`` on batches
    already in memory, so the input pipeline costs nothing there);
  * ``naive``: a per-example Python-generator pipeline with the same augmentation
    (NumPy pad + random crop + flip + normalize, ``Dataset.from_generator``).

The machine may be shared and noisy: the three are measured side by side in one run,
interleaved over ``--rounds`` rounds, and the medians are reported.
Prints one JSON line.

Usage:
    python benchmarks/pipeline.py --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def images_per_second(it, batches: int, batch_size: int) -> tuple[float, float]:
    """Wall-clock images/s and process CPU seconds per 1,000 images."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        x, _ = next(it)
    _ = x.numpy()  # make sure the last batch is materialized
    n = batches * batch_size
    return n / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / n


def naive_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, mean, std, seed: int):
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            for i in rng.permutation(len(x)):
                img = np.pad(x[i], ((4, 4), (4, 4), (0, 0)))
                dy, dx = rng.integers(0, 9, 2)
                img = img[dy : dy + x.shape[1], dx : dx + x.shape[2]]
                if rng.random() < 0.5:
                    img = img[:, ::-1]
                yield (img.astype(np.float32) / 255.0 - mean) / std, np.int32(y[i])

    spec = (
        tf.TensorSpec(x.shape[1:], tf.float32),
        tf.TensorSpec((), tf.int32),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--examples", type=int, default=20_000, help="CIFAR-shaped examples")
    parser.add_argument("--pipeline-batches", type=int, default=200)
    parser.add_argument("--naive-batches", type=int, default=20)
    parser.add_argument("--model-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    import keras_resnet
    from keras_resnet.data import from_arrays

    load_before = os.getloadavg()[0]  # other processes' load: the machine may be shared
    rng = np.random.default_rng(args.seed)
    # CIFAR-10-shaped data (32x32x3 uint8, 10 classes); offline, so random pixels:
    # throughput does not depend on pixel values
    x = rng.integers(0, 256, (args.examples, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.examples).astype(np.int32)
    b = args.batch_size

    ds = from_arrays(x, y, batch_size=b, augment="cifar", seed=args.seed, validation_fraction=0.0)
    pipe_it = iter(ds.train.repeat())
    naive_it = iter(naive_pipeline(x, y, b, ds.info.mean, ds.info.std, args.seed))

    model = keras_resnet.create_model("resnet20", input_shape=(32, 32, 3), classes=10)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
    )
    xb, yb = next(iter(ds.train))
    batch = tf.data.Dataset.from_tensors((xb, yb)).cache()
    model.fit(batch.repeat(3), epochs=1, verbose=0, shuffle=False)  # compile / warm up
    images_per_second(pipe_it, 5, b)
    images_per_second(naive_it, 2, b)

    # interleave the three measurements over several rounds and keep the medians, so a
    # burst of load from other processes hits all three alike
    # (CPU seconds per image are reported too: they depend far less on other load)
    rounds = {"pipeline": [], "naive": [], "model": []}
    for _ in range(args.rounds):
        rounds["pipeline"].append(images_per_second(pipe_it, args.pipeline_batches, b))
        rounds["naive"].append(images_per_second(naive_it, args.naive_batches, b))
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(batch.repeat(args.model_steps), epochs=1, verbose=0, shuffle=False)
        n = args.model_steps * b
        rounds["model"].append(
            (n / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / n)
        )
    med = {k: np.median(np.array(v), axis=0) for k, v in rounds.items()}
    pipe, naive, model_ips = (float(med[k][0]) for k in ("pipeline", "naive", "model"))
    cpu = {k: float(med[k][1]) for k in med}

    gpus = tf.config.list_physical_devices("GPU")
    result = {
        "benchmark": "pipeline",
        "batch_size": b,
        "pipeline_images_per_s": round(pipe, 1),
        "model_images_per_s": round(model_ips, 1),
        "pipeline_over_model": round(pipe / model_ips, 2),
        "naive_images_per_s": round(naive, 1),
        "rounds": args.rounds,
        "cpu_s_per_1k_images": {k: round(v, 3) for k, v in cpu.items()},
        "naive_cpu_over_pipeline_cpu": round(cpu["naive"] / cpu["pipeline"], 2),
        "pipeline_over_naive": round(pipe / naive, 2),
        "augment": "cifar (pad 4 + random crop + flip)",
        "data": f"{args.examples} random 32x32x3 uint8 (CIFAR-10 shaped)",
        "model": "resnet20",
        "device": gpus[0].name if gpus else "cpu",
        "cpu_count": os.cpu_count(),
        "load_avg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "note": "shared, noisy machine; ratios measured side by side in one run",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
