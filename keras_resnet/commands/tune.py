"""``python -m keras_resnet tune``: search architectures and recipes with KerasTuner.

Runs a KerasTuner search of :class:`keras_resnet.tuning.ResNetHyperModel` on a data
set, prints and saves the results table (``results.csv``, ``results.json``), then
retrains the best configuration on train + validation with
:func:`keras_resnet.training.train` (test accuracy, ``model.keras``, SavedModel) in
``OUTPUT/best_trial_<id>/`` and records it in ``OUTPUT/best.json``.

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
import contextlib
import csv
import functools
import glob
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_resnet.utils.checks import check_path

DEFAULT_BASELINE = "resnet20"
DEFAULT_RECIPE = "fast"
# Files and folders this command writes into --output, besides the retrains in
# best_trial_<id>/ (--overwrite removes only these, and only from a search's folder).
OUTPUTS = ("search", "tune.json", "results.csv", "results.json", "best.json")
_AFRESH = "use --overwrite (a new search) or another --output"
_FAILED = "keras_tuner.src.errors.FailedTrialError: "  # how KerasTuner's messages name it
# Keys of a `--search-space` range object, in the order of a search_space range tuple.
_RANGE_KEYS = ("min", "max", "step", "sampling")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` command to ``subparsers`` (see :mod:`keras_resnet.cli`)."""
    from keras_resnet.commands import run_flags

    p = subparsers.add_parser(
        "tune", help="hyperparameter search with KerasTuner", description=__doc__,
        parents=[run_flags(dataset="digits", recipe=DEFAULT_RECIPE, epochs=5, seed=0)],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="zoo variant the space centers on")
    p.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    p.add_argument("--max-trials", type=int, default=10, help="maximum number of trials")
    p.add_argument(
        "--search-space",
        help="JSON object (or @file.json): name -> value (fixed), list (choices), "
        '{"min": a, "max": b, "step": s, "sampling": "log"} (range) or null (dropped)',
    )
    p.add_argument(
        "--max-trial-macs",
        type=float,
        help="skip trials whose network needs more multiply-adds per image (e.g. 2e7)",
    )
    p.add_argument(
        "--max-trial-seconds",
        type=float,
        help="stop a trial's training after this many seconds (scored as it stands)",
    )
    p.add_argument("--no-retrain", action="store_true", help="stop after the search")
    p.set_defaults(func=run)


def parse_search_space(text: str | None) -> dict[str, Any]:
    """Parse ``--search-space`` JSON into a ``ResNetHyperModel`` ``search_space``.

    JSON lists are choices (a list of lists is a family of ``stage_depths``), objects
    with ``min`` / ``max`` (and optional ``step``, ``sampling``) are ranges, ``null``
    drops a hyperparameter, anything else fixes it. ``@path`` reads a file.

    Args:
        text: The flag's value, or ``None`` for no overrides.

    Returns:
        A dict for ``ResNetHyperModel(search_space=...)``.

    Example:
        >>> parse_search_space('{"block": "basic", "learning_rate": {"min": 0.01, "max": 0.1}}')
        {'block': 'basic', 'learning_rate': (0.01, 0.1)}
    """
    space: dict[str, Any] = {}
    for name, value in _space_json(text).items():
        if isinstance(value, dict):
            if not {"min", "max"} <= set(value) <= set(_RANGE_KEYS):
                raise ValueError(
                    f"`--search-space` range for {name!r} needs 'min' and 'max' (optional 'step', "
                    f"'sampling'). Received: {value!r}"
                )
            space[name] = tuple(value[k] for k in _RANGE_KEYS if value.get(k) is not None)
        elif isinstance(value, list):
            space[name] = [tuple(v) if isinstance(v, list) else v for v in value]
        else:
            space[name] = value
    return space


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


def format_results(rows: list[dict[str, Any]], names: list[str]) -> str:
    """The results table as text: trial, score, seconds, MACs, status, then ``names``.

    Args:
        rows: Rows of :func:`keras_resnet.tuning.trial_results`.
        names: Hyperparameter names to show as columns.

    Example:
        >>> print(format_results([{"trial": "0", "score": 0.5, "seconds": 1.0, "macs": 2516608,
        ...     "status": "COMPLETED", "hyperparameters": {"block": "basic"}}], ["block"]))
        trial  score   seconds  MACs   status     block
        0      0.5000  1.0      2.52M  COMPLETED  basic
    """
    header = ["trial", "score", "seconds", "MACs", "status", *names]
    table = [header]
    for row in rows:
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        macs = "-" if row.get("macs") is None else f"{row['macs'] / 1e6:.3g}M"
        values = [_short(row["hyperparameters"].get(n, "")) for n in names]
        table.append([str(row["trial"]), score, seconds, macs, str(row["status"]), *values])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    )


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _results_csv(rows: list[dict[str, Any]], names: list[str]) -> str:
    buf = io.StringIO()
    columns = ["trial", "status", "score", "best_step", "seconds", "macs", *names]
    writer = csv.DictWriter(buf, columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r["hyperparameters"], **r} for r in rows)
    return buf.getvalue()


