"""``train()``: prepare -> data -> model -> fit -> finalize, into a run folder.

The run folder (:mod:`keras_resnet.training.rundir`) holds the configuration, history,
checkpoints, the model and, written last, ``summary.json``; the serving SavedModel is
written from the finished run by :func:`keras_resnet.export.export_run`. Calling ``train``
again resumes an interrupted run from its last completed epoch, finishes a run whose
training ended, and returns a finished run's summary without training. Under
``MultiWorkerMirroredStrategy`` the chief writes the run folder (no ``backup/``: no
resume); the other workers write to a temporary folder removed at the end."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_resnet.data import DataConfig, get_datasets, validate_for_model
from keras_resnet.saving import load_keras_model
from keras_resnet.training.auto_choice import resolve_jit_compile, resolve_precision
from keras_resnet.training.backup import best_checkpoint_epoch, pretrained_restart, resume_kwargs
from keras_resnet.training.callbacks import TrainEpochs, make_callbacks, plot_history
from keras_resnet.training.config import TrainConfig, resolve_config
from keras_resnet.training.distribute import check_batch_size, get_strategy, uses_multi_worker
from keras_resnet.training.ema import selection_data, weights_report
from keras_resnet.training.factories import compile_model
from keras_resnet.training.fine_tune import check_fine_tune_weights
from keras_resnet.training.fitting import evaluate_model, fit_model
from keras_resnet.training.memory import check_training_memory
from keras_resnet.training.messages import say
from keras_resnet.training.precision import precision_scope
from keras_resnet.training.rundir import RunDir
from keras_resnet.training.summary import format_summary, param_counts, versions
from keras_resnet.utils.atomic import read_json


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Args:
        model: The trained model (best weights if early stopping restored them).
        history: One dict per epoch (``loss``, ``accuracy``, ``val_*``, ``learning_rate``).
        summary: The contents of ``summary.json``.
        output_dir: The run folder, or ``None``.

    Example:
        >>> from keras_resnet.training import get_recipe
        >>> result = train("_tiny", "digits", get_recipe("fast", epochs=1), verbose=0)
        _tiny on digits: test accuracy ...% after 1 epochs (... s of training)
        >>> sorted(result.history[0])
        ['accuracy', 'epoch', 'learning_rate', 'loss', 'val_accuracy', 'val_loss']
    """

    model: keras.Model
    history: list[dict[str, float]]
    summary: dict[str, Any]
    output_dir: str | None = None


@dataclasses.dataclass
class _Run:
    """What the steps of one ``train`` call share."""

    config: TrainConfig
    run: dict[str, Any]
    state: str = "new"
    folder: RunDir | None = None  # the run folder
    writer: RunDir | None = None  # where this process writes (a temp folder off the chief)
    multi_worker: bool = False
    strategy: Any = None
    datasets: Any = None
    fine_tune: Any = None  # FineTunePhases of a two-phase run (config.head_epochs)
    unread_weights: str | None = None  # not read: the backup holds the state (_model)


