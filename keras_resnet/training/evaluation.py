"""``evaluate()``: accuracy and loss of a model, a ``.keras`` file or a run folder."""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_resnet.atomic import read_json
from keras_resnet.checks import check_choice, check_int
from keras_resnet.export import load_keras_model
from keras_resnet.training.config import TrainConfig
from keras_resnet.training.factories import make_loss, make_metrics


def _datasets(dataset: Any, run_data: dict | None, batch_size: int | None, data_kwargs: dict):
    """Evaluation pipelines: a run's recorded ``DataConfig``, a name, or ``Datasets``."""
    if not isinstance(dataset, str):
        return dataset
    from keras_resnet.data import DataConfig, get_datasets

    if run_data is not None:
        data = DataConfig.from_dict(run_data).replace(augment="none")
        return get_datasets(data.replace(batch_size=batch_size or data.batch_size))
    return get_datasets(dataset, batch_size=batch_size or 256, augment="none", **data_kwargs)


def evaluate(
    model: str | os.PathLike | keras.Model,
    dataset: str | Any | None = None,
    *,
    batch_size: int | None = None,
    split: str = "test",
    data_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Accuracy and loss of a model on a data-set split.

    Args:
        model: A ``keras.Model``, a ``.keras`` file, or a run folder (its
            ``model.keras``; the run's data set is the default ``dataset``).
        dataset: A data-set name for ``get_datasets`` or a ``Datasets`` tuple.
        batch_size: Evaluation batch size (> 0); default: the run's own batch size for
            a run folder, else 256.
        split: ``"test"``, ``"validation"`` or ``"train"``.
        data_kwargs: Extra arguments for ``get_datasets``. A model with a fixed input
            size gets its images resized to it unless they set ``image_size``.

    Returns:
        ``{"model", "dataset", "split", "examples", "accuracy", "loss"}``.

    Example:
        >>> import keras_resnet
        >>> model = keras_resnet.create_model("_tiny", input_shape=(16, 16, 1), classes=10)
        >>> scores = evaluate(model, "digits")  # resized to the model's 16x16
        >>> scores["split"], scores["examples"]
        ('test', 360)
    """
    check_choice("split", split, ("test", "validation", "train"))
    check_int("batch_size", batch_size, min_value=1, allow_none=True)
    data_kwargs = dict(data_kwargs or {})
    run_data = None  # a run folder's recorded DataConfig: evaluate on the same pipeline
    label = getattr(model, "name", None)
    if not isinstance(model, keras.Model):
        path = os.fspath(model)
        label = path
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
                f"`model` must be a .keras file or a run folder with model.keras. "
                f"Received: {os.fspath(model)!r}"
            )
        model = load_keras_model(path)  # a corrupt archive: a clear ValueError
    if dataset is None:
        raise ValueError("`dataset` is required unless `model` is a run folder. Received: None")
    size = tuple(model.input_shape[1:3])
    if run_data is None and None not in size:  # images at the size the model was built for
        data_kwargs.setdefault("image_size", size)
    datasets = _datasets(dataset, run_data, batch_size, data_kwargs)
    data = getattr(datasets, split)
    if data is None:
        raise ValueError(f"the data set has no {split!r} split. Received: split={split!r}")
    one_hot = len(data.element_spec[1].shape) == 2
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
