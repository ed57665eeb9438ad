"""Optimizers Keras lacks, registered so that a saved model's optimizer loads.

Keras-only (every backend): ``import keras_resnet`` registers them.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_resnet import checks


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
        self.l2 = checks.check_float("l2", l2, min_value=0)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.l2 and self._use_weight_decay(variable):
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.l2, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "l2": self.l2}
