"""Accuracy of TFLite exports (float32, dynamic-range, float16) against the Keras model.

Trains a small ResNet on real digits (sklearn's 8x8 digits with the data package's
fixed split, or MNIST-format IDX files through ``idx:PATH``: for a folder holding only
the MNIST test set, examples 0-7999 train, 8000-9999 test; both loaded by
:mod:`keras_resnet.data`), exports it with
:func:`keras_resnet.export.export_tflite` in each mode and measures test accuracy,
agreement with the Keras predictions, the largest probability difference and the file
size, all in one run. Prints ONE JSON line.

    python benchmarks/tflite_accuracy.py --dataset digits --model resnet20 --epochs 30
    python benchmarks/tflite_accuracy.py --dataset idx:~/data/mnist --model resnet20 --epochs 4

(``~/data/mnist`` holds ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
as downloaded from the MNIST page.)

``train_seconds`` is informational only (the machine is shared and noisy); the
accuracies are deterministic for a given seed up to floating-point reduction order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_arrays(dataset: str) -> tuple[tuple, tuple, tuple[float, ...], tuple[float, ...]]:
    """uint8 ``(train, test)`` arrays and the training-split mean/std, from the data package.

    ``digits``: its fixed stratified split (1437 train, 360 test); ``idx:PATH`` with
    the MNIST test set alone: examples 0-7999 train, 8000-9999 test. Mean and std are
    what ``get_datasets``
    computes on the training split (and a run records in ``data_info.json``).
    """
    from keras_resnet.data import get_datasets, sources

    if dataset == "digits":
        source = sources.load_digits_source()
    elif dataset.startswith("idx:"):
        dataset = "idx:" + os.path.expanduser(dataset[4:])
        source = sources.load_idx_source(dataset[4:], name=dataset)
    else:
        raise SystemExit(f"--dataset is 'digits' or 'idx:PATH'. Received: {dataset!r}")
    info = get_datasets(dataset, batch_size=1, validation_fraction=0.0).info
    return source.train.arrays, source.test.arrays, info.mean, info.std


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="'digits' or 'idx:PATH'")
    parser.add_argument("--model", default="resnet20", help="zoo name (resnet20, _tiny, ...)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from keras_resnet import create_model
    from keras_resnet.export import export_tflite, normalize_images
    from keras_resnet.export.serving import run_tflite

    (x_train, y_train), (x_test, y_test), mean, std = load_arrays(args.dataset)
    keras.utils.set_random_seed(args.seed)
    model = create_model(args.model, input_shape=x_train.shape[1:], classes=10)
    steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.1, steps), momentum=0.9, nesterov=True
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(
        normalize_images(x_train, mean, std),
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
    )
    train_s = time.perf_counter() - start
    x_eval = normalize_images(x_test, mean, std)
    keras_probs = model.predict(x_eval, batch_size=256, verbose=0)
    keras_pred = keras_probs.argmax(-1)
    result = {
        "benchmark": "tflite_accuracy",
        "dataset": args.dataset,
        "model": args.model,
        "params": model.count_params(),
        "epochs": args.epochs,
        "train_examples": len(x_train),
        "test_examples": len(x_test),
        "keras_accuracy": round(float(np.mean(keras_pred == y_test)), 4),
        "train_seconds": round(train_s, 1),
        "tflite": {},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "command": "python benchmarks/tflite_accuracy.py " + " ".join(sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for mode in (None, "dynamic", "float16"):
            path = export_tflite(model, Path(tmp) / f"{mode or 'float32'}.tflite", quantize=mode)
            probs = run_tflite(path, x_eval)
            pred = probs.argmax(-1)
            result["tflite"][mode or "float32"] = {
                "accuracy": round(float(np.mean(pred == y_test)), 4),
                "agreement_with_keras": round(float(np.mean(pred == keras_pred)), 4),
                "max_abs_prob_diff": float(f"{np.max(np.abs(probs - keras_probs)):.3g}"),
                "size_bytes": os.path.getsize(path),
            }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
