"""TensorFlow Datasets sources: any TFDS image-classification data set by name."""

from __future__ import annotations

import difflib
import functools
import os
from typing import Any

import tensorflow as tf

from keras_resnet.data import sources as src

CACHE_LIMIT_BYTES = 2 * 1024**3  # cache decoded data in memory below this on-disk size


def _supported_message(name: str, supported: list[str]) -> str:
    import tensorflow_datasets as tfds

    close = difflib.get_close_matches(name, tfds.list_builders(), n=5)
    hint = f" Close TFDS names: {close}." if close else ""
    return f"Supported: {supported}.{hint}"


def _num_examples(builder: Any, split: str, ds: tf.data.Dataset) -> int:
    if builder.info.splits:
        return int(builder.info.splits[split].num_examples)
    n = int(ds.cardinality().numpy())
    if n >= 0:
        return n
    return int(ds.reduce(0, lambda c, _: c + 1).numpy())


def _classification_features(name: str, info: Any) -> tuple[tuple, Any]:
    """The image shape and ClassLabel of a TFDS data set; anything but those is refused."""
    import tensorflow_datasets as tfds

    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(
            f"TFDS data set {name!r} has no (image, label) supervised keys. "
            f"Received: supervised_keys={keys}"
        )
    image_feature, label_feature = info.features[keys[0]], info.features[keys[1]]
    if not isinstance(image_feature, tfds.features.Image) or not isinstance(
        label_feature, tfds.features.ClassLabel
    ):
        raise ValueError(
            f"TFDS data set {name!r} is not image classification (needs an Image feature and "
            f"a ClassLabel). Received: features={type(image_feature).__name__}, "
            f"{type(label_feature).__name__}"
        )
    shape = tuple(image_feature.shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(
            f"TFDS data set {name!r} images must be (H, W, 1|3). Received: shape={shape}"
        )
    return shape, label_feature


def _check_splits(
    name: str, info: Any, train: str, validation: str | None, test: str | None
) -> tuple[str, str | None, str | None]:
    """Check the split strings against the data set (test: ``test``, else ``validation``)."""
    available = list(info.splits.keys())
    if test is None:
        if not available or "test" in available:
            test = "test"
        elif "validation" in available and validation != "validation":
            test = "validation"
    options = {"train_split": train, "validation_split": validation, "test_split": test}
    for option, split in options.items():
        if split is None or not available:
            continue  # not asked for, or no split info to check against
        try:
            info.splits[split]  # parses split strings such as "train[:90%]" too
        except (KeyError, ValueError, AssertionError) as e:
            raise ValueError(
                f"Split {split!r} does not exist in {name!r} (available: {available}). "
                f"Received: {option}={split!r}"
            ) from e
    return train, validation, test


def _builder(name: str, data_dir: str | None, supported: list[str]) -> Any:
    """The TFDS builder of ``name`` (nothing is downloaded yet)."""
    import tensorflow_datasets as tfds

    if data_dir is not None:
        data_dir = os.path.expanduser(str(data_dir))
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"Unknown data set. Received: dataset={name!r}. {_supported_message(name, supported)}"
        ) from e


def _load_split(builder: Any, name: str, split: str | None, read_config: Any) -> Any:
    """One split in file order with int32 labels, or None; an empty split is refused."""
    if split is None:
        return None
    ds = builder.as_dataset(
        split=split, as_supervised=True, shuffle_files=False, read_config=read_config
    )
    ds = ds.map(
        lambda image, label: (image, tf.cast(label, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE
    )
    n = _num_examples(builder, split, ds)
    if n == 0:
        raise ValueError(f"Split {split!r} of {name!r} is empty. Received: split={split!r}")
    return src.Split(ds, n)


def load_tfds_source(
    name: str,
    *,
    data_dir: str | None = None,
    train_split: str = "train",
    validation_split: str | None = None,
    test_split: str | None = None,
    download: bool = True,
    read_config: Any = None,
    supported: list[str] = (),
) -> src.Source:
    """Resolve a TFDS data set into a :class:`~keras_resnet.data.sources.Source`.

    Class count, image shape and class names come from the TFDS info. Splits are
    TFDS split strings (``"train[:90%]"``); by default ``train`` for training and
    ``test`` (or ``validation`` when the data set has no test split) for testing.
    Files are read in a fixed order (``shuffle_files=False``) so that carving a
    validation split with take/skip is stable; the pipeline shuffles examples.

    Args:
        name: str, TFDS name, optionally with config/version (``"cifar10"``).
        data_dir: str or None, TFDS data directory.
        train_split: TFDS split string for training.
        validation_split: TFDS split used as validation, or None (carved from train).
        test_split: TFDS split for testing, or None (``test``, else ``validation``).
        download: Let TFDS download and prepare the data set.
        read_config: A ``tfds.ReadConfig`` for ``as_dataset``, or None.
        supported: The data set names to list when ``name`` is unknown.

    Returns:
        :class:`~keras_resnet.data.sources.Source`.

    Example:
        >>> import tensorflow_datasets as tfds
        >>> with tfds.testing.mock_data(num_examples=8):
        ...     load_tfds_source("mnist").image_shape
        (28, 28, 1)
    """
    builder = _builder(name, data_dir, list(supported))
    info = builder.info
    shape, label_feature = _classification_features(name, info)
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(
                f"TFDS data set {name!r} is not prepared in data_dir={builder.data_dir!r} and "
                "download=False. Prepare it with `tfds build` or pass download=True."
            )
        builder.download_and_prepare()
    train_split, validation_split, test_split = _check_splits(
        name, info, train_split, validation_split, test_split
    )
    load = functools.partial(_load_split, builder, name, read_config=read_config)
    base = name.split(":")[0].split("/")[0]
    mean, std = src.KNOWN_STATS.get(base, (None, None))
    size = info.dataset_size  # on disk; unknown (0 / None): cache anyway
    return src.Source(
        name=name,
        train=load(train_split),
        test=load(test_split),
        validation=load(validation_split),
        class_names=tuple(label_feature.names),
        image_shape=shape,
        mean=mean,
        std=std,
        default_augment=src.default_augment_for(base, shape),
        cache_default=not size or int(size) < CACHE_LIMIT_BYTES,
        shard_by_data=False,
    )
