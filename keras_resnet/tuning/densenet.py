"""``DenseNetHyperModel``: KerasTuner over the DenseNet builder (growth, depth, compression).

The sibling of :class:`keras_resnet.ResNetHyperModel` for the ``"densenet"`` family:
it declares its space with KerasTuner's own ``hp.*`` calls and maps it onto fields of
:class:`~keras_resnet.models.densenet.builder.DenseNetConfig` of the same names; building, cost
limits and ``fit`` are :class:`~keras_resnet.tuning.base.ZooHyperModel`'s.
"""

from __future__ import annotations

from typing import Any

import keras_tuner as kt

from keras_resnet.models.densenet.builder import DenseNetConfig
from keras_resnet.training import TrainConfig
from keras_resnet.tuning.base import ZooHyperModel


class DenseNetHyperModel(ZooHyperModel):
    """A KerasTuner search space over DenseNets (Huang et al. 2017) and the learning rate.

    Hyperparameters (defaults reproduce ``baseline``, so ``build(HyperParameters())``
    is ``create_model(baseline, input_shape=..., classes=...)``):

    - ``growth_rate``: ``hp.Int`` 4-48, step 4;
    - ``depth_multiplier``: ``hp.Float`` 0.25-2, step 0.25, scales every dense
      block's number of layers (at least one each);
    - ``compression``: ``hp.Float`` 0.25-1, step 0.25 (theta of the transitions);
    - ``bottleneck``: ``hp.Boolean`` (1x1 bottleneck of 4k channels, DenseNet-B);
    - ``dropout``: ``hp.Float`` 0-0.3, step 0.1;
    - ``learning_rate``: ``hp.Float`` 1e-3-0.4, log sampling (the recipe's peak rate).

    Builds, cost limits (``max_macs``, ``max_trial_seconds``), binary heads and ``fit``
    are :class:`~keras_resnet.tuning.base.ZooHyperModel`'s, as for ``ResNetHyperModel``.

    Arguments are :class:`~keras_resnet.tuning.base.ZooHyperModel`'s; ``baseline``
    defaults to ``"densenet_bc100_k12"``, and ``search_space`` is a function ``space(hp)``
    called first: what it declares wins (e.g. ``hp.Fixed("bottleneck", True)``).

    Example:
        >>> import keras_tuner
        >>> hm = DenseNetHyperModel((16, 16, 1), 10, baseline="_tiny_densenet")
        >>> model = hm.build(keras_tuner.HyperParameters())
        >>> tuple(model.output.shape), model.get_layer("stage1_layer1_conv2").filters
        ((None, 10), 4)
    """

    family = "densenet"
    default_baseline = "densenet_bc100_k12"

    def _prepare(self, search_space: Any) -> None:
        self._base = DenseNetConfig(**self._record.arch)
        self._space = search_space

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declare the space on ``hp``: the ``search_space`` function, then the rest.

        Example:
            >>> import keras_tuner
            >>> hp = keras_tuner.HyperParameters()
            >>> DenseNetHyperModel((32, 32, 3), 10).declare_hyperparameters(hp)
            >>> sorted(hp.values)[:3]
            ['bottleneck', 'compression', 'depth_multiplier']
        """
        self.architecture(hp)
        self.train_config(hp)

    def architecture(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """Declare the hyperparameters and return the DenseNet arguments they select.

        Example:
            >>> import keras_tuner
            >>> hp = keras_tuner.HyperParameters()
            >>> hp.Fixed("depth_multiplier", 0.5)
            0.5
            >>> DenseNetHyperModel((32, 32, 3), 10).architecture(hp)["block_sizes"]
            (8, 8, 8)
        """
        if self._space is not None:
            self._space(hp)
        base = self._base
        scale = hp.Float("depth_multiplier", 0.25, 2.0, step=0.25, default=1.0)
        width = base.bottleneck_width or 4
        return {
            "growth_rate": hp.Int("growth_rate", 4, 48, step=4, default=base.growth_rate),
            "block_sizes": tuple(max(1, round(n * scale)) for n in base.block_sizes),
            "compression": hp.Float("compression", 0.25, 1.0, step=0.25, default=base.compression),
            "bottleneck_width": width
            if hp.Boolean("bottleneck", default=bool(base.bottleneck_width))
            else 0,
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1, default=base.dropout),
        }

    def train_config(self, hp: kt.HyperParameters, epochs: int | None = None) -> TrainConfig:
        """The recipe with the trial's learning rate (and ``epochs``, when given).

        Example:
            >>> import keras_tuner
            >>> hm = DenseNetHyperModel((32, 32, 3), 10)
            >>> hm.train_config(keras_tuner.HyperParameters(), epochs=3).epochs
            3
        """
        default = self.recipe.learning_rate
        rate = hp.Float("learning_rate", 1e-3, 0.4, sampling="log", default=default)
        return self.recipe.replace(learning_rate=rate, epochs=epochs or self.recipe.epochs)
