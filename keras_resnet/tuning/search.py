"""Running a search: one tuner factory for the three KerasTuner tuners, the results rows."""

from __future__ import annotations

import os
import re
from typing import Any

import keras_tuner as kt

from keras_resnet.tuning.trial import SKIPPED
from keras_resnet.utils.checks import check_choice, check_int

TUNERS: tuple[str, ...] = ("random", "hyperband", "bayesian")


def hyperparameter_names(hypermodel: kt.HyperModel) -> list[str]:
    """Names of the hyperparameters a hypermodel declares, in declaration order.

    Example:
        >>> from keras_resnet.tuning import ResNetHyperModel
        >>> hyperparameter_names(ResNetHyperModel((32, 32, 3), 10))[:2]
        ['block', 'preact']
    """
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return [p.name for p in hp.space]


def _status(trial: kt.engine.trial.Trial) -> str:
    status = str(trial.status)
    if status == "FAILED" and SKIPPED in (trial.message or ""):
        return "SKIPPED"
    if _metric(trial, "time_budget_stopped"):
        return "STOPPED"
    return status


def _metric(trial: kt.engine.trial.Trial, name: str) -> float | None:
    metrics = trial.metrics
    return metrics.get_last_value(name) if metrics.exists(name) else None


def trial_results(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """One row per trial: id, status, score, best step, seconds, MACs, hyperparameters.

    ``status`` is KerasTuner's (``COMPLETED``, ``FAILED``, ``INVALID``, ``RUNNING``),
    or ``SKIPPED`` (over ``max_macs``, not trained) or ``STOPPED`` (cut short by
    ``max_trial_seconds``, scored on what it learned). Rows are sorted best first.

    Example:
        >>> import tempfile, numpy as np
        >>> from keras_resnet.tuning import ResNetHyperModel
        >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny", max_macs=1,
        ...                       search_space={"augment": None})
        >>> tuner = make_tuner("random", hm, max_trials=1, max_epochs=1,
        ...                    directory=tempfile.mkdtemp())
        >>> tuner.search(np.zeros((4, 8, 8, 1)), np.zeros(4), epochs=1, verbose=0)
        >>> [(r["status"], r["macs"] > 1, r["score"]) for r in trial_results(tuner)]
        [('SKIPPED', True, None)]
    """
    rows = []
    for trial in tuner.oracle.trials.values():
        macs = _metric(trial, "macs")
        found = re.search(r"macs=(\d+)", trial.message or "")
        rows.append(
            {
                "trial": trial.trial_id,
                "status": _status(trial),
                "score": trial.score,
                "best_step": trial.best_step,
                "seconds": _metric(trial, "fit_seconds"),
                "macs": int(macs) if macs else (int(found.group(1)) if found else None),
                "hyperparameters": dict(trial.hyperparameters.values),
            }
        )
    sign = -1 if getattr(tuner.oracle.objective, "direction", "max") == "max" else 1
    return sorted(rows, key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0), r["trial"]))


def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    *,
    max_trials: int,
    max_epochs: int,
    directory: str | os.PathLike,
    project_name: str = "search",
    objective: str | kt.Objective = "val_accuracy",
    overwrite: bool = False,
    seed: int | None = None,
    distribution_strategy: Any = None,
    executions_per_trial: int = 1,
) -> kt.Tuner:
    """A KerasTuner tuner of ``kind`` (``"random"``, ``"hyperband"``, ``"bayesian"``).

    ``max_trials`` caps every kind (Hyperband sizes its brackets from ``max_epochs``,
    the longest trial); failed or skipped trials never end the search early. With
    ``overwrite=False`` an existing project in ``directory/project_name`` is
    reloaded, so an interrupted search continues (a trial that was running reruns).
    The other arguments are KerasTuner's own.

    Example:
        >>> import tempfile
        >>> from keras_resnet.tuning import ResNetHyperModel
        >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny")
        >>> tuner = make_tuner("bayesian", hm, max_trials=4, max_epochs=2,
        ...                    directory=tempfile.mkdtemp())
        >>> type(tuner).__name__, tuner.oracle.max_trials
        ('BayesianOptimization', 4)
    """
    check_choice("kind", kind, TUNERS)
    check_int("max_trials", max_trials, min_value=1)
    check_int("max_epochs", max_epochs, min_value=1)
    check_int("executions_per_trial", executions_per_trial, min_value=1)
    common: dict[str, Any] = {
        "objective": objective,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        "seed": seed,
        "distribution_strategy": distribution_strategy,
        "executions_per_trial": executions_per_trial,
        "max_consecutive_failed_trials": max_trials + 1,
    }
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(
            hypermodel, max_trials=max_trials, num_initial_points=min(3, max_trials), **common
        )
    tuner = kt.Hyperband(
        hypermodel, max_epochs=max_epochs, factor=3, hyperband_iterations=1, **common
    )
    tuner.oracle.max_trials = max_trials  # Hyperband has no trial budget of its own
    return tuner
