"""``train()``: build, compile and fit a model on the data pipelines, into a run folder.

The run folder (``output_dir``) holds ``config.json``, ``data_info.json``,
``history.csv``, ``tensorboard/``, ``backup/`` (``BackupAndRestore``), ``best.keras``,
``model.keras``, ``curves.png``, ``saved_model/`` and, written last, ``summary.json``.
Calling ``train`` again with the same arguments resumes an interrupted run from its
last completed epoch, and returns the summary of a finished one without training.

Under ``MultiWorkerMirroredStrategy`` (``strategy="multi_worker"``, or ``"auto"`` with a
multi-worker ``TF_CONFIG``) Keras 3 ``model.fit`` fails (keras-team/keras#20585), so
``train`` runs :func:`~keras_resnet.training.distributed_loop.fit_distributed`: the
chief writes the run folder (no ``backup/``: such runs cannot resume), the other
workers write to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_resnet.data import validate_for_model
from keras_resnet.export import load_keras_model
from keras_resnet.training.callbacks import make_callbacks, plot_history, read_history
from keras_resnet.training.config import TrainConfig, default_recipe, get_recipe
from keras_resnet.training.distribute import check_batch_size, get_strategy
from keras_resnet.training.factories import make_loss, make_metrics, make_optimizer
from keras_resnet.training.precision import precision_scope, resolve_jit_compile, resolve_precision

logger = logging.getLogger("keras_resnet.training")

RUN_FILES: tuple[str, ...] = (
    "config.json",
    "data_info.json",
    "history.csv",
    "tensorboard",
    "backup",
    "best.keras",
    "model.keras",
    "curves.png",
    "saved_model",
    "summary.json",
)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Args:
        model: The trained model (best weights if early stopping restored them).
        history: One dict per epoch (``loss``, ``accuracy``, ``val_*``, ``learning_rate``).
        summary: The contents of ``summary.json``.
        output_dir: The run folder, or ``None``.

    Example:
        >>> result = train("_tiny", "digits", get_recipe("fast", epochs=1),
        ...                verbose=0)  # doctest: +SKIP
        >>> sorted(result.history[0])[:2]  # doctest: +SKIP
        ['accuracy', 'epoch']
    """

    model: keras.Model
    history: list[dict[str, float]]
    summary: dict[str, Any]
    output_dir: str | None = None


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def versions() -> dict[str, str]:
    """Versions of Python, TensorFlow, Keras and keras_resnet, for ``summary.json``.

    Example:
        >>> sorted(versions())
        ['keras', 'keras_resnet', 'python', 'tensorflow']
    """
    import tensorflow as tf

    import keras_resnet

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_resnet": keras_resnet.__version__,
    }


def _spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
                diffs += [f"{key}.{d}" for d in _spec_differences(old[key], new[key])]
            else:
                diffs.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return diffs


def prepare_run_dir(
    output_dir: str | os.PathLike, run: dict[str, Any], overwrite: bool, *, check_only: bool = False
) -> str:
    """Decide what to do with a run folder: ``"new"``, ``"resume"`` or ``"finished"``.

    A folder whose ``config.json`` describes a different run, or a non-empty folder
    that is not a run folder, is refused with ``FileExistsError`` unless
    ``overwrite``; then the run files (``RUN_FILES``) are deleted and other files kept.

    Args:
        output_dir: The run folder (created if missing).
        run: The run description written to ``config.json`` under ``"run"``.
        overwrite: Start afresh even if the folder holds a run.
        check_only: Only decide and raise, create or delete nothing (what the
            non-chief workers of a multi-worker run do with the chief's folder).

    Returns:
        ``"new"``, ``"resume"`` (same run, unfinished) or ``"finished"``.

    Example:
        >>> import tempfile
        >>> prepare_run_dir(tempfile.mkdtemp(), {"model": "_tiny"}, overwrite=False)
        'new'
    """
    out = os.fspath(output_dir)
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"`output_dir` exists and is not a folder. Received: {out!r}")
    config_path = os.path.join(out, "config.json")
    if check_only and (overwrite or not os.path.isdir(out)):
        return "new"
    os.makedirs(out, exist_ok=True)
    if overwrite:
        for name in RUN_FILES:
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        return "new"
    if os.path.isfile(config_path):
        old = _read_json(config_path).get("run", {})
        json_run = json.loads(json.dumps(run))
        if old != json_run:
            diffs = _spec_differences(old, json_run)
            raise FileExistsError(
                f"`output_dir` {out!r} holds a different run ({'; '.join(diffs[:5])}). "
                "Use another output folder, or overwrite=True (--overwrite) to replace it."
            )
        return "finished" if os.path.isfile(os.path.join(out, "summary.json")) else "resume"
    leftovers = [n for n in os.listdir(out) if n in RUN_FILES]
    if leftovers:
        raise FileExistsError(
            f"`output_dir` {out!r} holds run files ({', '.join(sorted(leftovers))}) but no "
            "config.json. Use another output folder, or overwrite=True (--overwrite)."
        )
    return "new"


