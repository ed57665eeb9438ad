"""The default ``digits`` recipe (EMA on) cut to N epochs: is the kept model at least as
good as the raw weights? For each ``--epochs`` value it trains resnet20
on digits with ``get_recipe("digits", epochs=N, seed=S)`` (what ``python -m
keras_resnet train --epochs N --seed S`` runs), records the raw weights' test accuracy
after the last epoch, and reports which weights the run kept and their test accuracy.
Prints ONE JSON line.

Usage: python benchmarks/ema_short_runs.py [--epochs 1 2 3 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

import keras

from keras_resnet.training import get_recipe, train


class RawTestAccuracy(keras.callbacks.Callback):
    def __init__(self, data, epochs):
        super().__init__()
        self.data, self.epochs, self.accuracy = data, epochs, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:  # before ModelEMA's end-of-run check
            scores = self.model.evaluate(self.data, verbose=0, return_dict=True)
            self.accuracy = float(scores["accuracy"])


def run(epochs: int, seed: int) -> dict:
    from keras_resnet.data import get_datasets

    cfg = get_recipe("digits", epochs=epochs, seed=seed, tensorboard=False)
    keras.utils.set_random_seed(seed)
    datasets = get_datasets(cfg.data_config("digits"))  # the pipeline train() would build
    raw = RawTestAccuracy(datasets.test, epochs)
    result = train("resnet20", datasets, cfg, verbose=0, callbacks=[raw])
    check = result.summary["weights_check"]
    return {
        "epochs": epochs,
        "seed": seed,
        "weights": result.summary["weights"],
        "test_accuracy_kept": round(result.summary["test_accuracy"], 4),
        "test_accuracy_raw": round(raw.accuracy, 4),
        "check_split": check["split"],
        "check_accuracy_raw": round(check["raw"]["accuracy"], 4),
        "check_accuracy_ema": round(check["ema"]["accuracy"], 4),
        "check_loss_raw": round(check["raw"]["loss"], 4),
        "check_loss_ema": round(check["ema"]["loss"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 3, 10])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(e < 1 for e in args.epochs):
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    runs = [run(e, args.seed) for e in args.epochs]
    print(
        json.dumps(
            {
                "model": "resnet20",
                "dataset": "digits",
                "recipe": "digits",
                "runs": runs,
                "kept_never_worse_than_raw": all(
                    r["test_accuracy_kept"] >= r["test_accuracy_raw"] for r in runs
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
