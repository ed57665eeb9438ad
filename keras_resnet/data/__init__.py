"""``tf.data`` input pipelines for keras_resnet models.

``get_datasets(name, batch_size=...)`` returns :class:`Datasets` (``train``,
``validation``, ``test`` pipelines of ``(images, labels)`` batches plus a
:class:`DatasetInfo`); :func:`from_arrays` does the same for NumPy arrays.
Images are float32 ``(B, H, W, C)`` normalized as ``(pixel / 255 - mean) / std``;
labels are int32 ``(B,)`` or float32 one-hot ``(B, num_classes)``.

Sources: ``"digits"`` (scikit-learn, offline), ``"mnist_t10k"`` (real MNIST test set
IDX files in ``../shared/data/mnist-t10k``), ``"idx:PATH"``, TFDS names
(``"cifar10"``, ``"tfds:cifar10"``), ``"dir:PATH"`` (class subfolders of images).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_resnet.data import sources as _src
from keras_resnet.data.augment import PRESETS
from keras_resnet.data.pipeline import DatasetInfo, Datasets, build_datasets
from keras_resnet.data.sources import mnist_t10k_path, read_idx, train_validation_split

__all__ = [
    "PRESETS",
    "DatasetInfo",
    "Datasets",
    "from_arrays",
    "get_datasets",
    "list_datasets",
    "mnist_t10k_path",
    "read_idx",
    "train_validation_split",
    "validate_for_model",
]

_BUILTIN = ("digits", "mnist_t10k")


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
        "tfds:NAME",
        "<any TFDS image classification name>",
    ]


def _resolve(dataset: str, data_dir: str | None, options: dict) -> _src.Source:
    if not isinstance(dataset, str) or not dataset:
        raise TypeError(
            f"`dataset` must be a non-empty str. Received: dataset={dataset!r}. "
            f"Supported: {list_datasets()}"
        )
    if dataset == "digits":
        return _src.load_digits_source()
    if dataset == "mnist_t10k":
        return _src.load_mnist_t10k_source()
    if dataset.startswith("idx:"):
        return _src.load_idx_source(dataset[4:], name=dataset)
    if dataset.startswith("dir:"):
        from keras_resnet.data import folders

        return folders.load_folder_source(dataset[4:], name=dataset, options=options)
    from keras_resnet.data import tfds_source

    name = dataset[5:] if dataset.startswith("tfds:") else dataset
    return tfds_source.load_tfds_source(name, data_dir=data_dir, options=options)


def get_datasets(
    dataset: str,
    *,
    batch_size: int,
    augment: str = "auto",
    image_size: int | tuple[int, int] | None = None,
    validation_fraction: float = 0.1,
    seed: int | None = None,
    one_hot: bool = False,
    data_dir: str | None = None,
    **options: Any,
) -> Datasets:
    """Build the train / validation / test pipelines of a data set.

    The validation split is carved from the training split only (stratified for
    in-memory sources), so test examples never reach training. ``batch_size`` is the
    global batch: under ``tf.distribute``, pass the datasets to
    ``strategy.experimental_distribute_dataset`` (in-memory sources are sharded by
    element).

    Args:
        dataset: str, ``"digits"``, ``"mnist_t10k"``, ``"idx:PATH"``, ``"dir:PATH"``, a
            TFDS name (``"cifar10"``) or ``"tfds:NAME"``.
        batch_size: int > 0, global batch size.
        augment: str, one of ``"auto"`` (preset by data set), ``"cifar"`` (pad 4 +
            random crop + flip), ``"imagenet"`` (random-resized-crop + flip; eval:
            resize + center-crop 0.875), ``"mnist"`` (small shifts), ``"none"``.
        image_size: int or ``(height, width)``, output size (default: native size;
            224 for the imagenet preset on images of varying size).
        validation_fraction: float in ``[0, 1)``, share of the train split held out.
        seed: int or None; with an int the training pipeline (shuffle order and
            augmentation) is reproducible.
        one_hot: bool, float32 one-hot labels (forced on by ``mixup``/``cutmix``).
        data_dir: str or None, TFDS data directory.
        **options: see ``keras_resnet.data.pipeline._OPTIONS``: ``cache``,
            ``shuffle_buffer``, ``rand_augment``, ``random_erasing``, ``mixup``,
            ``cutmix``, ``channels``, ``mean``, ``std``, ``train_split``,
            ``validation_split``, ``test_split``, ``download``, ``tfds_read_config``,
            ``drop_remainder``.

    Returns:
        :class:`Datasets` ``(train, validation, test, info)``.

    Example:
        >>> ds = get_datasets("digits", batch_size=32, seed=0)
        >>> images, labels = next(iter(ds.train))
        >>> images.shape, labels.dtype.name, ds.info.num_classes
        (TensorShape([32, 8, 8, 1]), 'int32', 10)
    """
    # argument checks first, before any data is touched
    from keras_resnet.data.pipeline import _check_common

    _check_common(batch_size, augment, image_size, validation_fraction, seed, one_hot, options)
    source = _resolve(dataset, data_dir, options)
    return build_datasets(
        source,
        batch_size=batch_size,
        augment=augment,
        image_size=image_size,
        validation_fraction=validation_fraction,
        seed=seed,
        one_hot=one_hot,
        **{k: v for k, v in options.items() if k not in _SOURCE_OPTIONS},
    )


_SOURCE_OPTIONS = ("train_split", "validation_split", "test_split", "download", "tfds_read_config")


def from_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    batch_size: int,
    num_classes: int | None = None,
    class_names: list[str] | tuple[str, ...] | None = None,
    name: str = "arrays",
    augment: str = "auto",
    image_size: int | tuple[int, int] | None = None,
    validation_fraction: float = 0.1,
    seed: int | None = None,
    one_hot: bool = False,
    **options: Any,
) -> Datasets:
    """Build pipelines from in-memory NumPy arrays.

    Images may be uint8 in [0, 255] or float (in [0, 1] when their maximum is <= 1,
    else in [0, 255]), shaped ``(N, H, W)`` or ``(N, H, W, C)`` with C in (1, 3).
    Labels are integers in ``[0, num_classes)``.

    Args:
        x_train: training images.
        y_train: training labels ``(N,)``.
        x_test: optional test images (never used for training or validation).
        y_test: optional test labels.
        batch_size: int > 0.
        num_classes: int or None (default: from ``class_names`` or ``max(label) + 1``).
        class_names: optional names, one per class.
        name: str, recorded in :class:`DatasetInfo`.
        augment: str, see :func:`get_datasets`.
        image_size: see :func:`get_datasets`.
        validation_fraction: float in ``[0, 1)``.
        seed: int or None.
        one_hot: bool.
        **options: see :func:`get_datasets`.

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
    from keras_resnet.data.pipeline import _check_common

    _check_common(batch_size, augment, image_size, validation_fraction, seed, one_hot, options)
    if (x_test is None) != (y_test is None):
        raise ValueError(
            "Pass both `x_test` and `y_test`, or neither. "
            f"Received: x_test is None={x_test is None}, y_test is None={y_test is None}"
        )
    test = None if x_test is None else (x_test, y_test)
    source = _src.from_numpy(name, (x_train, y_train), test, class_names, num_classes)
    return build_datasets(
        source,
        batch_size=batch_size,
        augment=augment,
        image_size=image_size,
        validation_fraction=validation_fraction,
        seed=seed,
        one_hot=one_hot,
        **options,
    )


def validate_for_model(info: DatasetInfo, model: Any) -> None:
    """Raise ``ValueError`` if a model cannot take this data (before training starts).

    Checks the image shape against ``model.input_shape`` and the class count
    against the model's last output dimension.

    Args:
        info: :class:`DatasetInfo` of the data.
        model: a built Keras model.

    Example:
        >>> import keras_resnet
        >>> info = get_datasets("digits", batch_size=32).info
        >>> m = keras_resnet.create_model("_tiny", input_shape=(8, 8, 1), classes=10)
        >>> validate_for_model(info, m)
    """
    expected = tuple(model.input_shape[1:])
    got = tuple(info.image_shape)
    if len(expected) != len(got) or any(
        e is not None and e != g for e, g in zip(expected, got, strict=False)
    ):
        raise ValueError(
            f"Data images have shape {got} but the model expects {expected} "
            f"(rank and channels must match; pass image_size=/channels= to get_datasets). "
            f"Received: image_shape={got}"
        )
    classes = model.output_shape[-1]
    if classes is not None and classes != info.num_classes:
        raise ValueError(
            f"The data has {info.num_classes} classes but the model outputs {classes}. "
            f"Received: num_classes={info.num_classes}"
        )
