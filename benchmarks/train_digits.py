"""The default ``train`` command (resnet20, ``digits`` recipe, offline digits): test
accuracy and wall time. ``--seeds N`` repeats it for N seeds (from ``--first-seed``,
default 0) and reports min / median / max (the 360-image test split moves by 0.28 %
per error, and runs are not bit-reproducible, so one seed says little). ``--compare``
adds the other recipes squeezed into the same epoch budget, side by side (how ``fast``
was chosen). Prints ONE JSON line.

The machine is shared: times are pessimistic, read them side by side.

``--fresh`` runs each seed as its own ``python -m keras_resnet train --seed S`` process
(the default command, as a user runs it; ``--jobs`` of them at a time) and reads
its ``summary.json``.

Usage: python benchmarks/train_digits.py [--seeds 5] [--first-seed 0] [--recipe digits]
       [--compare] [--epochs N] [--fresh [--jobs 2]]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from keras_resnet.training import default_recipe, get_recipe, train


def run(recipe: str, epochs: int | None = None, seed: int = 0, **overrides) -> dict:
    if epochs is not None:
        overrides["epochs"] = epochs
    cfg = get_recipe(recipe, tensorboard=False, seed=seed, **overrides)
    start = time.perf_counter()
    result = train("resnet20", "digits", cfg, verbose=0)
    last = result.history[-1] if result.history else {}
    return {
        "seed": seed,
        "test_accuracy": round(result.summary["test_accuracy"], 4),
        # last epoch, raw (not EMA) weights: what the run monitors, never the test split
        # (None when the recipe holds out no validation split, as ``digits`` does)
        "val_accuracy": round(last["val_accuracy"], 4) if "val_accuracy" in last else None,
        "train_seconds": result.summary["wall_time_s"],
        "total_seconds": round(time.perf_counter() - start, 1),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
    }


def run_fresh(seed: int, epochs: int | None, folder: str) -> dict:
    """``python -m keras_resnet train --seed SEED`` in a new process (CPU only)."""
    out = os.path.join(folder, f"seed{seed}")
    argv = [sys.executable, "-m", "keras_resnet", "train", "--seed", str(seed)]
    argv += ["--output", out, "--no-export", "--quiet"]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"seed {seed} failed: {proc.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return {
        "seed": seed,
        "test_accuracy": round(summary["test_accuracy"], 4),
        "weights": summary.get("weights"),
        "val_accuracy": None,
        "train_seconds": summary["wall_time_s"],
        "total_seconds": round(time.perf_counter() - start, 1),
        "epochs": summary["epochs"],
        "command": " ".join(["python"] + argv[1:]),
    }


def spread(values: list[float | None]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "min": min(values),
        "median": round(statistics.median(values), 4),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=default_recipe("digits"), help="default: digits")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST..FIRST+N-1")
    parser.add_argument("--compare", action="store_true", help="also the other recipes")
    parser.add_argument("--fresh", action="store_true", help="one CLI process per seed")
    parser.add_argument("--jobs", type=int, default=1, help="with --fresh: processes at once")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="TrainConfig override, e.g. --set use_ema=false --set augment='\"none\"'",
    )
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes FIELD=JSON. Received: {item!r}")
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value  # a bare string such as augment=none
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1. Received: {args.seeds}")
    try:  # bad --set fields or values: a usage error, before any training
        epochs = {} if args.epochs is None else {"epochs": args.epochs}
        get_recipe(args.recipe, **dict(overrides, **epochs))
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.fresh:
        if overrides or args.recipe != default_recipe("digits"):
            parser.error("--fresh runs the default command: no --set, --recipe")
        with tempfile.TemporaryDirectory() as folder:
            with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
                runs = list(pool.map(lambda s: run_fresh(s, args.epochs, folder), seeds))
    else:
        runs = [run(args.recipe, args.epochs, s, **overrides) for s in seeds]
    result = {
        "model": "resnet20",
        "dataset": "digits",
        "recipe": args.recipe,
        "epochs": runs[0]["epochs"],
        "overrides": overrides,
        "image_size": get_recipe(args.recipe, **overrides).image_size or (8, 8),
        "runs": runs,
        "test_accuracy": spread([r["test_accuracy"] for r in runs]),
        "val_accuracy": spread([r["val_accuracy"] for r in runs]),
        "train_seconds": spread([r["train_seconds"] for r in runs]),
        "total_seconds": spread([r["total_seconds"] for r in runs]),
        "all_seeds_reach_99": all(r["test_accuracy"] >= 0.99 for r in runs),
    }
    if args.compare:
        epochs = args.epochs or get_recipe("fast").epochs
        result["compare_epochs"] = epochs
        result["fast"] = run("fast", epochs)
        result["he2015_cifar"] = run("he2015_cifar", epochs)
        result["cosine"] = run("cosine", epochs, warmup_epochs=1)
        result["adamw_cosine"] = run(
            "fast", epochs, optimizer="adamw", learning_rate=3e-3, weight_decay=0.05
        )
    result["note"] = "shared 2-core machine: times are pessimistic; compare side by side"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
