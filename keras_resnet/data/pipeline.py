"""``get_datasets`` / ``from_arrays``: batched, normalized, augmented ``tf.data`` pipelines.

Training pipeline order (the tf.data performance guide's recipe):
source -> deterministic resize -> ``cache`` -> ``shuffle`` -> [per-example random
crop for the imagenet preset] -> ``batch`` -> batched augmentation + normalization
(one vectorized map, ``AUTOTUNE``) -> [Keras RandAugment / RandomErasing / MixUp /
CutMix] -> ``prefetch``. Evaluation pipelines are the same without shuffling or
random ops, and are deterministic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_resnet.data import augment as aug
from keras_resnet.data import sources as src

AUTOTUNE = tf.data.AUTOTUNE
STATS_EXAMPLES = 10_000  # examples read to compute mean/std of a streamed source
GATHER_LIMIT_BYTES = 1024**3  # arrays up to this size are gathered batch-wise from memory

_OPTIONS = {
    "cache": "True/False/'auto' (default) or a file path prefix for tf.data cache",
    "shuffle_buffer": "int, shuffle buffer size (default: whole train split up to 50,000)",
    "rand_augment": "True or dict of keras.layers.RandAugment kwargs",
    "random_erasing": "probability or dict of keras.layers.RandomErasing kwargs",
    "mixup": "alpha or dict of keras.layers.MixUp kwargs (forces one_hot)",
    "cutmix": "factor or dict of keras.layers.CutMix kwargs (forces one_hot)",
    "channels": "int 1 or 3: output channels (grayscale sources can be repeated to 3)",
    "mean": "per-channel mean in [0, 1] pixel units (overrides known/computed stats)",
    "std": "per-channel std in [0, 1] pixel units",
    "train_split": "TFDS split string for training (default 'train')",
    "validation_split": "TFDS split string used as validation instead of carving",
    "test_split": "TFDS split string for testing (default 'test' or 'validation')",
    "download": "bool, let TFDS download and prepare the data set (default True)",
    "tfds_read_config": "tfds.ReadConfig passed to as_dataset",
    "drop_remainder": "bool, drop the last partial training batch (default True)",
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and an exported model need to know about the data.

    Args:
        name: str, data set name as passed to :func:`get_datasets`.
        num_classes: int, number of classes.
        image_shape: ``(H, W, C)`` of the images the pipeline yields.
        class_names: tuple of str, one per class.
        mean: per-channel mean in [0, 1] pixel units (uint8 / 255).
        std: per-channel standard deviation in the same units.
        num_examples: dict ``{"train", "validation", "test"}`` -> int.

    Example:
        >>> info = DatasetInfo("x", 2, (8, 8, 1), ("a", "b"), (0.5,), (0.25,),
        ...                    {"train": 10, "validation": 0, "test": 5})
        >>> DatasetInfo.from_dict(info.to_dict()) == info
        True
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_examples: dict[str, int]

    def to_dict(self) -> dict:
        """Return a JSON-serializable dict (lists instead of tuples).

        Example:
            >>> info = DatasetInfo("x", 1, (2, 2, 1), ("a",), (0.0,), (1.0,), {"train": 1})
            >>> info.to_dict()["image_shape"]
            [2, 2, 1]
        """
        d = dataclasses.asdict(self)
        d["image_shape"] = [int(v) for v in self.image_shape]
        d["class_names"] = [str(c) for c in self.class_names]
        d["mean"] = [float(v) for v in self.mean]
        d["std"] = [float(v) for v in self.std]
        d["num_examples"] = {str(k): int(v) for k, v in self.num_examples.items()}
        json.dumps(d)  # fail here, not in the caller, if anything is not serializable
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetInfo:
        """Rebuild from :meth:`to_dict` output (e.g. a run's ``data_info.json``).

        Args:
            d: dict with the dataclass fields.

        Example:
            >>> DatasetInfo.from_dict({"name": "x", "num_classes": 1, "image_shape": [2, 2, 1],
            ...     "class_names": ["a"], "mean": [0.0], "std": [1.0],
            ...     "num_examples": {"train": 1}}).image_shape
            (2, 2, 1)
        """
        if not isinstance(d, dict):
            raise TypeError(f"`d` must be a dict. Received: type={type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - set(d)
        if missing:
            raise ValueError(f"DatasetInfo dict is missing keys {sorted(missing)}. Received: {d}")
        return cls(
            name=str(d["name"]),
            num_classes=int(d["num_classes"]),
            image_shape=tuple(int(v) for v in d["image_shape"]),
            class_names=tuple(str(c) for c in d["class_names"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            num_examples={str(k): int(v) for k, v in d["num_examples"].items()},
        )


class Datasets(NamedTuple):
    """The pipelines of one data set plus its :class:`DatasetInfo`.

    ``train`` is shuffled, augmented, batched and prefetched (one pass = one epoch);
    ``validation`` and ``test`` are deterministic, or ``None`` when absent.

    Example:
        >>> ds = Datasets(train=None, validation=None, test=None, info=None)
        >>> ds._fields
        ('train', 'validation', 'test', 'info')
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    info: DatasetInfo


# ----------------------------------------------------------------------------- checks


def _check_common(
    batch_size: Any,
    augment: Any,
    image_size: Any,
    validation_fraction: Any,
    seed: Any,
    one_hot: Any,
    options: dict,
) -> tuple[int, int] | None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size}")
    if augment not in aug.PRESETS:
        raise ValueError(f"`augment` must be one of {aug.PRESETS}. Received: augment={augment!r}")
    src._check_fraction(validation_fraction)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
    if not isinstance(one_hot, bool):
        raise TypeError(f"`one_hot` must be a bool. Received: one_hot={one_hot!r}")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        allowed = "\n".join(f"  {k}: {v}" for k, v in _OPTIONS.items())
        raise TypeError(f"Unknown option(s) {unknown}. Allowed options:\n{allowed}")
    buffer = options.get("shuffle_buffer")
    if buffer is not None and (
        isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1
    ):
        raise ValueError(
            f"`shuffle_buffer` must be a positive int. Received: shuffle_buffer={buffer!r}"
        )
    cache = options.get("cache")
    if cache is not None and not isinstance(cache, (bool, str)):
        raise TypeError(f"`cache` must be a bool, 'auto' or a path. Received: cache={cache!r}")
    if (options.get("mean") is None) != (options.get("std") is None):
        raise ValueError(
            "Pass both `mean` and `std`, or neither. "
            f"Received: mean={options.get('mean')!r}, std={options.get('std')!r}"
        )
    if not isinstance(options.get("drop_remainder", True), bool):
        raise TypeError(
            "`drop_remainder` must be a bool. "
            f"Received: drop_remainder={options['drop_remainder']!r}"
        )
    for key in ("rand_augment", "random_erasing", "mixup", "cutmix"):
        value = options.get(key)
        ok = (
            value is None
            or isinstance(value, (bool, dict))
            or (isinstance(value, (int, float)) and value > 0)
        )
        if not ok:
            raise ValueError(
                f"Augmentation option `{key}` must be True/False, a positive number or a dict "
                f"of layer arguments. Received: {key}={value!r}"
            )
    channels = options.get("channels")
    if channels not in (None, 1, 3):
        raise ValueError(f"`channels` must be 1, 3 or None. Received: channels={channels!r}")
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(
            "`image_size` must be an int, a (height, width) tuple or None. "
            f"Received: image_size={image_size!r}"
        )
    if min(size) < 1:
        raise ValueError(f"`image_size` must be positive. Received: image_size={image_size!r}")
    return size


