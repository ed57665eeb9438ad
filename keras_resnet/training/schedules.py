"""The learning-rate schedule of a recipe: Keras' own, or :mod:`keras_resnet.optimizers`.

``WarmUp`` and ``EpochStepDecay`` live in :mod:`keras_resnet.optimizers` (Keras only,
registered by ``import keras_resnet``).
"""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet.optimizers import EpochStepDecay, WarmUp
from keras_resnet.training.config import TrainConfig
from keras_resnet.utils.checks import check_int

__all__ = ["EpochStepDecay", "WarmUp", "make_schedule"]


def make_schedule(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule | float:
    """The learning-rate schedule of ``config`` for a data set of ``steps_per_epoch``.

    Args:
        config: The training configuration (``schedule``, ``learning_rate``,
            ``decay_at``, ``warmup_epochs``, ``epochs``, ...).
        steps_per_epoch: Optimizer steps per epoch (global batches per epoch).

    Returns:
        A serializable schedule, or a float for a constant rate without warm-up.

    Example:
        >>> lr = make_schedule(TrainConfig(epochs=4, decay_at=(0.5,)), steps_per_epoch=10)
        >>> round(float(lr(0)), 4), round(float(lr(25)), 4)
        (0.1, 0.01)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"`config` must be a TrainConfig. Received: {type(config).__name__}")
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, min_value=1)
    if config.head_epochs:
        from keras_resnet.training.fine_tune import fine_tune_schedule

        return fine_tune_schedule(config, steps_per_epoch)
    peak = config.peak_learning_rate
    if config.schedule == "constant":
        schedule: Any = peak
    elif config.schedule == "step":
        schedule = EpochStepDecay(
            peak,
            boundaries=[f * config.epochs for f in config.decay_at],
            steps_per_epoch=steps_per_epoch,
            factor=config.decay_factor,
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            peak, decay_steps=config.epochs * steps_per_epoch, alpha=config.min_lr_fraction
        )
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    return WarmUp(schedule, warmup_steps=warmup_steps) if warmup_steps else schedule
