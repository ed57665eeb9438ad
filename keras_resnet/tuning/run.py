"""``tune()``: a KerasTuner search around a zoo variant, its report and the best retrain.

The library call behind ``python -m keras_resnet tune``: it checks the arguments,
locks the search folder, resumes or starts the search (``search/``, written by
KerasTuner), prints and writes the results (``results.csv``, ``results.json``),
retrains the best trial with :func:`keras_resnet.training.train` in
``best_trial_<id>/`` and writes ``best.json`` last. ``tune.json`` records what makes a
search this search; a rerun must match it (more trials extend it).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import glob
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_resnet.models.registry import get_record
from keras_resnet.training import train
from keras_resnet.training.rundir import RunDir, check_writable
from keras_resnet.tuning.resnet import ResNetHyperModel
from keras_resnet.tuning.search import make_tuner, trial_results
from keras_resnet.utils.atomic import read_json, remove_path, write_json_atomic, write_text_atomic
from keras_resnet.utils.checks import check_path

# What a search writes into its folder (the retrains are best_trial_<id>/).
OUTPUTS = ("search", "tune.json", "results.csv", "results.json", "best.json")
_AFRESH = "use --overwrite (a new search) or another --output"
_FAILED = "keras_tuner.src.errors.FailedTrialError: "  # how KerasTuner's messages name it
_RANGE_KEYS = ("min", "max", "step", "sampling")


def tune(
    dataset: str = "digits",
    *,
    baseline: str = "resnet20",
    recipe: str = "fast",
    tuner: str = "random",
    max_trials: int = 10,
    epochs: int = 5,
    search_space: dict[str, Any] | None = None,
    seed: int = 0,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    data_dir: str | None = None,
    max_trial_macs: float | None = None,
    max_trial_seconds: float | None = None,
    retrain: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """Search architectures and recipes around ``baseline`` with KerasTuner; retrain the best.

    Prints and saves the results (``results.csv``, ``results.json``), retrains the
    best trial on train + validation in ``output_dir/best_trial_<id>/`` and records it
    in ``best.json``. A second call resumes an interrupted search. In KerasTuner's
    chief/worker mode (``KERASTUNER_*`` variables) workers run the chief's trials.

    Args:
        dataset: A data set name for :func:`keras_resnet.data.get_datasets`.
        baseline: The zoo variant the space centers on.
        recipe: The training recipe of every trial.
        tuner: ``"random"``, ``"hyperband"`` or ``"bayesian"``.
        max_trials: Maximum number of trials.
        epochs: Epochs per trial (Hyperband: maximum).
        search_space: Overrides in JSON form: name -> value (fixed), list (choices),
            ``{"min": a, "max": b, "step": s, "sampling": "log"}`` (range) or
            ``None`` (dropped); see :func:`search_space_from_json`.
        seed: Seed of the weights, data and search.
        output_dir: The search folder (default ``runs/tune-DATASET``).
        overwrite: Delete a previous search in ``output_dir`` first.
        data_dir: Data folder for TFDS / files.
        max_trial_macs: Skip trials whose network needs more multiply-adds per image.
        max_trial_seconds: Stop a trial's training after this many seconds.
        retrain: Retrain the best trial after the search.
        quiet: No per-trial output or tracebacks.

    Returns:
        ``best.json``'s record (with ``"retrain"``: the retrained run's folder and
        summary); ``{}`` when no trial finished; ``{"worker": id}`` on a worker.

    Example:
        >>> import os, tempfile
        >>> out = os.path.join(tempfile.mkdtemp(), "search")
        >>> best = tune(baseline="_tiny", max_trials=2, epochs=1, output_dir=out,
        ...             retrain=False, quiet=True)
        trial  score   seconds  MACs    status ...
        Best trial ...
        >>> best["status"], sorted(best["hyperparameters"])[:2]
        ('COMPLETED', ['augment', 'batch_size'])
    """
    definition = {
        "dataset": dataset, "baseline": baseline, "recipe": recipe, "tuner": tuner,
        "max_trials": max_trials, "epochs": epochs, "search_space": dict(search_space or {}),
        "seed": seed, "max_trial_macs": max_trial_macs, "max_trial_seconds": max_trial_seconds,
    }  # fmt: skip
    space = _check(definition, output_dir)
    # KerasTuner's chief/worker mode is set by these variables (its documented interface).
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "chief")
    worker = "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id
    out = f"runs/tune-{dataset}" if output_dir is None else os.fspath(output_dir)
    check_writable(out, "output")
    # One search per folder, locked as `train` locks a run folder; workers run trials of
    # the chief's search, in its folder.
    folder = None if worker else RunDir(out, {}).lock()
    try:
        return _search(_Search(definition, space, out, worker, overwrite, data_dir, retrain, quiet))
    finally:
        if folder is not None:
            folder.unlock()


def _check(definition: dict[str, Any], output_dir: Any) -> dict[str, Any]:
    """Check a search's arguments before any data is read; its ``search_space``.

    Budgets change which trials run; they stay in ``definition`` (``tune.json``) only
    when set, so searches written before they existed still resume.
    """
    for key in ("max_trial_macs", "max_trial_seconds"):
        if definition[key] is None:
            del definition[key]
    for key in ("max_trials", "epochs", "max_trial_macs", "max_trial_seconds"):
        value = definition.get(key)
        if value is not None and value <= 0:
            raise ValueError(f"`--{key.replace('_', '-')}` must be positive. Received: {value}")
    check_path("output", output_dir, allow_none=True)  # `--output ''` is refused
    space = search_space_from_json(definition["search_space"])
    get_record(definition["baseline"])  # unknown names fail before any data is read
    return space


@dataclasses.dataclass(frozen=True)
class _Search:
    """What one call of :func:`tune` searches, where, and how it reports."""

    definition: dict[str, Any]
    space: dict[str, Any]
    out: str
    worker: bool
    overwrite: bool
    data_dir: str | None
    retrain: bool
    quiet: bool


def _search(job: _Search) -> dict[str, Any]:
    """Read the data, prepare the folder, run (or resume) the search, then report."""
    from keras_resnet.data import DataConfig, get_datasets

    d, out = job.definition, job.out
    # One DataConfig (dataset, seed, data_dir), as `train` records it.
    data_config = DataConfig(dataset=d["dataset"], seed=d["seed"], data_dir=job.data_dir)
    data = functools.partial(get_datasets, data_config)
    info = data(batch_size=32, augment="none").info
    # The data callable applies the augmentation preset: search it (none vs the
    # data set's default) unless the user's space says otherwise.
    hypermodel = ResNetHyperModel(
        tuple(info.image_shape),
        info.num_classes,
        baseline=d["baseline"],
        recipe=d["recipe"],
        search_space={"augment": ["none", "auto"], **job.space},
        max_macs=d.get("max_trial_macs"),
        max_trial_seconds=d.get("max_trial_seconds"),
    )
    _prepare_output(out, d, job.overwrite, job.worker)
    if not job.worker:  # workers do not reload the oracle (the chief may be writing it)
        _check_search_files(out)
    try:
        tuner = make_tuner(
            d["tuner"],
            hypermodel,
            max_trials=d["max_trials"],
            max_epochs=d["epochs"],
            directory=out,
            project_name="search",
            overwrite=False,  # _prepare_output already removed the old search on --overwrite
            seed=d["seed"],
        )
    except (KeyError, TypeError, RuntimeError) as err:  # files KerasTuner wrote otherwise
        raise ValueError(
            f"{os.path.join(out, 'search')} cannot be reloaded ({type(err).__name__}: {err}); "
            f"{_AFRESH}."
        ) from None
    with _trial_tracebacks(not job.quiet):
        tuner.search(data, epochs=d["epochs"], verbose=0 if job.quiet else 1)
    if job.worker:
        print(f"Worker {os.environ['KERASTUNER_TUNER_ID']} finished.")
        return {"worker": os.environ["KERASTUNER_TUNER_ID"]}
    return _report(job, tuner, hypermodel)


def _report(job: _Search, tuner: Any, hypermodel: Any) -> dict[str, Any]:
    """Print and write the results table, retrain the best trial, write ``best.json``."""
    out = job.out
    rows = trial_results(tuner)
    searched = [n for n, p in hypermodel.space.items() if type(p).__name__ != "Fixed"]
    names = sorted({n for r in rows for n in r["hyperparameters"]})
    print(format_results(rows, searched))
    for row in rows:  # why: the last line of KerasTuner's message (its traceback)
        if row["status"] in ("SKIPPED", "FAILED", "INVALID"):
            message = (tuner.oracle.get_trial(row["trial"]).message or "").strip()
            why = (message or "no message").splitlines()[-1].removeprefix(_FAILED)
            print(f"Trial {row['trial']} {row['status'].lower()}: {why}")
    write_text_atomic(os.path.join(out, "results.csv"), _results_csv(rows, names))
    write_json_atomic(os.path.join(out, "results.json"), {"search": job.definition, "trials": rows})
    done = [r for r in rows if r["score"] is not None]
    if not done:
        print("error: no trial finished; nothing to retrain.")
        return {}
    best = done[0]
    print(f"Best trial {best['trial']}: val score {best['score']:.4f}")
    record: dict[str, Any] = dict(best)
    if job.retrain:
        record["retrain"] = _retrain(job, tuner, hypermodel, best)
    write_json_atomic(os.path.join(out, "best.json"), record)
    print(f"Results: {os.path.join(out, 'results.csv')}, {os.path.join(out, 'best.json')}")
    return record


def _retrain(job: _Search, tuner: Any, hypermodel: Any, best: dict[str, Any]) -> dict[str, Any]:
    """Train the best configuration on train + validation; evaluate on test."""
    d = job.definition
    hp = tuner.oracle.get_trial(best["trial"]).hyperparameters
    config = hypermodel.train_config(hp, epochs=d["epochs"]).replace(
        validation_fraction=0.0, seed=d["seed"]
    )
    run_dir = os.path.join(job.out, f"best_trial_{best['trial']}")
    result = train(
        d["baseline"],
        d["dataset"],
        config,
        output_dir=run_dir,
        model_kwargs=hypermodel.architecture(hp),
        data_kwargs={"data_dir": job.data_dir} if job.data_dir else {},
        verbose=0 if job.quiet else "auto",
    )
    return {"run_dir": run_dir, **result.summary}


def search_space_from_json(raw: dict[str, Any]) -> dict[str, Any]:
    """A search space in JSON form as a ``ResNetHyperModel`` ``search_space``.

    JSON lists are choices (a list of lists is a family of ``stage_depths``), objects
    with ``min`` / ``max`` (and optional ``step``, ``sampling``) are ranges, ``null``
    drops a hyperparameter, anything else fixes it.

    Args:
        raw: The JSON object (``tune.json`` records it in this form).

    Returns:
        A dict for ``ResNetHyperModel(search_space=...)``.

    Example:
        >>> search_space_from_json({"block": "basic", "learning_rate": {"min": 0.01, "max": 0.1}})
        {'block': 'basic', 'learning_rate': (0.01, 0.1)}
    """
    space: dict[str, Any] = {}
    for name, value in raw.items():
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
