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
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_resnet.data import augment as aug
from keras_resnet.data import epochs
from keras_resnet.data import sources as src
from keras_resnet.data.config import DataConfig

AUTOTUNE = tf.data.AUTOTUNE
STATS_EXAMPLES = 10_000  # examples read to compute mean/std of a streamed source
GATHER_LIMIT_BYTES = 1024**3  # arrays up to this size are gathered batch-wise from memory


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
        return src.array_split(xt, yt), src.array_split(xv, yv)
    n = source.train.num_examples
    n_val = src.validation_count(n, fraction)
    # streamed sources are read in a fixed order, so take/skip is a stable split
    ds = source.train.dataset
    return src.Split(ds.skip(n_val), n - n_val), src.Split(ds.take(n_val), n_val)


def _known_size(split: src.Split | None) -> src.Split | None:
    """``split`` with its size known to tf.data.

    A streamed source drops files that fail to decode, which leaves the size unknown,
    and Keras then warns "ran out of data" at the end of the first epoch; the places of
    dropped files are filled from the start of the next pass over the split. The test
    split is left as it is: a score never counts an image twice.
    """
    if split is None or split.dataset.cardinality() != tf.data.UNKNOWN_CARDINALITY:
        return split
    return src.Split(split.dataset.repeat().take(split.num_examples), split.num_examples)


def _output_size(source: src.Source, config: DataConfig, preset: str) -> tuple[int, int]:
    if config.image_size is not None:
        return config.image_size
    height, width, _ = source.image_shape
    if height is not None and width is not None:
        return (int(height), int(width))
    if preset == "imagenet":
        return (224, 224)
    if source.default_size is not None:
        return source.default_size  # a folder's first image
    raise ValueError(
        f"Images of {source.name!r} vary in size: pass `image_size`. Received: image_size=None"
    )