def train(
    model: str | keras.Model | Callable[..., keras.Model] = "resnet20",
    dataset: str | Any = "digits",
    config: TrainConfig | str | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    data_kwargs: dict[str, Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    weights: str | os.PathLike | None = None,
) -> TrainResult:
    """Train a model with a recipe: strategy, precision, data, compile, fit, save.

    Args:
        model: A zoo name (built for the data set's image shape and classes), a
            ``keras.Model`` (cloned into the strategy scope) or a callable returning one.
        dataset: A name for :func:`keras_resnet.data.get_datasets` (``"digits"``,
            ``"idx:PATH"``, ``"cifar10"``, ...) or a ``Datasets`` tuple.
        config: A :class:`TrainConfig`, a recipe name, or ``None`` for
            :func:`~keras_resnet.training.default_recipe` of ``dataset`` (``"digits"``
            on digits, ``"fast"`` otherwise).
        output_dir: Run folder (docs/runs.md); ``None`` writes nothing.
        overwrite: Replace a different or finished run in ``output_dir``.
        model_kwargs, data_kwargs: Extra arguments for the model builder and for
            ``get_datasets`` (e.g. ``data_dir``).
        callbacks: Extra callbacks, run after the standard ones.
        verbose: Progress bars (``model.fit`` verbosity) and the opening line; ``0``
            keeps only the run's state lines (resumed / finished / result).
        weights: Pretrained weights for a zoo-name ``model`` (see
            :func:`keras_resnet.weights.load_weights`); recipe ``"fine_tune"`` trains
            the head first, then the backbone (:mod:`keras_resnet.training.fine_tune`).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: Bad configuration (fine-tuning a zoo name without ``weights``), a
            batch size not divisible by replicas, an ``output_dir`` that is (or lies
            below) a file; multi-worker training with ``BackupAndRestore`` or on an
            unfinished run folder (every worker raises it before the cluster starts).
        PermissionError: ``output_dir`` cannot be written (checked first).
        FileExistsError: ``output_dir`` holds a different run and not ``overwrite``
            (``RunFolderBusyError``: another process is training there).
        NonFiniteLossError: The loss became NaN or infinite (epoch and step named).

    Example:
        >>> import tempfile
        >>> args, folder = ("_tiny", "digits", TrainConfig(epochs=2)), tempfile.mkdtemp()
        >>> result = train(*args, output_dir=folder, verbose=0)
        _tiny on digits: test accuracy ...% after 2 epochs (... s of training)
        >>> result.summary["epochs_completed"], "model.keras" in os.listdir(folder)
        (2, True)
        >>> train(*args, output_dir=folder, verbose=0).summary == result.summary
        Run in ... already finished; not training again (use --overwrite).
        _tiny on digits: test accuracy ...
        True
    """
    config, model_kwargs = resolve_config(config, dataset), dict(model_kwargs or {})
    if weights is not None:
        model_kwargs["weights"] = _check_weights(model, weights)
    check_fine_tune_weights(model, config, model_kwargs)
    run, data = _describe_run(model, dataset, config, model_kwargs, dict(data_kwargs or {}))
    job = _prepare(run, config, output_dir, overwrite, callbacks)
    try:
        if job.state == "finished":
            return _already_finished(job.folder)
        _data(job, dataset, data)
        net = _model(job, model, model_kwargs, verbose)
        _adopt_preprocessing(job, net, data)
        _claim(job)
        return _finalize(job, net, _fit(job, net, callbacks, verbose))
    finally:
        _release(job)


def _data(job: _Run, dataset: Any, data: DataConfig | None) -> None:
    """The strategy (the batch size must divide among its replicas), seed and data."""
    job.strategy = get_strategy(job.config.strategy)
    check_batch_size(job.config.batch_size, job.strategy)
    if job.config.seed is not None:
        keras.utils.set_random_seed(job.config.seed)
    job.datasets = dataset if data is None else get_datasets(data)


def _release(job: _Run) -> None:
    """Unlock the run folder and remove a worker's temporary folder."""
    if job.folder is not None:
        job.folder.unlock()
    if job.writer is not None and job.writer is not job.folder:
        shutil.rmtree(job.writer.path, ignore_errors=True)


def _check_weights(model: Any, weights: str | os.PathLike) -> str:
    if not isinstance(model, str):
        raise TypeError(
            "`weights` needs a zoo name as `model` (load weights into a keras.Model "
            f"yourself). Received: model={type(model).__name__}"
        )
    from keras_resnet.weights import source_kind

    source_kind(weights)  # a bad source fails here, before any heavy work
    return os.fspath(weights)


def _describe_run(
    model: Any, dataset: Any, config: TrainConfig, model_kwargs: dict, data_kwargs: dict
) -> tuple[dict[str, Any], DataConfig | None]:
    """``config.json``'s run description (argument kinds checked first) and DataConfig."""
    if isinstance(model, str):
        from keras_resnet.models.registry import get_record

        get_record(model)  # unknown names fail here, before any heavy work
        label = model
    elif isinstance(model, keras.Model):
        label = f"keras.Model:{model.name}"
    elif callable(model):
        label = f"callable:{getattr(model, '__qualname__', type(model).__name__)}"
    else:
        raise TypeError(f"`model` must be a name, a keras.Model or a callable. Received: {model!r}")
    if isinstance(dataset, str):
        data_label = dataset
    elif all(hasattr(dataset, a) for a in ("train", "validation", "test", "info")):
        data_label = f"Datasets:{dataset.info.name}"
        size = tuple(dataset.info.image_shape[:2])
        if config.image_size not in (None, size):  # prepared pipelines are not resized
            raise ValueError(
                f"`dataset` holds {size[0]}x{size[1]} images; build it at the recipe's size or "
                f"set image_size=None. Received: image_size={config.image_size!r}"
            )
    else:
        raise TypeError(f"`dataset` must be a name or a Datasets tuple. Received: {dataset!r}")
    run = {
        "model": label,
        "model_kwargs": model_kwargs,
        "dataset": data_label,
        "data_kwargs": data_kwargs,
        "train_config": config.to_dict(),
    }
    data = config.data_config(dataset, **data_kwargs) if isinstance(dataset, str) else None
    if data is not None and data.tfds_read_config is None:
        run["data"] = data.to_dict()  # every data option, as the CLI's DataConfig.from_args
    return run, data


def _prepare(
    run: dict[str, Any],
    config: TrainConfig,
    output_dir: str | os.PathLike | None,
    overwrite: bool,
    callbacks: Sequence[keras.callbacks.Callback],
) -> _Run:
    """Step 1: check the output folder, lock it, decide new / resume / trained / finished.

    Nothing is deleted or written yet (:func:`_claim` does it once data and model passed
    their checks), so a refused run leaves the old one intact."""
    job = _Run(config=config, run=run, multi_worker=uses_multi_worker(config.strategy))
    chief = True
    if job.multi_worker and config.head_epochs:
        # FineTunePhases rebuilds model.fit's train function; the multi-worker loop has its own.
        raise ValueError(
            "Two-phase fine-tuning (head_epochs > 0) does not run under the multi-worker strategy"
            f" yet. Received: head_epochs={config.head_epochs}, strategy={config.strategy!r}"
        )
    if job.multi_worker:
        from keras_resnet.training.distributed_loop import check_callbacks, is_chief

        check_callbacks(callbacks)
        chief = is_chief()
    if output_dir is None:
        return job
    job.folder = RunDir(output_dir, run, overwrite=overwrite)
    try:
        if chief:
            job.state = job.folder.lock().prepare(check_only=True)
            job.writer = job.folder
        else:
            # Every worker takes the same decisions about the chief's folder (so that all
            # of them fail, or none), but only the chief writes there; the others write
            # theirs (they must save too) to a temporary folder, as TF advises.
            job.state = job.folder.prepare(check_only=True)
        if job.multi_worker and job.state in ("resume", "trained"):
            raise ValueError(
                "multi-worker training cannot resume an unfinished run (BackupAndRestore "
                "needs keras model.fit, keras-team/keras#20585); use overwrite=True "
                f"(--overwrite) to start it again. Received: strategy={config.strategy!r}"
            )
    except BaseException:
        job.folder.unlock()
        raise
    if not chief and job.state != "finished":
        job.writer = RunDir(tempfile.mkdtemp(prefix="keras_resnet_worker_"), run)
    return job


def _claim(job: _Run) -> None:
    """Step 3b: data and model are good; now the chief may clear an old run (``overwrite``)."""
    if job.writer is job.folder and job.folder is not None:
        job.state = job.folder.prepare()


def _already_finished(folder: RunDir) -> TrainResult:
    summary = folder.summary()
    say(f"Run in {folder.path} already finished; not training again (use --overwrite).")
    say(format_summary(summary))
    trained = load_keras_model(folder.file("model.keras"), compile=True)
    return TrainResult(trained, folder.history(), summary, folder.path)


def _adopt_preprocessing(job: _Run, net: keras.Model, data: DataConfig | None) -> None:
    """Step 3a: pretrained weights bring their normalization (mean/std) into the data,
    ``data_info.json`` and the export, unless the user set ``mean``/``std``."""
    prep = getattr(net, "pretrained_preprocessing", None)
    mean, std = (prep.mean, prep.std) if prep is not None else (None, None)
    if job.state == "trained" and "weights" in job.run["model_kwargs"] or job.unread_weights:
        info = read_json(job.writer.file("data_info.json"))  # what the run trained on
        mean, std = info.get("mean"), info.get("std")
    if data is None or data.mean is not None or mean is None or std is None:
        return
    if job.unread_weights and [*job.datasets.info.mean, *job.datasets.info.std] == [*mean, *std]:
        return  # the data's own statistics: the pipelines stand
    channels = job.datasets.info.image_shape[-1]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"The weights' preprocessing has {len(mean)} channel(s) but the images have "
            f"{channels}; pass `mean` and `std` for the data. Received: mean={list(mean)}, "
            f"std={list(std)}"
        )
    # The checkpoint's statistics are known once it is loaded: the pipelines are rebuilt.
    job.datasets = get_datasets(data.replace(mean=tuple(mean), std=tuple(std)))


