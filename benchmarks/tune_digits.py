"""Hyperparameter search on digits: best validation accuracy and search time.

Runs a KerasTuner search of ``ResNetHyperModel`` (default space around the
``resnet20`` baseline and the ``fast`` recipe, bounded by the baseline's MACs;
augmentation searched over none / the data set's preset) on the offline
scikit-learn digits data, and prints ONE JSON line: the number of trials, the best
trial's validation accuracy and hyperparameters, the search's wall time and the
summed training time of the trials.

    python benchmarks/tune_digits.py --tuner random --trials 6 --epochs 3

Timings depend on the machine and its load (the development machine is a 2-core VM
shared with other jobs); the JSON records the CPU count and load average.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time


def main() -> None:
    """Run the benchmark and print one JSON line.

    Example:
        >>> main()  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--baseline", default="resnet20")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras_tuner as kt

    from keras_resnet.data import get_datasets
    from keras_resnet.tuning import ResNetHyperModel, make_tuner, trial_results

    data = functools.partial(get_datasets, "digits", seed=args.seed)
    info = data(batch_size=32, augment="none").info
    hypermodel = ResNetHyperModel(
        tuple(info.image_shape),
        info.num_classes,
        baseline=args.baseline,
        recipe=args.recipe,
        search_space={"augment": ["none", "auto"]},
    )
    with tempfile.TemporaryDirectory() as tmp:
        tuner = make_tuner(
            args.tuner,
            hypermodel,
            max_trials=args.trials,
            max_epochs=args.epochs,
            directory=tmp,
            seed=args.seed,
        )
        start = time.perf_counter()
        tuner.search(data, epochs=args.epochs, verbose=0)
        wall = time.perf_counter() - start
        rows = trial_results(tuner)
    done = [r for r in rows if r["score"] is not None]
    best = done[0]
    searched = [n for n, p in hypermodel.space.items() if type(p).__name__ != "Fixed"]
    print(
        json.dumps(
            {
                "benchmark": "tune_digits",
                "tuner": args.tuner,
                "baseline": args.baseline,
                "recipe": args.recipe,
                "epochs_per_trial": args.epochs,
                "trials": len(rows),
                "completed": len(done),
                "best_val_accuracy": round(best["score"], 4),
                "best_trial": best["trial"],
                "best_trial_seconds": round(best["seconds"], 1),
                "best_hyperparameters": {
                    k: v for k, v in best["hyperparameters"].items() if k in searched
                },
                "median_val_accuracy": round(sorted(r["score"] for r in done)[len(done) // 2], 4),
                "search_wall_s": round(wall, 1),
                "sum_trial_fit_s": round(sum(r["seconds"] or 0 for r in done), 1),
                "cpus": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "keras_tuner": kt.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
