"""Data sets by name: :func:`get_datasets`, :func:`from_arrays`, :func:`list_datasets`.

Names resolve to sources (``digits``, IDX files, image folders, the CIFAR files, TFDS)
and the sources to ``tf.data`` pipelines (:mod:`keras_resnet.data.pipeline`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import numpy as np

from keras_resnet.data import cifar as _cifar
from keras_resnet.data import sources as _src
from keras_resnet.data.config import DataConfig
from keras_resnet.data.pipeline import DatasetInfo, Datasets, build_datasets
from keras_resnet.utils.checks import check_fields

_BUILTIN = ("digits",)
# CIFAR file forms: prefix -> (labels, classes); plain "cifar10" / "cifar100" are TFDS names
_CIFAR_FILES = {
    "cifar10": ("fine", 10),
    "cifar100": ("fine", 100),
    "cifar100_coarse": ("coarse", 20),
}


def list_datasets() -> list[str]:
    """Names and name forms :func:`get_datasets` accepts.

    Returns:
        list of str: the built-in names, then the prefix forms.

    Example:
        >>> "digits" in list_datasets()
        True
    """
    return list(_BUILTIN) + [
        "idx:PATH",
        "dir:PATH",
        "cifar10:PATH",
        "cifar100:PATH",
        "cifar100_coarse:PATH",
        "tfds:NAME",
        "<any TFDS image classification name>",
    ]


def _not_tfds(config: DataConfig, kind: str) -> None:
    extra = config.tfds_options_set()
    if extra:
        raise ValueError(
            f"{', '.join(f'`{n}`' for n in extra)} apply to TFDS data sets only, not to "
            f"{kind}. Received: dataset={config.dataset!r}, "
            + ", ".join(f"{n}={getattr(config, n)!r}" for n in extra)
        )


def _cifar_prefix(dataset: str) -> str | None:
    """``"cifar10"`` for ``"cifar10:PATH"``; None for other names and TFDS versions."""
    prefix, colon, path = dataset.partition(":")
    if not colon or prefix not in _CIFAR_FILES:
        return None
    if re.fullmatch(r"[\d.*]+", path) and not os.path.exists(path):
        return None  # "cifar10:3.0.2" stays a TFDS name with a version
    return prefix


def _cifar_files(dataset: str) -> _src.Source:
    prefix, _, path = dataset.partition(":")
    labels, classes = _CIFAR_FILES[prefix]
    source = _cifar.load_cifar_source(path, name=dataset, labels=labels)
    if source.num_classes != classes:
        raise ValueError(
            f"`{prefix}:PATH` expects CIFAR files with {classes} classes, but {path!r} holds "
            f"{source.num_classes}. Received: dataset={dataset!r}"
        )
    return source


def _resolve(config: DataConfig) -> _src.Source:
    dataset = config.dataset
    cifar_files = _cifar_prefix(dataset)
    if cifar_files:
        _not_tfds(config, f"{cifar_files}:PATH (the CIFAR files)")
        return _cifar_files(dataset)
    if dataset in _BUILTIN or dataset.startswith(("idx:", "dir:")):
        _not_tfds(config, dataset.split(":")[0])
    if dataset == "digits":
        return _src.load_digits_source()
    if dataset.startswith("idx:"):
        return _src.load_idx_source(dataset[4:], name=dataset)
    if dataset.startswith("dir:"):
        from keras_resnet.data import folders

        return folders.load_folder_source(dataset[4:], name=dataset, channels=config.channels)
    from keras_resnet.data import tfds_source

    return tfds_source.load_tfds_source(
        dataset[5:] if dataset.startswith("tfds:") else dataset,
        data_dir=config.data_dir,
        train_split=config.train_split,
        validation_split=config.validation_split,
        test_split=config.test_split,
        download=config.download,
        read_config=config.tfds_read_config,
        supported=list_datasets(),
    )


def _config(dataset: Any, fields: dict[str, Any], what: str) -> DataConfig:
    """A DataConfig from a config (with ``fields`` replaced) or from a name and ``fields``."""
    names = [f.name for f in dataclasses.fields(DataConfig)]
    check_fields(what, fields, names, what="option")
    if isinstance(dataset, DataConfig):
        return dataset.replace(**fields)
    if not isinstance(dataset, str) or not dataset:
        raise TypeError(
            f"`dataset` must be a DataConfig or a non-empty str. Received: dataset={dataset!r}. "
            f"Supported: {list_datasets()}"
        )
    return DataConfig(dataset=dataset, **fields)


def get_datasets(dataset: str | DataConfig, /, **fields: Any) -> Datasets:
    """Build the train / validation / test pipelines of a data set.

    The validation split is carved from the training split only (stratified for
    in-memory sources), so test examples never reach training. ``batch_size`` is the
    global batch: under ``tf.distribute``, pass the datasets to
    ``strategy.experimental_distribute_dataset`` (in-memory sources are sharded by
    element). Every option is checked (by :class:`DataConfig`) before any data is read.

    Args:
        dataset: a :class:`DataConfig`, or a name: ``"digits"``,
            ``"idx:PATH"``, ``"dir:PATH"``, the CIFAR files (``"cifar10:PATH"``,
            ``"cifar100:PATH"``, ``"cifar100_coarse:PATH"``), a TFDS name (``"cifar10"``)
            or ``"tfds:NAME"``.
        **fields: :class:`DataConfig` fields (``batch_size``, ``augment``,
            ``image_size``, ``validation_fraction``, ``seed``, ``one_hot``, ``cache``,
            ``mixup``, ``data_dir``, ``train_split``, ...): with a name they build the
            config, with a config they replace its values.

    Returns:
        :class:`Datasets` ``(train, validation, test, info)``.

    Example:
        >>> ds = get_datasets("digits", batch_size=32, seed=0)
        >>> images, labels = next(iter(ds.train))
        >>> images.shape, labels.dtype.name, ds.info.num_classes
        (TensorShape([32, 8, 8, 1]), 'int32', 10)
        >>> get_datasets(DataConfig("digits", batch_size=16), seed=1).info.num_examples["test"]
        360
    """
    config = _config(dataset, fields, "get_datasets")
    return build_datasets(_resolve(config), config)


def from_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    num_classes: int | None = None,
    class_names: list[str] | tuple[str, ...] | None = None,
    name: str = "arrays",
    config: DataConfig | None = None,
    **fields: Any,
) -> Datasets:
    """Build pipelines from in-memory NumPy arrays.

    Images may be uint8, integers in [0, 255], or float (in [0, 1] when their maximum
    is <= 1, else in [0, 255]), shaped ``(N, H, W)`` or ``(N, H, W, C)`` with C in
    (1, 3). Labels are integers in ``[0, num_classes)``. NaN or infinite pixels,
    pixels outside those ranges and labels outside ``[0, num_classes)`` (negative
    ones always) are refused with their count and first index, never clipped.

    Args:
        x_train: training images.
        y_train: training labels ``(N,)``.
        x_test: optional test images (never used for training or validation).
        y_test: optional test labels.
        num_classes: int or None (default: from ``class_names`` or ``max(label) + 1``).
        class_names: optional names, one per class.
        name: str, recorded in :class:`DatasetInfo`.
        config: a :class:`DataConfig` (its ``dataset`` is replaced by ``name``), or None.
        **fields: :class:`DataConfig` fields (``batch_size``, ``augment``, ...).

    Returns:
        :class:`Datasets`.

    Example:
        >>> import numpy as np
        >>> x = np.random.randint(0, 255, (64, 16, 16, 3), dtype="uint8")
        >>> y = np.arange(64) % 4
        >>> ds = from_arrays(x, y, batch_size=16, augment="cifar", seed=1)
        >>> ds.info.num_examples["train"], ds.info.num_examples["validation"]
        (58, 6)
    """
    config = _config(config if config is not None else name, fields, "from_arrays")
    config = config.replace(dataset=name)
    _not_tfds(config, "arrays")
    if (x_test is None) != (y_test is None):
        raise ValueError(
            "Pass both `x_test` and `y_test`, or neither. "
            f"Received: x_test is None={x_test is None}, y_test is None={y_test is None}"
        )
    test = None if x_test is None else (x_test, y_test)
    source = _src.from_numpy(name, (x_train, y_train), test, class_names, num_classes)
    return build_datasets(source, config)


def validate_for_model(info: DatasetInfo, model: Any) -> None:
    """Raise ``ValueError`` if a model cannot take this data (before training starts).

    Checks that the model has one image input and one ``(batch, classes)`` output,
    the image shape against ``model.input_shape`` and the class count against the
    model's head. ``train()`` calls it after building the model and before it writes
    anything into the run folder.

    Args:
        info: :class:`DatasetInfo` of the data.
        model: a built Keras model.

    Example:
        >>> import keras_resnet
        >>> info = get_datasets("digits", batch_size=32).info
        >>> m = keras_resnet.create_model("_tiny", input_shape=(8, 8, 1), classes=10)
        >>> validate_for_model(info, m)
        >>> validate_for_model(info, keras_resnet.create_model("_tiny", input_shape=(8, 8, 1),
        ...                                                     classes=5))
        Traceback (most recent call last):
        ValueError: The data has 10 classes but the model's head outputs 5. Received: num_classes=10
    """
    in_shape, out_shape = model.input_shape, model.output_shape
    if not isinstance(in_shape, tuple) or not isinstance(out_shape, tuple):
        raise ValueError(
            "The model must have one image input and one output. "
            f"Received: input_shape={in_shape}, output_shape={out_shape}"
        )
    expected = tuple(in_shape[1:])
    got = tuple(info.image_shape)
    if len(expected) != len(got) or any(
        e is not None and e != g for e, g in zip(expected, got, strict=False)
    ):
        raise ValueError(
            f"Data images have shape {got} but the model expects {expected} "
            f"(rank and channels must match; pass image_size=/channels= to get_datasets). "
            f"Received: image_shape={got}"
        )
    if len(out_shape) != 2:
        raise ValueError(
            "The model must end in a classifier head with output (batch, classes), e.g. "
            f"include_top=True. Received: output_shape={out_shape}"
        )
    classes = out_shape[-1]
    if classes is not None and classes != info.num_classes:
        raise ValueError(
            f"The data has {info.num_classes} classes but the model's head outputs {classes}. "
            f"Received: num_classes={info.num_classes}"
        )