def _model(job: _Run, model: Any, model_kwargs: dict[str, Any], verbose: int | str) -> keras.Model:
    """Step 3: build and compile in the strategy and precision scopes (or reload the
    trained ``model.keras`` of a run whose training ended)."""
    config, info = job.config, job.datasets.info
    policy = resolve_precision(config.precision)
    steps = _steps_per_epoch(job.datasets, config.batch_size)
    if verbose != 0 and job.state != "trained":
        say(
            f"Training {job.run['model']} on {info.name} ({info.image_shape[0]}x"
            f"{info.image_shape[1]}): recipe={config.recipe}, epochs={config.epochs}, "
            f"batch={config.batch_size} "
            f"({job.strategy.num_replicas_in_sync} replica(s)), precision={policy}, "
            f"jit_compile={resolve_jit_compile(config.jit_compile)}"
        )
    with job.strategy.scope(), precision_scope(policy):
        if job.state == "trained":
            return load_keras_model(job.writer.file("model.keras"), compile=True)
        if job.state == "resume":  # the backup restores every weight: no pretrained file
            backup = job.writer.file("backup")
            model_kwargs, job.unread_weights = resume_kwargs(model_kwargs, backup)
        net = _build_model(model, info, model_kwargs)
        validate_for_model(info, net)  # a wrong head fails here, before the folder is written
        # an image size (with the batch size) beyond memory, too
        check_training_memory(net, info.image_shape, config.batch_size,
                              replicas=job.strategy.num_replicas_in_sync)  # fmt: skip
        one_hot = len(job.datasets.train.element_spec[1].shape) == 2
        net = compile_model(net, config, steps_per_epoch=steps, one_hot=one_hot)
        if config.head_epochs:
            from keras_resnet.training.fine_tune import FineTunePhases

            job.fine_tune = FineTunePhases(config.head_epochs, config.unfreeze)
            job.fine_tune.prepare(net)
        return net


