"""``DataConfig``: every input-pipeline option in one frozen, validated dataclass.

It sits beside :class:`keras_resnet.training.TrainConfig` and
:class:`keras_resnet.models.resnet.config.ResNetConfig`: :func:`keras_resnet.data.get_datasets`
takes one (or builds one from its keyword arguments), the CLI builds one from its
flags (:meth:`DataConfig.from_args`) and a run records it (:meth:`DataConfig.to_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from keras_resnet.data.augment import PRESETS
from keras_resnet.utils import checks
from keras_resnet.utils.config import Config

# Options that only a TFDS data set reads (an error elsewhere, never silently ignored).
TFDS_FIELDS = ("train_split", "validation_split", "test_split", "download", "tfds_read_config")
AUGMENT_OPTIONS = ("rand_augment", "random_erasing", "mixup", "cutmix")


def _augment_option(name: str, value: Any) -> bool | float | dict:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(
                f"`{name}` keys must be layer argument names. Received: {name}={value!r}"
            )
        return dict(value)
    try:
        return checks.check_float(name, value, min_value=0, min_open=True)
    except (TypeError, ValueError):
        raise ValueError(
            f"Augmentation option `{name}` must be True/False, a positive number or a dict "
            f"of layer arguments. Received: {name}={value!r}"
        ) from None


@dataclass(frozen=True)
class DataConfig(Config):
    """What :func:`keras_resnet.data.get_datasets` builds: source, batching, augmentation.

    Args:
        dataset: ``"digits"``, ``"idx:PATH"``, ``"dir:PATH"``,
            ``"cifar10:PATH"`` / ``"cifar100:PATH"`` / ``"cifar100_coarse:PATH"`` (the
            CIFAR files), a TFDS name (``"cifar10"``) or ``"tfds:NAME"`` (for arrays: the
            name recorded).
        batch_size: Global batch size (> 0).
        augment: Preset: ``"auto"``, ``"cifar"``, ``"imagenet"``, ``"mnist"``, ``"none"``.
        image_size: Output ``(height, width)`` (an int means a square), or None for
            the native size (224 for the imagenet preset on images of varying size).
        validation_fraction: Share of the training split held out, in ``[0, 1)``.
        seed: Seed of shuffling and augmentation (None: not reproducible).
        one_hot: float32 one-hot labels (forced on by ``mixup`` / ``cutmix``).
        cache: ``"auto"`` (in memory when it fits), True, False, or a file path prefix.
        shuffle_buffer: Shuffle buffer size (None: the whole split of in-memory arrays,
            up to 50,000 examples of other sources).
        drop_remainder: Drop the last partial training batch.
        channels: Output channels, 1 or 3 (grayscale repeated to RGB), or None.
        mean: Per-channel mean in [0, 1] pixel units (with ``std``), or None for the
            published statistics or those of the training split.
        std: Per-channel standard deviation in the same units.
        rand_augment: ``keras.layers.RandAugment``: True, a factor, or a dict of kwargs.
        random_erasing: ``keras.layers.RandomErasing``: probability/factor or kwargs.
        mixup: ``keras.layers.MixUp``: alpha or kwargs.
        cutmix: ``keras.layers.CutMix``: factor or kwargs.
        data_dir: TFDS data directory, or None.
        train_split: TFDS split string for training.
        validation_split: TFDS split used as validation instead of carving one.
        test_split: TFDS split for testing (None: ``test``, else ``validation``).
        download: Let TFDS download and prepare the data set.
        tfds_read_config: A ``tfds.ReadConfig`` for ``as_dataset`` (not JSON: a config
            holding one cannot be written by :meth:`to_dict`).

    Example:
        >>> cfg = DataConfig("digits", batch_size=64, image_size=16)
        >>> cfg.image_size, cfg.replace(seed=1).seed
        ((16, 16), 1)
        >>> DataConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    dataset: str = "digits"
    batch_size: int = 32
    augment: str = "auto"
    image_size: tuple[int, int] | None = None
    validation_fraction: float = 0.1
    seed: int | None = None
    one_hot: bool = False
    cache: bool | str = "auto"
    shuffle_buffer: int | None = None
    drop_remainder: bool = True
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    rand_augment: bool | float | dict = False
    random_erasing: bool | float | dict = False
    mixup: bool | float | dict = False
    cutmix: bool | float | dict = False
    data_dir: str | None = None
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    download: bool = True
    tfds_read_config: Any = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        checks.check_str("dataset", self.dataset)
        put("batch_size", checks.check_int("batch_size", self.batch_size, min_value=1))
        checks.check_choice("augment", self.augment, PRESETS)
        put("image_size", checks.check_image_size("image_size", self.image_size))
        put(
            "validation_fraction",
            checks.check_rate("validation_fraction", self.validation_fraction),
        )
        put("seed", checks.check_int("seed", self.seed, allow_none=True))
        checks.check_bool("one_hot", self.one_hot)
        if self.cache is None:
            put("cache", "auto")
        elif not isinstance(self.cache, bool):
            checks.check_str("cache", self.cache)  # "auto" or a path prefix
        put(
            "shuffle_buffer",
            checks.check_int("shuffle_buffer", self.shuffle_buffer, min_value=1, allow_none=True),
        )
        checks.check_bool("drop_remainder", self.drop_remainder)
        if self.channels is not None:
            checks.check_choice("channels", self.channels, (1, 3))
        if (self.mean is None) != (self.std is None):
            raise ValueError(
                "Pass both `mean` and `std`, or neither. "
                f"Received: mean={self.mean!r}, std={self.std!r}"
            )
        put("mean", checks.check_floats("mean", self.mean, allow_none=True))
        put("std", checks.check_floats("std", self.std, allow_none=True))
        if self.std is not None and min(self.std, default=0) <= 0:
            raise ValueError(
                f"`std` must have one positive value per channel. Received: std={self.std!r}"
            )
        for name in AUGMENT_OPTIONS:
            put(name, _augment_option(name, getattr(self, name)))
        checks.check_str("data_dir", self.data_dir, allow_none=True)
        checks.check_str("train_split", self.train_split)
        checks.check_str("validation_split", self.validation_split, allow_none=True)
        checks.check_str("test_split", self.test_split, allow_none=True)
        checks.check_bool("download", self.download)

    @property
    def mixes(self) -> bool:
        """Whether MixUp or CutMix is on (which forces one-hot labels).

        Example:
            >>> DataConfig(mixup=0.2).mixes
            True
        """
        return bool(self.mixup or self.cutmix)

    def tfds_options_set(self) -> list[str]:
        """The TFDS-only fields that differ from their defaults.

        Example:
            >>> DataConfig(test_split="train[:10]").tfds_options_set()
            ['test_split']
        """
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return [n for n in TFDS_FIELDS if getattr(self, n) != defaults[n]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict of every field (what a run folder records).

        Example:
            >>> DataConfig(image_size=8).to_dict()["image_size"]
            [8, 8]
        """
        if self.tfds_read_config is not None:
            raise TypeError(
                "`tfds_read_config` holds a tfds.ReadConfig, which cannot be written as JSON. "
                f"Received: tfds_read_config={self.tfds_read_config!r}"
            )
        return super().to_dict()

    @classmethod
    def from_args(cls, args: Any, **overrides: Any) -> DataConfig:
        """Build from parsed command-line flags (an ``argparse.Namespace``).

        Every attribute of ``args`` named like a field (``dataset``, ``batch_size``,
        ``augment``, ``seed``, ``data_dir``, ``image_size``, ...) and not None is used;
        ``overrides`` (e.g. a config file's ``"data"`` section) come on top.

        Args:
            args: The parsed flags.
            **overrides: Field values that replace the flags'.

        Example:
            >>> import argparse
            >>> args = argparse.Namespace(dataset="digits", seed=3, data_dir=None, epochs=2)
            >>> DataConfig.from_args(args, batch_size=8)
            ... # doctest: +ELLIPSIS
            DataConfig(dataset='digits', batch_size=8, augment='auto', ..., seed=3, ...)
        """
        values = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None
        }
        checks.check_fields(cls.__name__, overrides, [f.name for f in dataclasses.fields(cls)])
        return cls(**dict(values, **overrides))