# ----------------------------------------------------------------------------- stats


def _stats_from_arrays(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return tuple(float(v) for v in x.mean(0)), tuple(float(max(v, 1e-3)) for v in x.std(0))


def _stats_from_dataset(ds: tf.data.Dataset, channels: int, limit: int):
    # streamed: accumulate sums over (at most) `limit` images, one pass
    def reduce(state, example):
        image = tf.cast(example[0], tf.float64) / 255.0
        flat = tf.reshape(image, (-1, channels))
        return (
            state[0] + tf.reduce_sum(flat, 0),
            state[1] + tf.reduce_sum(flat * flat, 0),
            state[2] + tf.cast(tf.shape(flat)[0], tf.float64),
        )

    zeros = tf.zeros((channels,), tf.float64)
    s, s2, n = ds.take(limit).reduce((zeros, zeros, tf.constant(0.0, tf.float64)), reduce)
    n = float(n.numpy())
    if n == 0:
        raise ValueError("The training split is empty: cannot compute mean/std.")
    mean = s.numpy() / n
    std = np.sqrt(np.maximum(s2.numpy() / n - mean**2, 0))
    return tuple(float(v) for v in mean), tuple(float(max(v, 1e-3)) for v in std)


def _check_stats(name: str, value: Sequence[float], channels: int) -> tuple[float, ...]:
    value = tuple(float(v) for v in value)
    if len(value) != channels or (name == "std" and min(value) <= 0):
        raise ValueError(
            f"`{name}` must have one {'positive ' if name == 'std' else ''}value per channel "
            f"({channels}). Received: {name}={value}"
        )
    return value


# ----------------------------------------------------------------------------- build


def _split_validation(source: src.Source, fraction: float, seed: int) -> tuple:
    """Return (train Split, validation Split | None), carved from the train split only."""
    if source.validation is not None:
        return source.train, source.validation
    if fraction == 0:
        return source.train, None
    if source.train.arrays is not None:
        (xt, yt), (xv, yv) = src.train_validation_split(
            *source.train.arrays, validation_fraction=fraction, seed=seed
        )
        return src._array_split(xt, yt), src._array_split(xv, yv)
    n = source.train.num_examples
    n_val = int(round(n * fraction))
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"`validation_fraction` leaves an empty train or validation split for {n} "
            f"training examples. Received: validation_fraction={fraction}"
        )
    # streamed sources are read in a fixed order, so take/skip is a stable split
    ds = source.train.dataset
    return src.Split(ds.skip(n_val), n - n_val), src.Split(ds.take(n_val), n_val)


