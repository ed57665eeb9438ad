"""``TrainConfig``: every training knob in one frozen, validated dataclass; named recipes.

Recipes (the papers are cited in each entry):

* ``he2015_cifar``: He et al. 2015 Sec. 4.2, SGD 0.1 momentum 0.9, weight decay 1e-4
  on kernels only, batch 128, learning rate / 10 at 50% and 75% of training (32k and
  48k of 64k iterations).
* ``imagenet_step``: Goyal et al. 2017 / He et al. 2015, lr 0.1 x batch / 256, / 10 at
  epochs 30, 60, 80 of 90 (kept as fractions of training), 5-epoch linear warm-up.
* ``cosine``: ResNet-RS / timm practice, warm-up + cosine decay, label smoothing 0.1,
  optional EMA of the weights (``use_ema=True``).
* ``fast``: the most accuracy per CPU-minute on small data sets (digits, MNIST),
  chosen by measurement (``benchmarks/train_digits.py``; see docs/training.md).
* ``digits``: ``fast`` made reliable on the 360-image digits test split: images
  upsampled to 16x16, 50 epochs, small shifts (``augment="mnist"``), label smoothing
  0.1, an EMA of the weights, and all training images (no validation split). The
  default of ``python -m keras_resnet train`` and ``train()`` on ``"digits"``
  (:func:`default_recipe`); measured figures are in docs/training.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from keras_resnet.data.augment import PRESETS
from keras_resnet.data.config import DataConfig
from keras_resnet.utils import checks
from keras_resnet.utils.config import Config

OPTIMIZERS: tuple[str, ...] = ("sgd", "sgdw", "adamw", "adam", "rmsprop")
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")
PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES: tuple[str, ...] = ("auto", "none", "mirrored", "multi_worker", "tpu")
MONITORS: tuple[str, ...] = ("val_accuracy", "val_loss", "accuracy", "loss")


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything that defines a training run except the model and the data set.

    Args:
        recipe: Name of the recipe these values came from (informational).
        optimizer: One of ``OPTIMIZERS``: ``"sgd"`` decays weights as an L2 penalty in
            the gradient, before momentum (the papers', Caffe's and PyTorch's SGD);
            ``"sgdw"`` is SGD with Keras' decoupled decay (``w -= lr * wd * w``),
            which with momentum 0.9 is about ten times weaker for the same number;
            ``"adamw"``, ``"adam"`` and ``"rmsprop"`` decay the decoupled way too.
        learning_rate: Peak learning rate (before ``scale_lr_with_batch``).
        scale_lr_with_batch: Use ``learning_rate * batch_size / 256`` (Goyal et al.).
        momentum: SGD / RMSprop momentum.
        nesterov: Nesterov momentum for ``"sgd"`` / ``"sgdw"``.
        weight_decay: Weight decay on convolution and dense kernels only (biases, BN
            gamma/beta are excluded); its kind follows ``optimizer``.
        schedule: ``"constant"``, ``"step"`` (multiply by ``decay_factor`` at each
            fraction of training in ``decay_at``) or ``"cosine"``.
        decay_at: For ``"step"``: fractions of the total epochs, in (0, 1).
        decay_factor: For ``"step"``: multiplier at each boundary.
        min_lr_fraction: For ``"cosine"``: final learning rate as a fraction of the peak.
        warmup_epochs: Linear warm-up length in epochs (may be fractional).
        epochs: Number of epochs (> 0).
        batch_size: Global batch size (> 0), split across replicas.
        label_smoothing: In [0, 1).
        use_ema: Keep an exponential moving average of the weights and BN
            statistics (:class:`~keras_resnet.training.ema.ModelEMA`, with a decay
            warm-up); at the end the run keeps whichever of the raw or averaged
            weights validates better, and says which.
        ema_momentum: EMA decay in (0, 1), reached after the warm-up.
        clipnorm: Optional gradient clipping by norm.
        augment: Augmentation preset passed to ``get_datasets``.
        image_size: Training and evaluation resolution ``(height, width)`` (an int
            means a square): images are resized to it. None: the data set's own size
            (or a ``data_kwargs`` ``image_size``).
        validation_fraction: Share of the training split held out for validation.
        monitor: Metric for the best checkpoint / early stopping.
        early_stopping_patience: Epochs without improvement before stopping
            (``0`` disables early stopping); the best weights are restored.
        precision: One of ``PRECISIONS``; ``"auto"`` is resolved by
            :func:`keras_resnet.training.resolve_precision`.
        jit_compile: ``True``, ``False`` or ``"auto"`` (on CPU: no XLA on TensorFlow,
            measured slower; ``jax.jit`` on JAX; eager on PyTorch; on accelerators: the
            measured fastest).
        strategy: One of ``STRATEGIES``.
        seed: Random seed for weights, shuffling and augmentation (``None`` = random).
        tensorboard: Write TensorBoard logs.
        steps_per_execution: Training steps per ``tf.function`` call.
        head_epochs: Fine-tuning (:mod:`keras_resnet.training.fine_tune`): epochs that
            train only the classifier, backbone frozen; ``0`` trains everything
            throughout (no phases).
        unfreeze: Fine-tuning phase 2: ``"all"`` or the number of last stages trained.
        backbone_lr_scale: Fine-tuning phase 2: peak learning rate as a fraction of
            ``learning_rate`` (warm-up over ``warmup_epochs``, then cosine decay).

    Example:
        >>> cfg = TrainConfig(epochs=3, batch_size=32)
        >>> cfg.replace(epochs=5).epochs
        5
    """

    recipe: str | None = None
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    scale_lr_with_batch: bool = False
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"
    decay_at: tuple[float, ...] = (0.5, 0.75)
    decay_factor: float = 0.1
    min_lr_fraction: float = 0.0
    warmup_epochs: float = 0.0
    epochs: int = 30
    batch_size: int = 128
    label_smoothing: float = 0.0
    use_ema: bool = False
    ema_momentum: float = 0.99
    clipnorm: float | None = None
    augment: str = "auto"
    image_size: tuple[int, int] | None = None
    validation_fraction: float = 0.1
    monitor: str = "val_accuracy"
    early_stopping_patience: int = 0
    precision: str = "auto"
    jit_compile: bool | str = "auto"
    strategy: str = "auto"
    seed: int | None = 0
    tensorboard: bool = True
    steps_per_execution: int = 1
    head_epochs: int = 0
    unfreeze: int | str = "all"
    backbone_lr_scale: float = 0.1

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        def number(name: str, **bounds: Any) -> None:
            put(name, checks.check_float(name, getattr(self, name), **bounds))

        checks.check_str("recipe", self.recipe, allow_none=True)
        checks.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.check_choice("schedule", self.schedule, SCHEDULES)
        checks.check_choice("precision", self.precision, PRECISIONS)
        checks.check_choice("strategy", self.strategy, STRATEGIES)
        checks.check_choice("monitor", self.monitor, MONITORS)
        checks.check_choice("augment", self.augment, PRESETS)
        checks.check_choice("jit_compile", self.jit_compile, (True, False, "auto"))
        for name in ("scale_lr_with_batch", "nesterov", "use_ema", "tensorboard"):
            checks.check_bool(name, getattr(self, name))
        for name in ("epochs", "batch_size", "steps_per_execution"):
            checks.check_int(name, getattr(self, name), min_value=1)
        checks.check_int("early_stopping_patience", self.early_stopping_patience, min_value=0)
        put("seed", checks.check_int("seed", self.seed, allow_none=True))
        put("image_size", checks.check_image_size("image_size", self.image_size))
        number("learning_rate", min_value=0, min_open=True)
        rates = ("momentum", "weight_decay", "min_lr_fraction", "label_smoothing")
        for name in (*rates, "validation_fraction"):
            put(name, checks.check_rate(name, getattr(self, name)))
        put("decay_factor", checks.check_rate("decay_factor", self.decay_factor, exclude_zero=True))
        number("ema_momentum", min_value=0, max_value=1, min_open=True, max_open=True)
        number("warmup_epochs", min_value=0, max_value=self.epochs)
        number("clipnorm", min_value=0, min_open=True, allow_none=True)
        put("decay_at", checks.check_floats("decay_at", self.decay_at))
        if any(not 0.0 < x < 1.0 for x in self.decay_at) or list(self.decay_at) != sorted(
            self.decay_at
        ):
            raise ValueError(
                "`decay_at` must be increasing fractions of training in (0, 1). "
                f"Received: decay_at={self.decay_at!r}"
            )
        self._check_fine_tune()

    def _check_fine_tune(self) -> None:
        h = checks.check_int("head_epochs", self.head_epochs, min_value=0)
        if h >= self.epochs:
            raise ValueError(
                "`head_epochs` must be an integer in [0, epochs). "
                f"Received: head_epochs={h!r}, epochs={self.epochs!r}"
            )
        u = self.unfreeze
        if u != "all" and (isinstance(u, bool) or not isinstance(u, int) or u < 0):
            raise ValueError(
                f"`unfreeze` must be 'all' or an integer >= 0 (stages). Received: unfreeze={u!r}"
            )
        checks.check_rate(
            "backbone_lr_scale", self.backbone_lr_scale, include_one=True, exclude_zero=True
        )
        if h and self.warmup_epochs > self.epochs - h:
            raise ValueError(
                "`warmup_epochs` (of fine-tuning phase 2) must not exceed epochs - head_epochs. "
                f"Received: warmup_epochs={self.warmup_epochs!r}, head_epochs={h!r}, "
                f"epochs={self.epochs!r}"
            )

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate after the optional linear batch-size scaling.

        Example:
            >>> TrainConfig(learning_rate=0.1, batch_size=512, scale_lr_with_batch=True
            ...             ).peak_learning_rate
            0.2
        """
        scale = self.batch_size / 256 if self.scale_lr_with_batch else 1.0
        return float(self.learning_rate) * scale

    def monitor_for(self, validation: Any) -> str:
        """``monitor``, less its ``val_`` prefix when there is no ``validation`` data.

        Args:
            validation: The validation data, or ``None``.

        Example:
            >>> TrainConfig().monitor_for(None), TrainConfig().monitor_for([1])
            ('accuracy', 'val_accuracy')
        """
        return self.monitor if validation is not None else self.monitor.removeprefix("val_")

    def data_config(self, dataset: str | DataConfig, **fields: Any) -> DataConfig:
        """The :class:`~keras_resnet.data.DataConfig` a run with this recipe trains on.

        The recipe owns the batch size, augmentation preset, validation fraction and
        seed (and one-hot labels when ``label_smoothing > 0``, the image size when it
        sets one): they replace those of ``dataset``; ``fields`` set the other data
        options (``data_dir``, ``cache``, ``mixup``, ...).

        Args:
            dataset: A data-set name or a ``DataConfig``.
            **fields: Other ``DataConfig`` fields; the recipe-owned ones are refused.

        Example:
            >>> cfg = get_recipe("digits").data_config("digits", cache=False)
            >>> cfg.batch_size, cfg.augment, cfg.image_size, cfg.validation_fraction
            (64, 'mnist', (16, 16), 0.0)
        """
        owned = {
            "batch_size": self.batch_size,
            "augment": self.augment,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
        }
        if self.image_size is not None:
            owned["image_size"] = self.image_size
        clash = sorted(set(fields) & set(owned))
        if clash:
            raise ValueError(
                f"{', '.join(clash)} come from the TrainConfig (the recipe), not the data "
                f"options. Received: " + ", ".join(f"{k}={fields[k]!r}" for k in clash)
            )
        base = dataset if isinstance(dataset, DataConfig) else DataConfig(dataset=dataset)
        return base.replace(**owned, one_hot=base.one_hot or self.label_smoothing > 0, **fields)


# Recipes are TrainConfig fields that differ from the defaults, which are He et al.
# 2015's CIFAR settings (SGD, learning rate 0.1, momentum 0.9, weight decay 1e-4,
# batch 128, x0.1 steps at 50 % and 75 % of training); related recipes derive.
_RECIPES: dict[str, dict[str, Any]] = {"he2015_cifar": dict(epochs=164)}
_RECIPES["imagenet_step"] = dict(
    scale_lr_with_batch=True,
    batch_size=256,
    decay_at=(30 / 90, 60 / 90, 80 / 90),
    warmup_epochs=5,
    epochs=90,
)
_RECIPES["cosine"] = dict(
    optimizer="sgdw",
    nesterov=True,
    weight_decay=5e-5,
    schedule="cosine",
    warmup_epochs=5,
    label_smoothing=0.1,
    epochs=200,
)
# Chosen by benchmarks/train_digits.py (docs/training.md): a short warm-up then
# cosine to zero with Nesterov SGD reached the highest digits accuracy per minute
# of the candidates measured; batch 64 gives more updates per epoch on ~1.5k images.
_RECIPES["fast"] = dict(
    _RECIPES["cosine"],
    weight_decay=5e-4,
    batch_size=64,
    warmup_epochs=1,
    label_smoothing=0.0,
    epochs=15,
)
# A separate recipe rather than a change to ``fast``: the shift augmentation suits
# small centred grey-scale digits only, and ``fast`` stays the 15-epoch recipe the
# MNIST benchmark and ``tune`` use. The 8x8 digits are upsampled to 16x16: resnet20's
# stages then run at 16, 8 and 4 pixels instead of 8, 4 and 2, which narrowed the
# spread between seeds, and 50 epochs at 16x16 take the time of 100 at 8x8. All
# training images, no validation split: the recipe has no early stopping to feed.
# Measured accuracy over seeds, and how the values were chosen: docs/training.md.
_RECIPES["digits"] = dict(
    _RECIPES["fast"],
    label_smoothing=0.1,
    use_ema=True,
    augment="mnist",
    image_size=(16, 16),
    epochs=50,
    validation_fraction=0.0,
)

# Fine-tuning pretrained weights (keras_resnet.training.fine_tune; docs/pretrained.md):
# Adam for the fresh head (robust to its scale), then the backbone at a tenth of that
# with a one-epoch warm-up and cosine decay, BN kept in inference mode.
_RECIPES["fine_tune"] = dict(
    optimizer="adam",
    learning_rate=1e-3,
    weight_decay=0.0,
    batch_size=32,
    schedule="cosine",
    warmup_epochs=1,
    epochs=20,
    head_epochs=5,
    unfreeze="all",
    backbone_lr_scale=0.1,
)

# Data set name -> recipe used when none is given (everything else: ``fast``).
_DEFAULT_RECIPES: dict[str, str] = {"digits": "digits"}


def default_recipe(dataset: Any) -> str:
    """The recipe ``train()`` and ``python -m keras_resnet train`` use when none is given.

    Args:
        dataset: A data set name (``"digits"``, ``"cifar10"``, ...) or anything else
            (e.g. a ``Datasets`` tuple), which gets ``"fast"``.

    Returns:
        ``"digits"`` for the digits data set, ``"fast"`` otherwise.

    Example:
        >>> default_recipe("digits"), default_recipe("cifar10")
        ('digits', 'fast')
    """
    return _DEFAULT_RECIPES.get(dataset, "fast") if isinstance(dataset, str) else "fast"


def list_recipes() -> list[str]:
    """Names accepted by :func:`get_recipe`.

    Example:
        >>> "he2015_cifar" in list_recipes()
        True
    """
    return sorted(_RECIPES)


def get_recipe(name: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of recipe ``name``, with fields overridden.

    Args:
        name: One of :func:`list_recipes`.
        **overrides: ``TrainConfig`` fields to change (e.g. ``epochs=10``).

    Returns:
        A validated ``TrainConfig`` whose ``recipe`` field is ``name``.

    Example:
        >>> get_recipe("imagenet_step", batch_size=512).peak_learning_rate
        0.2
    """
    checks.check_choice("recipe", name, list_recipes())
    return TrainConfig(recipe=name).replace(**dict(_RECIPES[name], **overrides))