def _is_datasets(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("train", "validation", "test", "info"))


def _steps_per_epoch(datasets: Any, batch_size: int) -> int:
    cardinality = int(datasets.train.cardinality())
    if cardinality > 0:
        return cardinality
    return max(1, math.ceil(datasets.info.num_examples["train"] / batch_size))


def _one_hot(dataset: Any) -> bool:
    return len(dataset.element_spec[1].shape) == 2


def _build_model(model: Any, info: Any, model_kwargs: dict[str, Any]) -> keras.Model:
    if isinstance(model, str):
        from keras_resnet.zoo import create_model

        kwargs = {"input_shape": tuple(info.image_shape), "classes": info.num_classes}
        return create_model(model, **dict(kwargs, **model_kwargs))
    if isinstance(model, keras.Model):
        # Variables must be created in the strategy scope: rebuild, copy weights.
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone
    built = model(**model_kwargs)
    if not isinstance(built, keras.Model):
        raise TypeError(f"`model` callable must return a keras.Model. Received: {type(built)}")
    return built


def _describe_model(model: Any) -> str:
    if isinstance(model, str):
        return model
    if isinstance(model, keras.Model):
        return f"keras.Model:{model.name}"
    return f"callable:{getattr(model, '__qualname__', type(model).__name__)}"


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
    export: bool = True,
    verbose: int | str = "auto",
) -> TrainResult:
    """Train a model with a recipe: strategy, precision, data, compile, fit, save.

    Args:
        model: A zoo name (built for the data set's image shape and classes), a
            ``keras.Model`` (cloned into the strategy scope) or a callable returning one.
        dataset: A name for :func:`keras_resnet.data.get_datasets` (``"digits"``,
            ``"mnist_t10k"``, ``"cifar10"``, ...) or a ``Datasets`` tuple.
        config: A :class:`TrainConfig`, a recipe name, or ``None`` for
            :func:`~keras_resnet.training.default_recipe` of ``dataset`` (``"digits"``
            on digits, ``"fast"`` otherwise).
        output_dir: Run folder (see the module docstring); ``None`` writes nothing.
        overwrite: Replace a different or finished run in ``output_dir``.
        model_kwargs: Extra arguments for the model builder.
        data_kwargs: Extra arguments for ``get_datasets`` (e.g. ``data_dir``).
        callbacks: Extra callbacks, run after the standard ones.
        export: Also write ``saved_model/`` (serving SavedModel) into ``output_dir``.
        verbose: ``model.fit`` verbosity (progress bars); the multi-worker loop prints
            one line per epoch on the chief unless ``verbose=0``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: Bad configuration (also a batch size not divisible by replicas).
        FileExistsError: ``output_dir`` holds a different run and not ``overwrite``.
        NonFiniteLossError: The loss became NaN or infinite (epoch and step named).
        ValueError: Multi-worker training with ``BackupAndRestore`` in ``callbacks`` or
            on an unfinished run folder (it cannot resume), raised on every worker
            before the cluster starts.

    Example:
        >>> result = train("_tiny", "digits", get_recipe("fast", epochs=1),
        ...                verbose=0)  # doctest: +SKIP
        >>> 0.0 <= result.summary["test_accuracy"] <= 1.0  # doctest: +SKIP
        True
    """
    if config is None:
        config = get_recipe(default_recipe(dataset))
    elif isinstance(config, str):
        config = get_recipe(config)
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"`config` must be a TrainConfig, a recipe name or None. Received: {type(config)}"
        )
    if not (isinstance(model, (str, keras.Model)) or callable(model)):
        raise TypeError(f"`model` must be a name, a keras.Model or a callable. Received: {model!r}")
    if not (isinstance(dataset, str) or _is_datasets(dataset)):
        raise TypeError(f"`dataset` must be a name or a Datasets tuple. Received: {dataset!r}")
    model_kwargs = dict(model_kwargs or {})
    data_kwargs = dict(data_kwargs or {})
    if isinstance(model, str):
        from keras_resnet.zoo import model_spec

        model_spec(model)  # unknown names fail here, before any heavy work

    run = {
        "model": _describe_model(model),
        "model_kwargs": model_kwargs,
        "dataset": dataset if isinstance(dataset, str) else f"Datasets:{dataset.info.name}",
        "data_kwargs": data_kwargs,
        "train_config": config.to_dict(),
    }
    multi_worker = _uses_multi_worker(config.strategy)
    out = os.fspath(output_dir) if output_dir is not None else None
    chief = True
    if multi_worker:
        from keras_resnet.training.distributed_loop import _check_callbacks, is_chief

        _check_callbacks(callbacks)
        chief = is_chief()
    if out is not None and not chief:
        # Every worker takes the same decisions about the chief's folder (so that all
        # of them fail, or none), but only the chief writes there.
        state = prepare_run_dir(out, run, overwrite, check_only=True)
    else:
        state = prepare_run_dir(out, run, overwrite) if out is not None else "new"
    if multi_worker:
        _multi_worker_refusals(state, config)
    if state == "finished":
        summary = _read_json(os.path.join(out, "summary.json"))
        print(f"Run in {out} already finished; not training again (use --overwrite).")
        print(format_summary(summary))
        trained = keras.saving.load_model(os.path.join(out, "model.keras"))
        return TrainResult(trained, read_history(os.path.join(out, "history.csv")), summary, out)

    run_dir = out
    if out is not None and not chief:
        # TF's advice for multi-worker saving: the chief writes the real files, the
        # other workers write theirs (they must save too) to a temporary folder.
        out = tempfile.mkdtemp(prefix="keras_resnet_worker_")
    try:
        strategy = get_strategy(config.strategy)
        check_batch_size(config.batch_size, strategy)
        if config.seed is not None:
            keras.utils.set_random_seed(config.seed)

        if isinstance(dataset, str):
            from keras_resnet.data import get_datasets

            datasets = get_datasets(
                dataset,
                batch_size=config.batch_size,
                augment=config.augment,
                validation_fraction=config.validation_fraction,
                seed=config.seed,
                one_hot=config.label_smoothing > 0,
                **data_kwargs,
            )
        else:
            datasets = dataset
        info = datasets.info
        one_hot = _one_hot(datasets.train)
        steps_per_epoch = _steps_per_epoch(datasets, config.batch_size)
        policy = resolve_precision(config.precision)
        jit = resolve_jit_compile(config.jit_compile)
        monitor = config.monitor
        if datasets.validation is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        print(
            f"Training {run['model']} on {info.name}: recipe={config.recipe}, "
            f"epochs={config.epochs}, "
            f"batch={config.batch_size} ({strategy.num_replicas_in_sync} replica(s)), "
            f"precision={policy}, jit_compile={jit}"
        )

        with strategy.scope(), precision_scope(policy):
            net = _build_model(model, info, model_kwargs)
            validate_for_model(info, net)  # a wrong head fails here, not mid-fit
            net.compile(
                optimizer=make_optimizer(config, steps_per_epoch),
                loss=make_loss(config, one_hot=one_hot),
                metrics=make_metrics(one_hot=one_hot),
                jit_compile=jit,
                steps_per_execution=config.steps_per_execution,
            )

        initial_best = None
        if out is not None:
            if state == "new":
                _write_json(
                    os.path.join(out, "config.json"),
                    {
                        "run": run,
                        "resolved": {
                            "precision": policy,
                            "jit_compile": jit,
                            "strategy": type(strategy).__name__,
                            "replicas": int(strategy.num_replicas_in_sync),
                            "steps_per_epoch": steps_per_epoch,
                        },
                    },
                )
                _write_json(os.path.join(out, "data_info.json"), info.to_dict())
            else:
                done = read_history(os.path.join(out, "history.csv"))
                values = [r[monitor] for r in done if monitor in r and math.isfinite(r[monitor])]
                if values:
                    initial_best = min(values) if monitor.endswith("loss") else max(values)
                print(f"Resuming the run in {out} after epoch {len(done)} of {config.epochs}.")
        cbs = make_callbacks(config, out, monitor=monitor, initial_best=initial_best)
        cbs += list(callbacks)

        start = time.perf_counter()
        if multi_worker:
            from keras_resnet.training.distributed_loop import fit_distributed

            # No backup/: BackupAndRestore needs model.fit (see _multi_worker_refusals).
            cbs = [c for c in cbs if not isinstance(c, keras.callbacks.BackupAndRestore)]
            fit_history = fit_distributed(
                net,
                datasets.train,
                epochs=config.epochs,
                strategy=strategy,
                validation_data=datasets.validation,
                callbacks=cbs,
                jit_compile=jit,
                verbose=0 if verbose == 0 else 1,
            )
            per_epoch = {k: [h[k] for h in fit_history] for k in fit_history[0] if k != "epoch"}
        else:
            per_epoch = net.fit(
                datasets.train,
                validation_data=datasets.validation,
                epochs=config.epochs,
                callbacks=cbs,
                verbose=verbose,
                shuffle=False,  # the train pipeline shuffles itself
            ).history
        fit_seconds = time.perf_counter() - start
        epochs_this_call = len(per_epoch.get("loss", []))

        summary: dict[str, Any] = {
            "model": run["model"],
            "dataset": info.name,
            "recipe": config.recipe,
            "epochs": config.epochs,
            "precision": policy,
            "jit_compile": jit,
            "strategy": type(strategy).__name__,
            "replicas": int(strategy.num_replicas_in_sync),
            "params": int(net.count_params()),
            "wall_time_s": round(fit_seconds, 2),
            "epochs_this_call": epochs_this_call,
            "images_per_s": round(
                epochs_this_call * info.num_examples.get("train", 0) / max(fit_seconds, 1e-9), 1
            ),
            "versions": versions(),
        }
        if datasets.test is not None:
            if multi_worker:
                from keras_resnet.training.distributed_loop import evaluate_distributed

                scores = evaluate_distributed(net, datasets.test, strategy=strategy)
            else:
                scores = net.evaluate(datasets.test, verbose=0, return_dict=True)
            summary["test_accuracy"] = float(scores["accuracy"])
            summary["test_loss"] = float(scores["loss"])
        if out is None:
            history = [
                {"epoch": float(i), **{k: float(v[i]) for k, v in per_epoch.items()}}
                for i in range(epochs_this_call)
            ]
        else:
            history = read_history(os.path.join(out, "history.csv"))
            summary["epochs_completed"] = len(history)
            _save_model(net, os.path.join(out, "model.keras"))
            if history:
                plot_history(history, os.path.join(out, "curves.png"))
            if export:
                _export_saved_model(net, os.path.join(out, "saved_model"), info)
        summary["epochs_completed"] = len(history)
        if out is not None:
            _write_json(os.path.join(out, "summary.json"), summary)
        print(format_summary(summary))
        return TrainResult(net, history, summary, run_dir)
    finally:
        if out != run_dir and out is not None:
            shutil.rmtree(out, ignore_errors=True)


