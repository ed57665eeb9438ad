"""The optimizer and learning-rate schedules Keras lacks, registered for ``.keras`` saving.

Keras-only (every backend): ``import keras_resnet`` registers them, so a saved model's
optimizer loads anywhere. Keras' ``SGD(weight_decay=...)`` is decoupled decay;
:class:`L2SGD` is the papers' L2 penalty. Keras provides cosine decay
(``keras.optimizers.schedules.CosineDecay``) and step-indexed piecewise constants; it
lacks a warm-up wrapper around an arbitrary schedule (:class:`WarmUp`), step decay at
*epoch* boundaries (:class:`EpochStepDecay`) and a switch from one schedule to another
(fine-tuning's two phases, :class:`TwoPhase`), so those are written here.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet.utils.checks import check_float, check_int, check_rate


@keras.saving.register_keras_serializable(package="keras_resnet")
class L2SGD(keras.optimizers.SGD):
    """SGD whose weight decay is an L2 penalty: ``l2 * w`` joins the gradient before momentum.

    This is the weight decay of He et al. (2015), Goyal et al. (2017), Caffe and
    ``torch.optim.SGD(weight_decay=...)``. Keras' own ``SGD(weight_decay=...)`` is the
    decoupled kind (``w -= lr * wd * w`` after the step, outside momentum); with
    momentum 0.9 the same number decays about ten times less, so a paper's 1e-4
    needs this class, which Keras lacks. Variables named by
    ``exclude_from_weight_decay`` get no penalty, as with Keras' decay.

    Args:
        l2: The penalty's coefficient (the gradient of ``l2 / 2 * ||w||^2``), >= 0.
        **kwargs: ``keras.optimizers.SGD``'s arguments (``learning_rate``,
            ``momentum``, ``nesterov``, ``clipnorm``, ...; ``weight_decay`` would add
            the decoupled kind on top).

    Example:
        >>> w = keras.Variable([1.0, -2.0], name="kernel")
        >>> opt = L2SGD(l2=0.5, learning_rate=0.1)
        >>> opt.apply([keras.ops.zeros(2)], [w])  # the penalty alone: w -= 0.1 * 0.5 * w
        >>> [round(float(v), 3) for v in w.numpy()]
        [0.95, -1.9]
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l2 = check_float("l2", l2, min_value=0)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.l2 and self._use_weight_decay(variable):
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.l2, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "l2": self.l2}


def _rate(schedule: Any, step: Any) -> Any:
    """The float32 learning rate of a schedule (or a constant) at ``step``."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        schedule = schedule(step)
    return ops.cast(schedule, "float32")


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
        check_int("warmup_steps", warmup_steps, min_value=0)
        if not isinstance(after, (keras.optimizers.schedules.LearningRateSchedule, int, float)):
            raise TypeError(
                "`after` must be a LearningRateSchedule or a float. "
                f"Received: after={type(after).__name__}"
            )
        self.after = after
        self.warmup_steps = warmup_steps

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        base = _rate(self.after, step)
        if self.warmup_steps == 0:
            return base
        return base * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))

    def get_config(self) -> dict[str, Any]:
        # A float is serialized (and deserialized) as itself.
        return {
            "after": keras.saving.serialize_keras_object(self.after),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WarmUp:
        return cls(keras.saving.deserialize_keras_object(config["after"]), config["warmup_steps"])


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
        check_int("steps_per_epoch", steps_per_epoch, min_value=1)
        boundaries = [float(b) for b in boundaries]
        if boundaries != sorted(boundaries) or any(b < 0 for b in boundaries):
            raise ValueError(
                f"`boundaries` must be increasing epochs >= 0. Received: boundaries={boundaries!r}"
            )
        check_rate("factor", factor, include_one=True, exclude_zero=True)
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


@keras.saving.register_keras_serializable(package="keras_resnet")
class TwoPhase(keras.optimizers.schedules.LearningRateSchedule):
    """``first`` for ``switch_step`` steps, then ``second`` counted from the switch.

    Args:
        first: Phase-1 rate (float or schedule).
        second: Phase-2 schedule (or float), called with ``step - switch_step``.
        switch_step: Optimizer step where phase 2 starts.

    Example:
        >>> lr = TwoPhase(1e-3, 1e-4, switch_step=10)
        >>> round(float(lr(9)), 6), round(float(lr(10)), 6)
        (0.001, 0.0001)
    """

    def __init__(self, first: Any, second: Any, switch_step: int) -> None:
        self.first = first
        self.second = second
        self.switch_step = int(switch_step)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        later = ops.maximum(step - float(self.switch_step), 0.0)
        return ops.where(
            step < float(self.switch_step), _rate(self.first, step), _rate(self.second, later)
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "first": keras.saving.serialize_keras_object(self.first),
            "second": keras.saving.serialize_keras_object(self.second),
            "switch_step": self.switch_step,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TwoPhase:
        deserialize = keras.saving.deserialize_keras_object
        return cls(
            deserialize(config["first"]), deserialize(config["second"]), config["switch_step"]
        )