def _prepare_output(out: str, definition: dict[str, Any], overwrite: bool, worker: bool) -> None:
    path = os.path.join(out, "tune.json")
    if overwrite:
        if worker:
            raise ValueError(
                "`--overwrite` deletes the shared search; pass it to the chief only. Received: "
                f"--overwrite with KERASTUNER_TUNER_ID={os.environ['KERASTUNER_TUNER_ID']}"
            )
        present = [n for n in OUTPUTS if os.path.lexists(os.path.join(out, n))]
        if os.path.isdir(out):  # the retrains of the best trials
            present += [n for n in os.listdir(out) if n.startswith("best_trial_")]
        if present and not _holds_a_search(out):
            # Only a search's tune.json shows that these names were written by `tune`.
            raise FileExistsError(
                f"{out} holds {', '.join(sorted(present))} but no search's tune.json: they are "
                "not a search's files, so --overwrite does not delete them. Use another "
                "--output, or remove them yourself."
            )
        from keras_resnet.utils.atomic import remove_path

        for name in present:
            remove_path(Path(out, name))
    elif os.path.exists(path):
        old = _read_object(path)
        # More trials extend a search; anything else is a different search.
        if {**old, "max_trials": None} != {**definition, "max_trials": None}:
            raise FileExistsError(
                f"{out} holds a different search ({path}); use --overwrite or another --output. "
                f"Received: {json.dumps(definition)}; found: {json.dumps(old)}"
            )
    os.makedirs(out, exist_ok=True)
    from keras_resnet.utils.atomic import write_json_atomic

    write_json_atomic(path, definition)


def _holds_a_search(out: str) -> bool:
    """Whether ``out`` holds a search's ``tune.json`` (a corrupt one beside KerasTuner's
    ``search/oracle.json`` counts: ``--overwrite`` is how such a search is replaced)."""
    try:
        return "baseline" in _read_object(os.path.join(out, "tune.json"))
    except OSError:
        return False
    except ValueError:
        return os.path.isfile(os.path.join(out, "search", "oracle.json"))


def _read_object(path: str) -> dict[str, Any]:
    """A JSON object a search wrote; a corrupt file raises ``ValueError`` naming it."""
    from keras_resnet.utils.atomic import read_json

    try:
        data = read_json(path)
    except ValueError as err:
        raise ValueError(f"{err} Or start afresh: {_AFRESH}.") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object; fix or remove it, or {_AFRESH}.")
    return data


def _check_search_files(out: str) -> None:
    """Read back what KerasTuner will reload, so that a corrupt file is named."""
    search = os.path.join(out, "search")
    paths = glob.glob(os.path.join(search, "*.json"))
    for path in sorted(paths + glob.glob(os.path.join(search, "trial_*", "trial.json"))):
        _read_object(path)


@contextlib.contextmanager
def _trial_tracebacks(show: bool) -> Iterator[None]:
    """KerasTuner prints each failed trial's traceback while its ``DEBUG`` flag is on (its
    default); ``--quiet`` turns it off for the search (the report has a line per trial)."""
    from keras_tuner.src import config

    old, config.DEBUG = config.DEBUG, show
    try:
        yield
    finally:
        config.DEBUG = old


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
    for flag in ("max_trials", "epochs", "max_trial_macs", "max_trial_seconds"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise ValueError(f"`--{flag.replace('_', '-')}` must be positive. Received: {value}")
    # `--output ''` is refused, not the default folder
    check_path("output", args.output, allow_none=True)
    search_space = parse_search_space(args.search_space)
    from keras_resnet.models.resnet.zoo import model_spec

    model_spec(args.baseline)  # unknown names fail before any data is read
    # KerasTuner's chief/worker mode is set by these variables (its documented interface).
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "chief")
    worker = "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id
    out = f"runs/tune-{args.dataset}" if args.output is None else args.output
    from keras_resnet.training.rundir import RunDir, check_writable

    check_writable(out, "output")
    # One search per folder, locked as `train` locks a run folder; workers run trials of
    # the chief's search, in its folder.
    folder = None if worker else RunDir(out, {}).lock()
    try:
        return _search(args, search_space, out, worker)
    finally:
        if folder is not None:
            folder.unlock()