def _uses_multi_worker(strategy: str) -> bool:
    from keras_resnet.training.distribute import _tf_config_workers

    return strategy == "multi_worker" or (strategy == "auto" and _tf_config_workers() > 1)


def _multi_worker_refusals(state: str, config: TrainConfig) -> None:
    if state == "resume":
        raise ValueError(
            "multi-worker training cannot resume an unfinished run (BackupAndRestore needs "
            "keras model.fit, keras-team/keras#20585); use overwrite=True (--overwrite) to "
            f"start it again. Received: strategy={config.strategy!r}"
        )


def _save_model(model: keras.Model, path: str) -> None:
    from keras_resnet.export import save_keras_model

    save_keras_model(model, path, overwrite=True)


def _export_saved_model(model: keras.Model, path: str, info: Any) -> None:
    from keras_resnet.export import export_saved_model

    export_saved_model(
        model,
        path,
        mean=info.mean,
        std=info.std,
        class_names=info.class_names,
        top_k=min(5, info.num_classes),
        overwrite=True,
    )


def format_summary(summary: dict[str, Any]) -> str:
    """One human-readable line for a run summary.

    Args:
        summary: A ``summary.json`` dict.

    Example:
        >>> format_summary({"model": "resnet20", "dataset": "digits", "test_accuracy": 0.99,
        ...                 "epochs_completed": 15, "wall_time_s": 60.0})
        'resnet20 on digits: test accuracy 99.00% after 15 epochs (60.0 s of training)'
    """
    acc = summary.get("test_accuracy")
    acc_text = f"test accuracy {acc:.2%}" if acc is not None else "no test split"
    return (
        f"{summary.get('model')} on {summary.get('dataset')}: {acc_text} after "
        f"{summary.get('epochs_completed')} epochs ({summary.get('wall_time_s')} s of training)"
    )


