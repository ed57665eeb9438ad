"""Optimizer, loss and metrics for ``model.compile`` from a :class:`TrainConfig`."""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet.optimizers import L2SGD
from keras_resnet.training.config import TrainConfig
from keras_resnet.training.schedules import make_schedule

# Anchor words of variables that get no weight decay: conv/dense biases, BN gamma/beta
# (He et al. 2015 decay the kernels; "bag of tricks" confirms no decay on BN/bias).
NO_DECAY_NAMES: tuple[str, ...] = ("bias", "gamma", "beta")


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of ``config`` with its learning-rate schedule.

    Weight decay applies to kernels only: biases and BN parameters are excluded by
    name. For ``"sgd"`` it is an L2 penalty added to the gradient (:class:`L2SGD`, as
    in the papers and PyTorch); ``"sgdw"``, ``"adamw"``, ``"adam"`` and ``"rmsprop"``
    use Keras' decoupled decay (``w -= lr * wd * w``). ``config.use_ema`` does not
    turn on the optimizer's own EMA (fixed momentum, trainable weights only, swapped
    in unconditionally): :func:`~keras_resnet.training.make_callbacks` adds
    :class:`~keras_resnet.training.ema.ModelEMA` instead.

    Args:
        config: The training configuration.
        steps_per_epoch: Optimizer steps per epoch, for epoch-defined schedules.

    Returns:
        A fresh ``keras.optimizers.Optimizer`` (build it in the strategy scope).

    Example:
        >>> opt = make_optimizer(TrainConfig(optimizer="adamw", learning_rate=1e-3), 10)
        >>> type(opt).__name__
        'AdamW'
        >>> type(make_optimizer(TrainConfig(), 10)).__name__, make_optimizer(TrainConfig(), 10).l2
        ('L2SGD', 0.0001)
    """
    common: dict[str, Any] = {
        "learning_rate": make_schedule(config, steps_per_epoch),  # checks config's type
        "weight_decay": config.weight_decay or None,
        "clipnorm": config.clipnorm,
    }
    sgd = {"momentum": config.momentum, "nesterov": config.nesterov}
    if config.optimizer == "sgd":
        opt = L2SGD(l2=config.weight_decay, **sgd, **dict(common, weight_decay=None))
    elif config.optimizer == "sgdw":
        opt = keras.optimizers.SGD(**sgd, **common)
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(**dict(common, weight_decay=config.weight_decay))
    elif config.optimizer == "adam":
        opt = keras.optimizers.Adam(**common)
    else:
        opt = keras.optimizers.RMSprop(momentum=config.momentum, **common)
    if config.weight_decay:
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return opt


def make_loss(config: TrainConfig, *, one_hot: bool = False, from_logits: bool = False) -> Any:
    """Cross-entropy loss with the configured label smoothing.

    Args:
        config: The training configuration (``label_smoothing``).
        one_hot: Labels are one-hot (required for label smoothing, which Keras only
            implements for categorical cross-entropy).
        from_logits: The model outputs logits instead of probabilities.

    Example:
        >>> type(make_loss(TrainConfig())).__name__
        'SparseCategoricalCrossentropy'
    """
    if config.label_smoothing and not one_hot:
        raise ValueError(
            "label smoothing needs one-hot labels (get_datasets(..., one_hot=True)). "
            f"Received: label_smoothing={config.label_smoothing}, one_hot=False"
        )
    if one_hot:
        return keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=config.label_smoothing
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def make_metrics(*, one_hot: bool = False, top_k: int | None = None) -> list[Any]:
    """Accuracy metrics named ``accuracy`` (and ``top{k}``) for sparse or one-hot labels.

    Args:
        one_hot: Labels are one-hot.
        top_k: Also report top-k accuracy (e.g. 5 for ImageNet).

    Example:
        >>> [m.name for m in make_metrics(top_k=5)]
        ['accuracy', 'top5']
    """
    if one_hot:
        metrics: list[Any] = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if top_k:
            metrics.append(keras.metrics.TopKCategoricalAccuracy(top_k, name=f"top{top_k}"))
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if top_k:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(top_k, name=f"top{top_k}"))
    return metrics


def compile_model(
    model: keras.Model,
    config: TrainConfig,
    *,
    steps_per_epoch: int,
    one_hot: bool = False,
    loss: Any = None,
    metrics: list[Any] | None = None,
) -> keras.Model:
    """Compile ``model`` with the optimizer, loss, metrics and XLA setting of ``config``.

    The one compile step of ``train()`` and the tuner. Call it inside the strategy
    and precision scopes the model was built in.

    Args:
        model: The model.
        config: The training configuration (optimizer, schedule, label smoothing,
            ``jit_compile``, ``steps_per_execution``).
        steps_per_epoch: Optimizer steps per epoch, for epoch-defined schedules.
        one_hot: Labels are one-hot.
        loss: Replaces :func:`make_loss` (e.g. binary cross-entropy for a 1-unit head).
        metrics: Replace :func:`make_metrics`.

    Returns:
        ``model``, compiled.

    Example:
        >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
        >>> compiled = compile_model(net, TrainConfig(optimizer="adamw"), steps_per_epoch=10)
        >>> type(compiled.optimizer).__name__
        'AdamW'
    """
    from keras_resnet.training.auto_choice import resolve_jit_compile

    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss if loss is not None else make_loss(config, one_hot=one_hot),
        metrics=metrics if metrics is not None else make_metrics(one_hot=one_hot),
        jit_compile=resolve_jit_compile(config.jit_compile),
        steps_per_execution=config.steps_per_execution,
    )
    return model