def _build_model(model: Any, info: Any, model_kwargs: dict[str, Any]) -> keras.Model:
    if isinstance(model, str):
        # The registry is a table of builders and their arguments: call the builder
        # (models.ResNet / densenet.DenseNet) straight from here.
        from keras_resnet.models.registry import get_record

        head = {"input_shape": tuple(info.image_shape), "classes": info.num_classes}
        record = get_record(model)
        return record.builder(**{**record.spec(), **head, **model_kwargs})
    if isinstance(model, keras.Model):
        # Variables must be created in the strategy scope: rebuild, copy weights.
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone
    built = model(**model_kwargs)
    if not isinstance(built, keras.Model):
        raise TypeError(f"`model` callable must return a keras.Model. Received: {type(built)}")
    return built


def _steps_per_epoch(datasets: Any, batch_size: int) -> int:
    cardinality = int(datasets.train.cardinality())
    if cardinality > 0:
        return cardinality
    return max(1, math.ceil(datasets.info.num_examples["train"] / batch_size))


def _fit(
    job: _Run, net: keras.Model, callbacks: Sequence[keras.callbacks.Callback], verbose: int | str
) -> dict[str, Any]:
    """Step 4: train (resuming from the backup), save ``model.keras``, mark training done.

    Returns the fit statistics of ``summary.json`` (and the history of this call when
    there is no run folder). A run whose training already ended is not trained again.
    """
    if job.state == "trained":
        say(f"Training in {job.writer.path} already ended; finishing the run.")
        return job.writer.trained()
    config, datasets, out = job.config, job.datasets, job.writer
    cbs = _start_or_resume(job)
    # With use_ema the last callback (ModelEMA) may leave the averaged weights in `net`.
    history, seconds = fit_model(
        net,
        datasets.train,
        epochs=config.epochs,
        validation_data=datasets.validation,
        callbacks=[
            TrainEpochs(datasets.train),
            *[c for c in [job.fine_tune] if c],
            *cbs,
            *callbacks,
        ],  # fmt: skip
        strategy=job.strategy,
        multi_worker=job.multi_worker,
        verbose=verbose,
    )
    images = len(history) * datasets.info.num_examples.get("train", 0)
    stats = {
        **weights_report(cbs),
        "wall_time_s": round(seconds, 2),
        "epochs_this_call": len(history),
        "images_per_s": round(images / max(seconds, 1e-9), 1),
    }
    if out is None:
        return dict(stats, history=[dict(h, epoch=float(i)) for i, h in enumerate(history)])
    from keras_resnet.saving import save_keras_model

    save_keras_model(net, out.file("model.keras"), overwrite=True)
    out.mark_trained(stats)
    return stats