def resolve_config(config: TrainConfig | str | None, dataset: Any) -> TrainConfig:
    """The ``TrainConfig`` of a run: ``config`` itself, a recipe by name, or (``None``)
    the :func:`default_recipe` of ``dataset``.

    Example:
        >>> resolve_config(None, "digits").recipe, resolve_config("fast", "digits").epochs
        ('digits', 15)
        >>> resolve_config({"epochs": 3}, "digits")
        Traceback (most recent call last):
        TypeError: `config` must be a TrainConfig, a recipe name or None. Received: <class 'dict'>
    """
    if config is None:
        config = get_recipe(default_recipe(dataset))
    elif isinstance(config, str):
        config = get_recipe(config)
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"`config` must be a TrainConfig, a recipe name or None. Received: {type(config)}"
        )
    return config


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON run-configuration file (``TrainConfig`` fields plus ``model``,
    ``dataset``, ``recipe`` and ``model_kwargs``).

    Args:
        path: Path of the JSON file.

    Returns:
        The parsed dict.

    Example:
        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        ...     json.dump({"epochs": 2}, f)
        >>> load_config_file(f.name)
        {'epochs': 2}
    """
    checks.check_path("config", path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`--config` file not found. Received: {str(path)!r}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            kind = "UTF-8 text" if isinstance(err, UnicodeDecodeError) else "valid JSON"
            raise ValueError(f"`--config` file {str(path)!r} is not {kind}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"`--config` file {str(path)!r} must hold a JSON object. "
            f"Received: {type(data).__name__}"
        )
    return data
