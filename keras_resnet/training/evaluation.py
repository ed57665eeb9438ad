"""``evaluate()``: accuracy, loss and per-class accuracy of a model on a data-set split.

The model is a ``keras.Model``, a ``.keras`` file, a run folder, or a registered
architecture name with pretrained ``weights``. One pass of predictions gives the
accuracy, the loss, the confusion matrix and the per-class accuracies.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_resnet.saving import load_keras_model
from keras_resnet.training.config import TrainConfig
from keras_resnet.training.confusion import (
    confusion_matrix,
    per_class_accuracy,
    save_confusion_matrix_png,
)
from keras_resnet.training.factories import make_loss
from keras_resnet.utils.atomic import read_json, write_json_atomic
from keras_resnet.utils.checks import check_choice, check_int


def _datasets(dataset: Any, run_data: dict | None, batch_size: int | None, data_kwargs: dict):
    """Evaluation pipelines: a run's recorded ``DataConfig``, a name, or ``Datasets``."""
    if not isinstance(dataset, str):
        return dataset
    from keras_resnet.data import DataConfig, get_datasets

    if run_data is not None:
        data = DataConfig.from_dict(run_data).replace(augment="none")
        return get_datasets(data.replace(batch_size=batch_size or data.batch_size))
    return get_datasets(dataset, batch_size=batch_size or 256, augment="none", **data_kwargs)


def _architecture(model: Any, weights: Any) -> str | None:
    """The registered name to build with ``weights`` (``None``: a saved model); checks first."""
    from keras_resnet.models.registry import get_record, list_models

    named = isinstance(model, str) and model in list_models(include_private=True)
    if weights is None:
        if named:
            raise ValueError(
                f"`model` {model!r} is an architecture name: pass `weights` (--weights FILE) "
                f"to evaluate it with pretrained weights. Received: model={model!r}, weights=None"
            )
        if isinstance(model, str) and not os.path.exists(model) and not {os.sep, "."} & set(model):
            try:  # neither a file nor a folder, and shaped like a name
                get_record(model)
            except ValueError as err:
                raise ValueError(
                    f"`model` is no .keras file, run folder or architecture name. {err}. "
                    f"Received: model={model!r}"
                ) from None
        return None
    if not named:
        if isinstance(model, str) and not os.path.exists(model):
            get_record(model)  # an unknown name: the ValueError lists close matches
        raise ValueError(
            "`weights` needs a registered architecture name as `model` (a saved model "
            f"brings its own weights). Received: model={model!r}, weights={weights!r}"
        )
    from keras_resnet.weights import source_kind

    source_kind(weights)  # a bad source fails here, before any heavy work
    return model


def _load_saved(model: Any, dataset: Any, data_kwargs: dict) -> tuple:
    """A ``.keras`` file or run folder: the model, and the run's data set and pipeline."""
    run_data, path = None, os.fspath(model)
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        if dataset is None and os.path.isfile(config_path):
            run = read_json(config_path).get("run", {})
            dataset = run["dataset"]
            run_data = None if data_kwargs else run.get("data")
            data_kwargs = dict(run.get("data_kwargs", {}), **data_kwargs)
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            "`model` must be a .keras file, a run folder with model.keras, or an architecture "
            f"name with `weights`. Received: {os.fspath(model)!r}"
        )
    return load_keras_model(path), dataset, run_data, data_kwargs  # corrupt: a ValueError


def _build(name: str, weights: str, datasets: Any) -> keras.Model:
    """``create_model(name, weights=...)`` for the data's image shape and classes."""
    from keras_resnet import create_model

    info = datasets.info
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = create_model(
            name, weights=os.fspath(weights), input_shape=tuple(info.image_shape),
            classes=info.num_classes,
        )  # fmt: skip
    for warning in caught:
        if "freshly initialized" in str(warning.message):
            raise ValueError(
                f"The weights do not classify the data's {info.num_classes} classes: "
                f"{warning.message}. Received: weights={os.fspath(weights)!r}"
            )
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model


def _normalization(model: keras.Model, data_kwargs: dict, run_data: Any) -> str:
    """Put the weights' mean/std into ``data_kwargs`` unless set; say whose stats apply."""
    if run_data is not None:
        return "run"
    if data_kwargs.get("mean") is not None:
        return "given"
    prep = getattr(model, "pretrained_preprocessing", None)
    if prep is None or prep.mean is None or prep.std is None:
        return "dataset"
    data_kwargs.update(mean=tuple(prep.mean), std=tuple(prep.std))
    return "weights"


