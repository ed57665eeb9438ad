"""``python -m keras_resnet tune``: search architectures and recipes with KerasTuner.

Parses the flags and calls :func:`keras_resnet.tuning.tune`: a KerasTuner search of
:class:`keras_resnet.tuning.ResNetHyperModel` on a data set, the results table
(``results.csv``, ``results.json``), then the best configuration retrained on train +
validation (test accuracy, ``model.keras``) in ``OUTPUT/best_trial_<id>/``, recorded
in ``OUTPUT/best.json``, and its serving SavedModel (unless ``--no-export``).

Re-running the same command resumes an interrupted search (KerasTuner reloads its
project in ``OUTPUT/search``); while a search runs, ``OUTPUT`` is locked as a ``train``
run folder is, and a second search there is refused. Distributed search uses
KerasTuner's chief/worker mode: run the same command in every process with
``KERASTUNER_TUNER_ID`` (``chief`` or ``tuner0``, ``tuner1``, ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set; the chief serves the
oracle (and holds the lock) and, when the workers are done, writes the results and
retrains.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from keras_resnet.commands import check_export_first, run_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` command to ``subparsers`` (see :mod:`keras_resnet.cli`)."""
    p = subparsers.add_parser(
        "tune", help="hyperparameter search with KerasTuner", description=__doc__,
        parents=[run_flags(dataset="digits", recipe="fast", epochs=5, seed=0)],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    # --baseline and --recipe default to tune()'s defaults (shown in --help without importing it)
    p.add_argument("--baseline", default="resnet20", help="zoo variant the space centers on")
    p.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    p.add_argument("--max-trials", type=int, default=10, help="maximum number of trials")
    p.add_argument(
        "--search-space",
        help="JSON object (or @file.json): name -> value (fixed), list (choices), "
        '{"min": a, "max": b, "step": s, "sampling": "log"} (range) or null (dropped)',
    )
    macs = "skip trials whose network needs more multiply-adds per image (e.g. 2e7)"
    p.add_argument("--max-trial-macs", type=float, help=macs)
    seconds = "stop a trial's training after this many seconds (scored as it stands)"
    p.add_argument("--max-trial-seconds", type=float, help=seconds)
    p.add_argument("--no-retrain", action="store_true", help="stop after the search")
    p.set_defaults(func=run)


def parse_search_space(text: str | None) -> dict[str, Any]:
    """Parse ``--search-space`` JSON into a ``ResNetHyperModel`` ``search_space``.

    ``@path`` reads a file; the JSON form is explained at
    :func:`keras_resnet.tuning.run.search_space_from_json`.

    Args:
        text: The flag's value, or ``None`` for no overrides.

    Returns:
        A dict for ``ResNetHyperModel(search_space=...)``.

    Example:
        >>> parse_search_space('{"block": "basic", "learning_rate": {"min": 0.01, "max": 0.1}}')
        {'block': 'basic', 'learning_rate': (0.01, 0.1)}
    """
    from keras_resnet.tuning.run import search_space_from_json

    return search_space_from_json(_space_json(text))


def _space_json(text: str | None) -> dict[str, Any]:
    """The ``--search-space`` JSON object as written (``@path`` reads a file; none: ``{}``)."""
    if not text:
        return {}
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"`--search-space` is not valid JSON ({err}). Received: {text!r}"
        ) from None
    if not isinstance(raw, dict):
        raise ValueError(f"`--search-space` must be a JSON object. Received: {text!r}")
    return raw


def run(args: argparse.Namespace) -> int:
    """Run ``tune``; returns the exit code.

    Args:
        args: Parsed ``tune`` arguments.

    Example:
        >>> import json, os, tempfile
        >>> from keras_resnet.cli import main
        >>> out = os.path.join(tempfile.mkdtemp(), "search")
        >>> main(["tune", "--dataset", "digits", "--baseline", "_tiny", "--max-trials", "2",
        ...       "--epochs", "1", "--output", out, "--no-retrain", "--quiet"])
        trial  score   seconds  MACs    status ...
        Best trial ...
        0
        >>> with open(os.path.join(out, "best.json")) as f:
        ...     best = json.load(f)
        >>> best["status"], sorted(best["hyperparameters"])[:2]
        ('COMPLETED', ['augment', 'batch_size'])
    """
    from keras_resnet.tuning import tune

    # on JAX / PyTorch the retrained run's export is refused before any trial
    check_export_first(not args.no_retrain and not args.no_export)
    # the flags that are tune()'s arguments of the same name
    same = ("baseline", "recipe", "tuner", "max_trials", "epochs", "seed", "overwrite", "data_dir")
    same += ("max_trial_macs", "max_trial_seconds", "quiet")
    record = tune(
        args.dataset,
        **{name: getattr(args, name) for name in same},
        search_space=_space_json(args.search_space),
        output_dir=args.output,
        retrain=not args.no_retrain,
    )
    if not record:
        return 1  # no trial finished: tune said so
    if "retrain" in record and not args.no_export:
        from keras_resnet.export import export_run

        export_run(record["retrain"]["run_dir"], overwrite=True)
    return 0