def _auto_cache(source: src.Source, option: Any, resized: bool) -> bool | str:
    if option is None or option == "auto":
        # arrays are already in memory (cache only what a resize produced); streamed
        # sources say themselves whether they fit (TFDS: by size; folders: never)
        return bool(source.extra.get("cache_default", resized if source.in_memory else False))
    if isinstance(option, (bool, str)):
        return option
    raise TypeError(f"`cache` must be a bool, 'auto' or a path. Received: cache={option!r}")


def build_datasets(
    source: src.Source,
    *,
    batch_size: int,
    augment: str = "auto",
    image_size: int | tuple[int, int] | None = None,
    validation_fraction: float = 0.1,
    seed: int | None = None,
    one_hot: bool = False,
    **options: Any,
) -> Datasets:
    """Build :class:`Datasets` from a resolved :class:`~keras_resnet.data.sources.Source`.

    Arguments as in :func:`get_datasets` (which resolves the source and calls this).

    Example:
        >>> from keras_resnet.data import sources
        >>> ds = build_datasets(sources.load_digits_source(), batch_size=32)
        >>> ds.info.image_shape
        (8, 8, 1)
    """
    size = _check_common(
        batch_size, augment, image_size, validation_fraction, seed, one_hot, options
    )
    preset = source.default_augment if augment == "auto" else augment
    native = source.image_shape
    if size is None:
        if (native[0] is None or native[1] is None) and "default_size" in source.extra:
            if preset != "imagenet":
                size = tuple(source.extra["default_size"])  # a folder's first image
            else:
                size = (224, 224)
        elif native[0] is None or native[1] is None:
            if preset != "imagenet":
                raise ValueError(
                    f"Images of {source.name!r} vary in size: pass `image_size`. "
                    "Received: image_size=None"
                )
            size = (224, 224)
        else:
            size = (int(native[0]), int(native[1]))
    in_channels = int(native[2])
    out_channels = options.get("channels") or in_channels
    if out_channels != in_channels and not (in_channels == 1 and out_channels == 3):
        raise ValueError(
            f"Cannot convert {in_channels}-channel images of {source.name!r} to "
            f"{out_channels} channels (only 1 -> 3 is supported). Received: channels={out_channels}"
        )

    # a fixed split seed: the validation set does not change with the training seed
    train, validation = _split_validation(source, validation_fraction, 0)
    if train.num_examples < batch_size:
        raise ValueError(
            f"`batch_size` is larger than the training split ({train.num_examples} examples) "
            f"of {source.name!r}. Received: batch_size={batch_size}"
        )

    # normalization statistics: explicit option > known for the data set > computed on train
    if options.get("mean") is not None:
        mean = _check_stats("mean", options["mean"], out_channels)
        std = _check_stats("std", options["std"], out_channels)
    else:
        if source.mean is not None:
            mean, std = source.mean, source.std
        elif train.arrays is not None:
            mean, std = _stats_from_arrays(train.arrays[0])
        else:
            mean, std = _stats_from_dataset(train.dataset, in_channels, STATS_EXAMPLES)
        if out_channels == 3 and len(mean) == 1:
            mean, std = mean * 3, std * 3

    mix = bool(options.get("mixup") or options.get("cutmix"))
    one_hot = one_hot or mix
    num_classes = source.num_classes
    resize_needed = (native[0], native[1]) != size and preset != "imagenet"
    cache = _auto_cache(source, options.get("cache"), resize_needed)
    shuffle_buffer = options.get("shuffle_buffer") or min(train.num_examples, 50_000)
    drop_remainder = options.get("drop_remainder", True)

    scale = tf.constant([1.0 / (255.0 * s) for s in std], tf.float32)
    offset = tf.constant([m / s for m, s in zip(mean, std, strict=False)], tf.float32)

    def finish(images: tf.Tensor, labels: tf.Tensor):
        """float [0,255] batch -> normalized float32 and int32 / one-hot labels."""
        if out_channels != in_channels:
            images = tf.image.grayscale_to_rgb(images)
        images = images * scale - offset
        labels = tf.cast(labels, tf.int32)
        if one_hot:
            labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return images, labels

    def deterministic_resize(image, label):
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    def with_options(ds: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
        opts = tf.data.Options()
        opts.deterministic = deterministic
        if source.in_memory or source.extra.get("shard_by_data", False):
            # in-memory / file-list sources have no files to shard by: shard by element
            opts.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
        return ds.with_options(opts)

    def maybe_cache(ds: tf.data.Dataset) -> tf.data.Dataset:
        if cache is True:
            return ds.cache()
        if isinstance(cache, str) and cache:
            return ds.cache(f"{cache}_train")
        return ds

    def center_crop(image, label):
        image = aug.resize_center_crop(tf.cast(image, tf.float32), size)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    def finish_uint8(images, labels):
        return finish(tf.cast(images, tf.float32), labels)

    # ---------------------------------------------------------------- evaluation
    def eval_pipeline(split: src.Split | None, tag: str) -> tf.data.Dataset | None:
        if split is None:
            return None
        ds = split.dataset
        if preset == "imagenet":
            ds = ds.map(center_crop, num_parallel_calls=AUTOTUNE)
        elif resize_needed:
            ds = ds.map(deterministic_resize, num_parallel_calls=AUTOTUNE)
        if isinstance(cache, str) and cache:
            ds = ds.cache(f"{cache}_{tag}")
        elif cache is True:
            ds = ds.cache()
        ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
        ds = ds.map(finish_uint8, num_parallel_calls=AUTOTUNE)
        return with_options(ds.prefetch(AUTOTUNE), deterministic=True)

    # ---------------------------------------------------------------- training
    seeds = (None, None, None) if seed is None else (int(seed), int(seed) + 1, int(seed) + 2)
    gather = (
        train.arrays is not None
        and preset != "imagenet"
        and not resize_needed
        and train.arrays[0].nbytes <= GATHER_LIMIT_BYTES
    )
    if gather:
        # in-memory arrays: shuffle indices (a full shuffle that costs 8 bytes an
        # example) and gather whole batches in one op instead of batching examples
        images_c = tf.constant(train.arrays[0])
        labels_c = tf.constant(train.arrays[1])

        def take_batch(index):
            return tf.gather(images_c, index), tf.gather(labels_c, index)

        ds = tf.data.Dataset.range(train.num_examples)
        ds = ds.shuffle(shuffle_buffer, seed=seeds[0], reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=bool(drop_remainder))
        ds = ds.map(take_batch, num_parallel_calls=AUTOTUNE)
    else:
        ds = train.dataset
        if resize_needed:
            ds = ds.map(deterministic_resize, num_parallel_calls=AUTOTUNE)
        ds = maybe_cache(ds)
        ds = ds.shuffle(shuffle_buffer, seed=seeds[0], reshuffle_each_iteration=True)
        if preset == "imagenet":
            rnd = tf.data.Dataset.random(seed=seeds[1], rerandomize_each_iteration=True)

            def crop(xy, s):
                return aug.random_resized_crop(tf.cast(xy[0], tf.float32), s, size), xy[1]

            ds = tf.data.Dataset.zip((ds, rnd.batch(2))).map(crop, num_parallel_calls=AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=bool(drop_remainder), num_parallel_calls=AUTOTUNE)
    batch_fn = aug.batch_preset(preset, size)
    pixel_layers, mix_layers = aug.keras_option_layers(options, seeds[2], num_classes)

    def train_map(xy, s):
        images = xy[0]
        if batch_fn is not None:
            images = batch_fn(images, s)  # on uint8 where possible: 4x less memory traffic
        images = tf.cast(images, tf.float32)
        if pixel_layers:
            return images, xy[1]  # Keras layers run next, then `finish`
        return finish(images, xy[1])

    rnd = tf.data.Dataset.random(
        seed=None if seed is None else seeds[1] + 7919, rerandomize_each_iteration=True
    ).batch(2)
    ds = tf.data.Dataset.zip((ds, rnd)).map(train_map, num_parallel_calls=AUTOTUNE)
    if pixel_layers or mix_layers:
        # Keras layers draw from a stateful SeedGenerator: keep them sequential when a
        # seed is given so the draw order (and thus the pipeline) is reproducible.
        calls = None if seed is not None else AUTOTUNE

        def keras_map(images, labels):
            for layer in pixel_layers:
                images = layer(images, training=True)
            if pixel_layers:
                images, labels = finish(images, labels)
            for layer in mix_layers:
                out = layer({"images": images, "labels": labels}, training=True)
                images, labels = out["images"], out["labels"]
            return images, labels

        ds = ds.map(keras_map, num_parallel_calls=calls)
    train_ds = with_options(ds.prefetch(AUTOTUNE), deterministic=True)

    info = DatasetInfo(
        name=source.name,
        num_classes=num_classes,
        image_shape=(size[0], size[1], out_channels),
        class_names=source.class_names,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        num_examples={
            "train": train.num_examples,
            "validation": validation.num_examples if validation is not None else 0,
            "test": source.test.num_examples if source.test is not None else 0,
        },
    )
    return Datasets(
        train=train_ds,
        validation=eval_pipeline(validation, "validation"),
        test=eval_pipeline(source.test, "test"),
        info=info,
    )
