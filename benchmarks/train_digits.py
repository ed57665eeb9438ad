"""The default ``train`` command (resnet20, ``fast`` recipe, offline digits): test
accuracy and wall time; with ``--compare``, the other recipes squeezed into the same
epoch budget, side by side (how ``fast`` was chosen). Prints ONE JSON line.

The machine is shared: times are pessimistic, read them side by side.

Usage: python benchmarks/train_digits.py [--compare] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import time

from keras_resnet.training import get_recipe, train


def run(recipe: str, epochs: int, **overrides) -> dict:
    cfg = get_recipe(recipe, epochs=epochs, tensorboard=False, **overrides)
    start = time.perf_counter()
    result = train("resnet20", "digits", cfg, verbose=0)
    return {
        "test_accuracy": round(result.summary["test_accuracy"], 4),
        "train_seconds": result.summary["wall_time_s"],
        "total_seconds": round(time.perf_counter() - start, 1),
        "batch_size": cfg.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--compare", action="store_true", help="also the other recipes")
    args = parser.parse_args()
    epochs = args.epochs or get_recipe("fast").epochs
    result = {
        "model": "resnet20",
        "dataset": "digits",
        "epochs": epochs,
        "fast": run("fast", epochs),
    }
    if args.compare:
        result["he2015_cifar"] = run("he2015_cifar", epochs)
        result["cosine"] = run("cosine", epochs, warmup_epochs=1)
        result["adamw_cosine"] = run(
            "fast", epochs, optimizer="adamw", learning_rate=3e-3, weight_decay=0.05
        )
    result["note"] = "shared 2-core machine: times are pessimistic; compare side by side"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