def _scores(model: keras.Model, data: Any, classes: int) -> tuple[dict[str, Any], np.ndarray]:
    """Examples, accuracy, loss and the confusion matrix, from one pass over ``data``."""
    outputs, labels = [], []
    # NumPy batches: JAX and PyTorch models do not take TensorFlow tensors.
    batches = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else data
    for x, y in batches:
        outputs.append(keras.ops.convert_to_numpy(model.predict_on_batch(x)))
        labels.append(keras.ops.convert_to_numpy(y))
    probs, labels = np.concatenate(outputs), np.concatenate(labels)
    one_hot = labels.ndim == 2
    loss = make_loss(TrainConfig(), one_hot=one_hot)(labels, probs)
    labels = labels.argmax(-1) if one_hot else labels.astype("int64")
    matrix = confusion_matrix(labels, probs.argmax(-1), classes)
    n = int(labels.shape[0])
    scores = {"examples": n, "accuracy": float(np.trace(matrix) / max(n, 1)), "loss": float(loss)}
    return scores, matrix


def _write(output_dir: str | os.PathLike, result: dict, matrix: np.ndarray, names: Any) -> None:
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # folders dropped from paths, so that the title fits above the plot
    model, dataset = (re.sub(r"[^\s(:]*[/\\]", "", str(result[k])) for k in ("model", "dataset"))
    title = f"{model} on {dataset} ({result['split']}): {result['accuracy']:.2%}"
    save_confusion_matrix_png(matrix, names, folder / "confusion_matrix.png", title)
    write_json_atomic(folder / "evaluation.json", result)


def evaluate(
    model: str | os.PathLike | keras.Model,
    dataset: str | Any | None = None,
    *,
    weights: str | os.PathLike | None = None,
    batch_size: int | None = None,
    split: str = "test",
    data_kwargs: dict[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Accuracy, loss and per-class accuracy of a model on a data-set split.

    A model that carries pretrained weights' ``mean``/``std``
    (``model.pretrained_preprocessing``) gets the data normalized with them, unless
    ``data_kwargs`` sets ``mean``/``std`` or a run folder's recorded pipeline applies.

    Args:
        model: A ``keras.Model``, a ``.keras`` file, a run folder (its ``model.keras``;
            the run's data set is the default ``dataset``), or a registered
            architecture name (``"resnet20"``) with ``weights``.
        dataset: A data-set name for ``get_datasets`` or a ``Datasets`` tuple.
        weights: A checkpoint for the architecture ``model`` names (any source of
            :func:`keras_resnet.weights.load_weights`); the model is built for the
            data's image shape and classes.
        batch_size: Evaluation batch size (> 0); default: the run's own batch size for
            a run folder, else 256.
        split: ``"test"``, ``"validation"`` or ``"train"``.
        data_kwargs: Extra arguments for ``get_datasets``. A model with a fixed input
            size gets its images resized to it unless they set ``image_size``.
        output_dir: A folder to write ``evaluation.json`` (this result) and
            ``confusion_matrix.png`` into, atomically.

    Returns:
        ``{"model", "dataset", "split", "examples", "accuracy", "loss",
        "normalization": {"mean", "std", "source"}, "per_class": [{"class", "count",
        "correct", "accuracy"}, ...], "confusion_matrix"}``; the normalization source
        is ``"weights"``, ``"run"``, ``"given"`` or ``"dataset"`` (its own statistics).

    Example:
        >>> import keras_resnet
        >>> model = keras_resnet.create_model("_tiny", input_shape=(16, 16, 1), classes=10)
        >>> scores = evaluate(model, "digits")  # resized to the model's 16x16
        >>> scores["split"], scores["examples"], len(scores["per_class"])
        ('test', 360, 10)
        >>> scores["normalization"]["source"]
        'dataset'
    """
    check_choice("split", split, ("test", "validation", "train"))
    check_int("batch_size", batch_size, min_value=1, allow_none=True)
    data_kwargs = dict(data_kwargs or {})
    name, run_data = _architecture(model, weights), None
    label = f"{name} ({os.fspath(weights)})" if name else getattr(model, "name", None)
    if name is None and not isinstance(model, keras.Model):
        label = os.fspath(model)
        model, dataset, run_data, data_kwargs = _load_saved(model, dataset, data_kwargs)
    if dataset is None:
        raise ValueError("`dataset` is required unless `model` is a run folder. Received: None")
    if name is not None:
        model = _build(name, weights, _datasets(dataset, None, batch_size, data_kwargs))
    size = tuple(model.input_shape[1:3])
    if run_data is None and None not in size:  # images at the size the model was built for
        data_kwargs.setdefault("image_size", size)
    source = _normalization(model, data_kwargs, run_data) if isinstance(dataset, str) else "given"
    datasets = _datasets(dataset, run_data, batch_size, data_kwargs)
    data = getattr(datasets, split)
    if data is None:
        raise ValueError(f"the data set has no {split!r} split. Received: split={split!r}")
    info = datasets.info
    scores, matrix = _scores(model, data, info.num_classes)
    result = {"model": label, "dataset": info.name, "split": split, **scores}
    result |= {
        "normalization": {"mean": list(info.mean), "std": list(info.std), "source": source},
        "per_class": per_class_accuracy(matrix, info.class_names),
        "confusion_matrix": matrix.tolist(),
    }
    if output_dir is not None:
        _write(output_dir, result, matrix, info.class_names)
    return result
