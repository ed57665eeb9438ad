"""Real MNIST (t10k IDX files: train 0-7999, test 8000-9999): the ``fast`` recipe vs a
plain ``model.fit`` of the same model with SGD at a constant learning rate.

Both runs use the same data pipeline (``get_datasets("idx:PATH")``), model, epochs
and seed, one after the other in one process; after every epoch the test accuracy is
measured (outside the timed training) to find the time to reach 99.0%. Prints ONE
JSON line. The machine is shared: absolute times are pessimistic, compare side by side.

Usage: python benchmarks/mnist.py --data PATH [--model resnet20] [--epochs 12] [--batch-size 64]

``PATH`` is a folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
as downloaded from the MNIST page.
"""

from __future__ import annotations

import argparse
import json
import time

import keras

from keras_resnet import create_model
from keras_resnet.data import get_datasets
from keras_resnet.training import get_recipe, train


class TimeToAccuracy(keras.callbacks.Callback):
    """Test accuracy after each epoch and training seconds to reach ``target``."""

    def __init__(self, test, target=0.99):
        super().__init__()
        self.test, self.target, self.curve, self.time_to_target = test, target, [], None

    def on_train_begin(self, logs=None):
        self.train_seconds, self._t = 0.0, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self._t
        acc = float(self.model.evaluate(self.test, verbose=0, return_dict=True)["accuracy"])
        self.curve.append(round(acc, 4))
        if self.time_to_target is None and acc >= self.target:
            self.time_to_target = round(self.train_seconds, 1)
        self._t = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of the MNIST t10k IDX files")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--baseline-lr", type=float, default=0.05)
    args = parser.parse_args()
    data = get_datasets(f"idx:{args.data}", batch_size=args.batch_size, seed=0)
    result = {
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "train_examples": data.info.num_examples["train"],
        "test_examples": data.info.num_examples["test"],
    }

    cb = TimeToAccuracy(data.test)
    cfg = get_recipe("fast", epochs=args.epochs, batch_size=args.batch_size, tensorboard=False)
    run = train(args.model, data, cfg, callbacks=[cb], verbose=0)
    result["fast"] = {
        "test_accuracy": round(run.summary["test_accuracy"], 4),
        "seconds_to_99.0": cb.time_to_target,
        "train_seconds": round(cb.train_seconds, 1),
        "curve": cb.curve,
    }

    keras.utils.set_random_seed(0)
    model = create_model(args.model, input_shape=data.info.image_shape, classes=10)
    model.compile(
        optimizer=keras.optimizers.SGD(args.baseline_lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    cb = TimeToAccuracy(data.test)
    model.fit(
        data.train, validation_data=data.validation, epochs=args.epochs, callbacks=[cb], verbose=0
    )
    result["plain_sgd_constant_lr"] = {
        "learning_rate": args.baseline_lr,
        "test_accuracy": cb.curve[-1],
        "seconds_to_99.0": cb.time_to_target,
        "train_seconds": round(cb.train_seconds, 1),
        "curve": cb.curve,
    }
    result["note"] = "shared 2-core machine: times are pessimistic; compare side by side"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