@dataclass(frozen=True)
class _Plan:
    """What the pipeline maps need, resolved once from the source and the config."""

    config: DataConfig
    preset: str
    size: tuple[int, int]
    in_channels: int
    out_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    one_hot: bool
    resize: bool  # a deterministic resize to `size` before caching
    cache: bool | str
    shard_by_data: bool
    batches: int  # of a training pass

    def finish(self, images: tf.Tensor, labels: tf.Tensor):
        """[0,255] batch (uint8 or float) -> normalized float32 and int32 / one-hot labels."""
        images = tf.cast(images, tf.float32)
        if self.out_channels != self.in_channels:
            images = tf.image.grayscale_to_rgb(images)
        scale = tf.constant([1.0 / (255.0 * s) for s in self.std], tf.float32)
        offset = tf.constant([m / s for m, s in zip(self.mean, self.std, strict=True)])
        images = images * scale - offset
        labels = tf.cast(labels, tf.int32)
        if self.one_hot:
            labels = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        return images, labels

    def deterministic_resize(self, image, label):
        """uint8 image -> uint8 ``size`` (the imagenet preset: resize and center-crop)."""
        if self.preset == "imagenet":
            image = aug.resize_center_crop(tf.cast(image, tf.float32), self.size)
        else:
            image = tf.image.resize(image, self.size, method="bilinear", antialias=True)
        return tf.saturate_cast(tf.round(image), tf.uint8), label

    def with_options(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        opts = tf.data.Options()
        opts.deterministic = True
        if self.shard_by_data:
            # in-memory / file-list sources have no files to shard by: shard by element
            opts.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
        return ds.with_options(opts)

    def cached(self, ds: tf.data.Dataset, tag: str) -> tf.data.Dataset:
        if self.cache is False:
            return ds
        return ds.cache("" if self.cache is True else f"{self.cache}_{tag}")


def _plan(source: src.Source, config: DataConfig, train: src.Split) -> _Plan:
    n, batch = train.num_examples, config.batch_size
    preset = source.default_augment if config.augment == "auto" else config.augment
    size = _output_size(source, config, preset)
    in_channels = int(source.image_shape[2])
    out_channels = config.channels or in_channels
    if out_channels != in_channels and not (in_channels == 1 and out_channels == 3):
        raise ValueError(
            f"Cannot convert {in_channels}-channel images of {source.name!r} to "
            f"{out_channels} channels (only 1 -> 3 is supported). Received: channels={out_channels}"
        )
    # normalization statistics: explicit option > known for the data set > computed on train
    if config.mean is not None:
        mean, std = config.mean, config.std  # DataConfig checked both; not their length
        for name, value in (("mean", mean), ("std", std)):
            if len(value) != out_channels:
                raise ValueError(
                    f"`{name}` must have one value per channel ({out_channels}). "
                    f"Received: {name}={value}"
                )
    else:
        if source.mean is not None:
            mean, std = source.mean, source.std
        elif train.arrays is not None:
            mean, std = _stats_from_arrays(train.arrays[0])
        else:
            mean, std = _stats_from_dataset(train.dataset, in_channels, STATS_EXAMPLES)
        if out_channels == 3 and len(mean) == 1:
            mean, std = mean * 3, std * 3
    resize = tuple(source.image_shape[:2]) != size and preset != "imagenet"
    cache = config.cache
    if cache == "auto":
        # arrays are already in memory (cache only what a resize produced); streamed
        # sources say themselves whether they fit (TFDS: by size; folders: never)
        cache = resize if source.cache_default is None else source.cache_default
    return _Plan(
        config=config,
        preset=preset,
        size=size,
        in_channels=in_channels,
        out_channels=out_channels,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        num_classes=source.num_classes,
        one_hot=config.one_hot or config.mixes,
        resize=resize,
        cache=cache,
        shard_by_data=source.shard_by_data,
        batches=(n // batch if config.drop_remainder else -(-n // batch)),
    )


def _eval_pipeline(plan: _Plan, split: src.Split | None, tag: str) -> tf.data.Dataset | None:
    if split is None:
        return None
    ds = split.dataset
    if plan.resize or plan.preset == "imagenet":
        ds = ds.map(plan.deterministic_resize, num_parallel_calls=AUTOTUNE)
    ds = plan.cached(ds, tag)
    ds = ds.batch(plan.config.batch_size, num_parallel_calls=AUTOTUNE)
    ds = ds.map(plan.finish, num_parallel_calls=AUTOTUNE)
    return plan.with_options(ds.prefetch(AUTOTUNE))


def _gathers(plan: _Plan, train: src.Split) -> bool:
    """Whether the train split is gathered batch-wise from in-memory arrays."""
    return (
        train.arrays is not None
        and plan.preset != "imagenet"
        and not plan.resize
        and train.arrays[0].nbytes <= GATHER_LIMIT_BYTES
    )


def _epoch_batches(plan: _Plan, pool: tf.data.Dataset | tuple, buffer: int, key: tf.Tensor):
    """One epoch of ``(seed, batch)`` pairs, a function of the epoch's ``key`` only.

    ``pool`` is the cached example dataset (shuffled in a ``buffer``; the batch is
    uint8 images and labels) or the ``(images, labels)`` constants of in-memory arrays
    (the batch is the indices to gather). Each batch's seed comes from one vectorized
    split of ``key``: nothing runs per batch here, the maps run after (in parallel).
    """
    config = plan.config
    seeds = tf.data.Dataset.from_tensor_slices(
        tf.random.experimental.stateless_split(epochs.fold(key, 2), plan.batches)
    )
    if isinstance(pool, tuple):
        # in-memory arrays: permute indices (8 bytes an example), to gather whole
        # batches in one op instead of batching examples; a full shuffle unless a
        # smaller `shuffle_buffer` is asked for
        n = int(pool[1].shape[0])
        if buffer >= n:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=epochs.fold(key, 0)
            )
            ds = tf.data.Dataset.from_tensor_slices(order)
        else:
            ds = epochs.shuffled(tf.data.Dataset.range(n), buffer, epochs.fold(key, 0))
        ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder)
        return tf.data.Dataset.zip(seeds, ds)
    ds = epochs.shuffled(pool, buffer, epochs.fold(key, 0))
    if plan.preset == "imagenet":

        def crop(i, xy):
            image = tf.cast(xy[0], tf.float32)
            seed = epochs.fold(epochs.fold(key, 1), i)
            return aug.random_resized_crop(image, seed, plan.size), xy[1]

        ds = ds.enumerate().map(crop, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(
        config.batch_size, drop_remainder=config.drop_remainder, num_parallel_calls=AUTOTUNE
    )
    return tf.data.Dataset.zip(seeds, ds)


def _train_pipeline(plan: _Plan, train: src.Split) -> tf.data.Dataset:
    """Each pass (epoch) draws its order and augmentation from ``(seed, epoch)`` only
    (:mod:`keras_resnet.data.epochs`) and every batch from its own seed, so the maps
    stay parallel and the passes reproducible."""
    config = plan.config
    if _gathers(plan, train):
        pool = tuple(tf.constant(a) for a in train.arrays)
    else:
        pool = train.dataset
        if plan.resize:
            pool = pool.map(plan.deterministic_resize, num_parallel_calls=AUTOTUNE)
        pool = plan.cached(pool, "train")
    # arrays: a full shuffle by default; streamed: up to 50,000 examples in the buffer
    n = train.num_examples
    buffer = config.shuffle_buffer or (n if isinstance(pool, tuple) else min(n, 50_000))
    batch_fn = aug.batch_preset(plan.preset, plan.size)
    pixel_layers, mix_layers = aug.keras_option_layers(config, config.seed, plan.num_classes)
    keras_layers = pixel_layers + mix_layers
    states = epochs.seed_states(keras_layers)

    def train_map(seed, batch):
        if isinstance(pool, tuple):  # indices to gather
            images, labels = tf.gather(pool[0], batch), tf.gather(pool[1], batch)
        else:
            images, labels = batch
        if batch_fn is not None:  # on uint8 where possible: 4x less memory traffic
            images = batch_fn(images, epochs.fold(seed, 0))
        images = tf.cast(images, tf.float32)
        if not pixel_layers:  # else Keras layers run next, then `finish`
            images, labels = plan.finish(images, labels)
        return (images, labels, epochs.fold(seed, 1)) if keras_layers else (images, labels)

    passes = epochs.epoch_passes(
        config.seed, lambda key: _epoch_batches(plan, pool, buffer, key), plan.batches
    )
    ds = passes.map(train_map, num_parallel_calls=AUTOTUNE)
    if keras_layers:
        # Keras layers draw from stateful SeedGenerators: each batch sets their states
        # from its own seed (so the map runs in order), making them a function of it
        # (under the TensorFlow backend; under others the draws follow the batch order)
        def keras_map(images, labels, seed):
            epochs.reseed(states, seed)
            for layer in pixel_layers:
                images = layer(images, training=True)
            if pixel_layers:
                images, labels = plan.finish(images, labels)
            for layer in mix_layers:
                out = layer({"images": images, "labels": labels}, training=True)
                images, labels = out["images"], out["labels"]
            return images, labels

        ds = ds.map(keras_map)
    return epochs.with_counter(plan.with_options(ds.prefetch(AUTOTUNE)), passes)


def build_datasets(source: src.Source, config: DataConfig) -> Datasets:
    """Build :class:`Datasets` from a resolved :class:`~keras_resnet.data.sources.Source`.

    :func:`~keras_resnet.data.get_datasets` resolves the source named by
    ``config.dataset`` and calls this.

    Args:
        source: The resolved source.
        config: A :class:`~keras_resnet.data.DataConfig`.

    Returns:
        :class:`Datasets`.

    Example:
        >>> from keras_resnet.data import DataConfig, sources
        >>> ds = build_datasets(sources.load_digits_source(), DataConfig(batch_size=32))
        >>> ds.info.image_shape
        (8, 8, 1)
    """
    # a fixed split seed: the validation set does not change with the training seed
    train, validation = _split_validation(source, config.validation_fraction, 0)
    train, validation, test = _known_size(train), _known_size(validation), source.test
    if train.num_examples < config.batch_size:
        raise ValueError(
            f"`batch_size` is larger than the training split ({train.num_examples} examples) "
            f"of {source.name!r}. Received: batch_size={config.batch_size}"
        )
    plan = _plan(source, config, train)
    info = DatasetInfo(
        name=source.name,
        num_classes=source.num_classes,
        image_shape=(plan.size[0], plan.size[1], plan.out_channels),
        class_names=source.class_names,
        mean=plan.mean,
        std=plan.std,
        num_examples={
            "train": train.num_examples,
            "validation": validation.num_examples if validation is not None else 0,
            "test": test.num_examples if test is not None else 0,
        },
    )
    return Datasets(
        train=_train_pipeline(plan, train),
        validation=_eval_pipeline(plan, validation, "validation"),
        test=_eval_pipeline(plan, test, "test"),
        info=info,
    )