def _search(args: argparse.Namespace, search_space: dict[str, Any], out: str, worker: bool) -> int:
    """Read the data, prepare ``out``, run (or resume) the search, then report."""
    from keras_resnet.data import DataConfig, get_datasets
    from keras_resnet.tuning import ResNetHyperModel, make_tuner

    definition = _definition(args)
    # One DataConfig from the flags (dataset, seed, data_dir), as `train` records it.
    data = functools.partial(get_datasets, DataConfig.from_args(args))
    info = data(batch_size=32, augment="none").info
    # The data callable applies the augmentation preset: search it (none vs the
    # data set's default) unless the user's space says otherwise.
    space = {"augment": ["none", "auto"], **search_space}
    hypermodel = ResNetHyperModel(
        tuple(info.image_shape),
        info.num_classes,
        baseline=args.baseline,
        recipe=args.recipe,
        search_space=space,
        max_macs=args.max_trial_macs,
        max_trial_seconds=args.max_trial_seconds,
    )
    _prepare_output(out, definition, args.overwrite, worker)
    if not worker:  # workers do not reload the oracle (the chief may be writing it)
        _check_search_files(out)
    try:
        tuner = make_tuner(
            args.tuner,
            hypermodel,
            max_trials=args.max_trials,
            max_epochs=args.epochs,
            directory=out,
            project_name="search",
            overwrite=False,  # _prepare_output already removed the old search on --overwrite
            seed=args.seed,
        )
    except (KeyError, TypeError, RuntimeError) as err:  # files KerasTuner wrote otherwise
        raise ValueError(
            f"{os.path.join(out, 'search')} cannot be reloaded ({type(err).__name__}: {err}); "
            f"{_AFRESH}."
        ) from None
    with _trial_tracebacks(not args.quiet):
        tuner.search(data, epochs=args.epochs, verbose=0 if args.quiet else 1)
    if worker:
        print(f"Worker {os.environ['KERASTUNER_TUNER_ID']} finished.")
        return 0

    return _report(args, tuner, hypermodel, definition, out)


def _definition(args: argparse.Namespace) -> dict[str, Any]:
    """What makes a search this search (``tune.json``): a rerun must match it."""
    keys = ("dataset", "baseline", "recipe", "tuner", "max_trials", "epochs")
    definition = {k: getattr(args, k) for k in keys}
    definition.update(search_space=_space_json(args.search_space), seed=args.seed)
    # Budgets change which trials run; recorded only when set, so searches written
    # before they existed still resume.
    for k in ("max_trial_macs", "max_trial_seconds"):
        if getattr(args, k) is not None:
            definition[k] = getattr(args, k)
    return definition


def _report(args, tuner, hypermodel, definition, out) -> int:
    """Print and write the results table, retrain the best trial, write ``best.json``."""
    from keras_resnet.tuning import trial_results

    rows = trial_results(tuner)
    searched = [n for n, p in hypermodel.space.items() if type(p).__name__ != "Fixed"]
    names = sorted({n for r in rows for n in r["hyperparameters"]})
    print(format_results(rows, searched))
    for row in rows:  # why: the last line of KerasTuner's message (its traceback)
        if row["status"] in ("SKIPPED", "FAILED", "INVALID"):
            message = (tuner.oracle.get_trial(row["trial"]).message or "").strip()
            why = (message or "no message").splitlines()[-1].removeprefix(_FAILED)
            print(f"Trial {row['trial']} {row['status'].lower()}: {why}")
    from keras_resnet.utils.atomic import write_json_atomic, write_text_atomic

    write_text_atomic(os.path.join(out, "results.csv"), _results_csv(rows, names))
    write_json_atomic(os.path.join(out, "results.json"), {"search": definition, "trials": rows})
    done = [r for r in rows if r["score"] is not None]
    if not done:
        print("error: no trial finished; nothing to retrain.")
        return 1
    best = done[0]
    print(f"Best trial {best['trial']}: val score {best['score']:.4f}")
    record: dict[str, Any] = dict(best)
    if not args.no_retrain:
        record["retrain"] = _retrain(args, tuner, hypermodel, best, out)
    write_json_atomic(os.path.join(out, "best.json"), record)
    print(f"Results: {os.path.join(out, 'results.csv')}, {os.path.join(out, 'best.json')}")
    return 0


def _retrain(args, tuner, hypermodel, best, out) -> dict[str, Any]:
    """Train the best configuration on train + validation; evaluate on test; export."""
    from keras_resnet.training import train

    trial = tuner.oracle.get_trial(best["trial"])
    hp = trial.hyperparameters
    arch = hypermodel.architecture(hp)
    config = hypermodel.train_config(hp, epochs=args.epochs).replace(
        validation_fraction=0.0, seed=args.seed
    )
    run_dir = os.path.join(out, f"best_trial_{best['trial']}")
    result = train(
        args.baseline,
        args.dataset,
        config,
        output_dir=run_dir,
        model_kwargs=arch,
        data_kwargs={"data_dir": args.data_dir} if args.data_dir else {},
        verbose=0 if args.quiet else "auto",
    )
    if not args.no_export:
        from keras_resnet.export import export_run

        export_run(run_dir, overwrite=True)
    return {"run_dir": run_dir, **result.summary}
