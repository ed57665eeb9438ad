"""Learning-rate schedules defined in epochs or steps, serializable with the model.

Keras provides cosine decay (``keras.optimizers.schedules.CosineDecay``) and
step-indexed piecewise constants; it lacks a warm-up wrapper around an arbitrary
schedule and step decay at *epoch* boundaries, so those two are written here as
``LearningRateSchedule`` subclasses registered for ``.keras`` saving.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet.training.config import TrainConfig


@keras.saving.register_keras_serializable(package="keras_resnet")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up in front of another schedule (Goyal et al. 2017).

    ``lr(step) = after(step) * min(1, (step + 1) / warmup_steps)``: the ramp multiplies
    the wrapped schedule, so its own boundaries stay where they were.

    Args:
        after: The schedule (or a constant float) to warm up into.
        warmup_steps: Length of the ramp in optimizer steps (>= 0).

    Example:
        >>> lr = WarmUp(0.1, warmup_steps=10)
        >>> round(float(lr(4)), 4), round(float(lr(20)), 4)
        (0.05, 0.1)
    """

    def __init__(self, after: Any, warmup_steps: int) -> None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(
                f"`warmup_steps` must be an integer >= 0. Received: warmup_steps={warmup_steps!r}"
            )
        if not (
            isinstance(after, keras.optimizers.schedules.LearningRateSchedule)
            or isinstance(after, (int, float))
        ):
            raise TypeError(
                "`after` must be a LearningRateSchedule or a float. "
                f"Received: after={type(after).__name__}"
            )
        self.after = after
        self.warmup_steps = warmup_steps

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        if isinstance(self.after, keras.optimizers.schedules.LearningRateSchedule):
            base = ops.cast(self.after(step), "float32")
        else:
            base = ops.cast(self.after, "float32")
        if self.warmup_steps == 0:
            return base
        ramp = ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return base * ramp

    def get_config(self) -> dict[str, Any]:
        after = self.after
        if isinstance(after, keras.optimizers.schedules.LearningRateSchedule):
            after = keras.saving.serialize_keras_object(after)
        return {"after": after, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WarmUp:
        config = dict(config)
        if isinstance(config["after"], dict):
            config["after"] = keras.saving.deserialize_keras_object(config["after"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_resnet")
class EpochStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Multiply the learning rate by ``factor`` at each epoch boundary.

    He et al. 2015 (CIFAR: / 10 at 50% and 75% of training) and the ImageNet step
    recipe (/ 10 at epochs 30, 60, 80). Boundaries are in epochs (may be fractional);
    the epoch is ``step / steps_per_epoch``.

    Args:
        initial_learning_rate: Learning rate before the first boundary (> 0).
        boundaries: Increasing epoch numbers.
        steps_per_epoch: Optimizer steps per epoch (> 0).
        factor: Multiplier applied at each boundary, in (0, 1].

    Example:
        >>> lr = EpochStepDecay(0.1, boundaries=[2, 3], steps_per_epoch=10)
        >>> [round(float(lr(s)), 4) for s in (0, 19, 20, 30)]
        [0.1, 0.1, 0.01, 0.001]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        boundaries: list[float] | tuple[float, ...],
        steps_per_epoch: int,
        factor: float = 0.1,
    ) -> None:
        if not initial_learning_rate > 0:
            raise ValueError(
                "`initial_learning_rate` must be > 0. "
                f"Received: initial_learning_rate={initial_learning_rate!r}"
            )
        if not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ValueError(
                f"`steps_per_epoch` must be a positive integer. Received: {steps_per_epoch!r}"
            )
        boundaries = [float(b) for b in boundaries]
        if boundaries != sorted(boundaries) or any(b < 0 for b in boundaries):
            raise ValueError(
                f"`boundaries` must be increasing epochs >= 0. Received: boundaries={boundaries!r}"
            )
        if not 0 < factor <= 1:
            raise ValueError(f"`factor` must be in (0, 1]. Received: factor={factor!r}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.boundaries = boundaries
        self.steps_per_epoch = steps_per_epoch
        self.factor = float(factor)

    def __call__(self, step: Any) -> Any:
        epoch = ops.cast(step, "float32") / float(self.steps_per_epoch)
        passed = ops.zeros((), "float32")
        for boundary in self.boundaries:
            passed = passed + ops.cast(ops.greater_equal(epoch, boundary), "float32")
        return self.initial_learning_rate * ops.power(self.factor, passed)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.boundaries),
            "steps_per_epoch": self.steps_per_epoch,
            "factor": self.factor,
        }


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
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int):
        raise TypeError(f"`steps_per_epoch` must be an int. Received: {steps_per_epoch!r}")
    if steps_per_epoch < 1:
        raise ValueError(f"`steps_per_epoch` must be >= 1. Received: {steps_per_epoch!r}")
    if config.head_epochs:
        from keras_resnet.training.fine_tune import fine_tune_schedule

        return fine_tune_schedule(config, steps_per_epoch)
    peak = config.peak_learning_rate
    total_steps = config.epochs * steps_per_epoch
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
            peak, decay_steps=total_steps, alpha=config.min_lr_fraction
        )
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup_steps:
        return WarmUp(schedule, warmup_steps=warmup_steps)
    return schedule