def _start_or_resume(job: _Run) -> list[keras.callbacks.Callback]:
    """Write ``config.json`` of a new run, or pick up where an interrupted one stopped;
    the standard callbacks either way."""
    config, datasets, out = job.config, job.datasets, job.writer
    monitor = config.monitor_for(datasets.validation)
    initial_best = fallback = None
    if out is not None and job.state == "new":
        resolved = dict(_setup(job), steps_per_epoch=_steps_per_epoch(datasets, config.batch_size))
        out.start(resolved, datasets.info.to_dict())
    elif out is not None:
        done = out.history()
        values = [r[monitor] for r in done if math.isfinite(r.get(monitor, math.nan))]
        if values:
            initial_best = min(values) if monitor.endswith("loss") else max(values)
        epoch = best_checkpoint_epoch(done, monitor)
        fallback = (out.file("best.keras"), epoch) if epoch is not None else None
    return make_callbacks(
        config,
        out.path if out is not None else None,
        monitor=monitor,
        initial_best=initial_best,
        backup_fallback=fallback,
        backup_restart=pretrained_restart(job.unread_weights) if job.unread_weights else None,
        ema_check=selection_data(datasets),
        ema_evaluate=lambda net, data: evaluate_model(
            net, data, strategy=job.strategy, multi_worker=job.multi_worker
        ),
    )


def _setup(job: _Run) -> dict[str, Any]:
    """What ``"auto"`` resolved to on this machine: precision, XLA, strategy, replicas."""
    return {
        "precision": resolve_precision(job.config.precision),
        "jit_compile": resolve_jit_compile(job.config.jit_compile),
        "strategy": type(job.strategy).__name__,
        "replicas": int(job.strategy.num_replicas_in_sync),
    }


def _finalize(job: _Run, net: keras.Model, stats: dict[str, Any]) -> TrainResult:
    """Step 5: test scores, curves and ``summary.json`` (written last)."""
    config, datasets, out = job.config, job.datasets, job.writer
    history = stats.pop("history", None)
    if out is not None:
        history = out.history()
    summary: dict[str, Any] = {
        "model": job.run["model"],
        "dataset": datasets.info.name,
        "recipe": config.recipe,
        "epochs": config.epochs,
        **_setup(job),
        **param_counts(net),
        **stats,
        "epochs_completed": len(history),
        "versions": versions(),
    }
    if datasets.test is not None:
        scores = evaluate_model(
            net, datasets.test, strategy=job.strategy, multi_worker=job.multi_worker
        )
        summary |= {"test_accuracy": scores["accuracy"], "test_loss": scores["loss"]}
    if out is not None:
        if history:
            plot_history(history, out.file("curves.png"))
        out.finish(summary)
    say(format_summary(summary))
    return TrainResult(net, history, summary, job.folder.path if job.folder else None)