def evaluate(
    model: str | os.PathLike | keras.Model,
    dataset: str | Any | None = None,
    *,
    batch_size: int = 256,
    split: str = "test",
    data_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Accuracy and loss of a model on a data-set split.

    Args:
        model: A ``keras.Model``, a ``.keras`` file, or a run folder (its
            ``model.keras``; the run's data set is the default ``dataset``).
        dataset: A data-set name for ``get_datasets`` or a ``Datasets`` tuple.
        batch_size: Evaluation batch size (> 0).
        split: ``"test"``, ``"validation"`` or ``"train"``.
        data_kwargs: Extra arguments for ``get_datasets``.

    Returns:
        ``{"model", "dataset", "split", "examples", "accuracy", "loss"}``.

    Example:
        >>> evaluate("runs/resnet20-digits")["accuracy"] > 0.9  # doctest: +SKIP
        True
    """
    if split not in ("test", "validation", "train"):
        raise ValueError(f"`split` must be test, validation or train. Received: split={split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    data_kwargs = dict(data_kwargs or {})
    label = getattr(model, "name", None)
    if not isinstance(model, keras.Model):
        path = os.fspath(model)
        label = path
        if os.path.isdir(path):
            config_path = os.path.join(path, "config.json")
            if dataset is None and os.path.isfile(config_path):
                run = _read_json(config_path)["run"]
                dataset = run["dataset"]
                data_kwargs = dict(run.get("data_kwargs", {}), **data_kwargs)
            path = os.path.join(path, "model.keras")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"`model` must be a .keras file or a run folder with model.keras. "
                f"Received: {os.fspath(model)!r}"
            )
        model = load_keras_model(path)  # a corrupt archive gets a clear ValueError
    if dataset is None:
        raise ValueError("`dataset` is required unless `model` is a run folder. Received: None")
    if isinstance(dataset, str):
        from keras_resnet.data import get_datasets

        datasets = get_datasets(dataset, batch_size=batch_size, augment="none", **data_kwargs)
    else:
        datasets = dataset
    data = getattr(datasets, split)
    if data is None:
        raise ValueError(f"the data set has no {split!r} split. Received: split={split!r}")
    one_hot = _one_hot(data)
    model.compile(
        loss=make_loss(TrainConfig(), one_hot=one_hot), metrics=make_metrics(one_hot=one_hot)
    )
    scores = model.evaluate(data, verbose=0, return_dict=True)
    examples = int(sum(int(keras.ops.shape(x)[0]) for x, _ in data))
    return {
        "model": label,
        "dataset": datasets.info.name,
        "split": split,
        "examples": examples,
        "accuracy": float(scores["accuracy"]),
        "loss": float(scores["loss"]),
    }
