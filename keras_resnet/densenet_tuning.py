"""``DenseNetHyperModel``: KerasTuner over the DenseNet builder (growth, depth, compression).

The sibling of :class:`keras_resnet.ResNetHyperModel` for the ``"densenet"`` family:
``build(hp)`` declares its space with KerasTuner's own ``hp.*`` calls and maps it
onto :func:`keras_resnet.create_model` (fields of
:class:`~keras_resnet.densenet.DenseNetConfig` of the same names); ``fit`` compiles with
:func:`~keras_resnet.training.compile_model` and takes its data and callbacks from
:mod:`keras_resnet.tuning.trial`, as ``ResNetHyperModel`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet.checks import check_int
from keras_resnet.densenet import DenseNetConfig
from keras_resnet.registry import create_model, get_record
from keras_resnet.training import TrainConfig, compile_model, get_recipe
from keras_resnet.tuning.trial import trial_callbacks, trial_data


class DenseNetHyperModel(kt.HyperModel):
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

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        classes: Number of classes (softmax head; integer labels).
        baseline: A ``"densenet"`` family name of :func:`keras_resnet.list_models`.
        space: Optional function ``space(hp)`` called first: what it declares wins
            (e.g. ``hp.Fixed("bottleneck", True)`` or a narrower ``hp.Choice``).
        recipe: Recipe name or :class:`~keras_resnet.training.TrainConfig` for
            everything but the learning rate. Integer labels: label smoothing is off.
        name: Optional name of the HyperModel.
        tunable: Whether the hyperparameters join the tuner's search space.

    Example:
        >>> import keras_tuner
        >>> hm = DenseNetHyperModel((16, 16, 1), 10, baseline="_tiny_densenet")
        >>> model = hm.build(keras_tuner.HyperParameters())
        >>> tuple(model.output.shape), model.get_layer("stage1_layer1_conv2").filters
        ((None, 10), 4)
    """

    def __init__(
        self,
        input_shape: tuple[int | None, int | None, int],
        classes: int,
        *,
        baseline: str = "densenet_bc100_k12",
        space: Callable[[kt.HyperParameters], Any] | None = None,
        recipe: str | TrainConfig = "he2015_cifar",
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        check_int("classes", classes, min_value=2)
        record = get_record(baseline)
        if record.family != "densenet":
            raise ValueError(
                "`baseline` must be a DenseNet (family 'densenet'); use ResNetHyperModel for "
                f"{record.family!r} variants. Received: baseline={baseline!r}"
            )
        if space is not None and not callable(space):
            raise TypeError(f"`space` must be a function of hp. Received: space={space!r}")
        recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
        if not isinstance(recipe, TrainConfig):
            raise TypeError(
                f"`recipe` must be a recipe name or a TrainConfig. Received: recipe={recipe!r}"
            )
        self.input_shape, self.classes, self.baseline = tuple(input_shape), classes, baseline
        self.recipe = recipe.replace(label_smoothing=0.0)
        self._base = DenseNetConfig(**record.arch)
        self._space = space

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

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Build the DenseNet these hyperparameters select, compiled at the trial's rate.

        Raises:
            keras_tuner.errors.FailedTrialError: A combination the builder rejects
                (e.g. too many transitions for the input size).

        Example:
            >>> import keras_tuner
            >>> hm = DenseNetHyperModel((16, 16, 1), 10, baseline="_tiny_densenet")
            >>> hm.build(keras_tuner.HyperParameters()).count_params() > 0
            True
        """
        arch = self.architecture(hp)
        try:
            model = create_model(
                self.baseline, input_shape=self.input_shape, classes=self.classes, **arch
            )
        except (ValueError, TypeError) as err:
            message = f"Invalid combination of hyperparameters: {err}"
            raise kt.errors.FailedTrialError(message) from err
        compile_model(model, self.train_config(hp).replace(schedule="constant"), steps_per_epoch=1)
        return model

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        x: Any,
        y: Any = None,
        *,
        validation_data: Any = None,
        epochs: int = 1,
        callbacks: list[keras.callbacks.Callback] | None = None,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Train with the trial's recipe (schedule over ``epochs``); returns the ``History``.

        Data as :func:`~keras_resnet.tuning.trial.trial_data` takes it: arrays (with
        labels ``y``; the recipe's ``batch_size``), a batched ``tf.data.Dataset`` of
        ``(images, integer labels)`` or a data callable.

        Example:
            >>> import numpy as np, keras_tuner
            >>> hm = DenseNetHyperModel((16, 16, 1), 3, baseline="_tiny_densenet")
            >>> hp = keras_tuner.HyperParameters()
            >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8) % 3
            >>> history = hm.fit(hp, hm.build(hp), x, y, epochs=1, verbose=0)
            >>> sorted(history.history)
            ['accuracy', 'learning_rate', 'loss']
        """
        config = self.train_config(hp, epochs=max(1, epochs))
        for arg in ("batch_size", "shuffle"):  # the trial's pipeline decides
            kwargs.pop(arg, None)
        x, validation_data, steps, _ = trial_data(x, y, validation_data, config, self.classes)
        compile_model(model, config, steps_per_epoch=kwargs.get("steps_per_epoch") or steps)
        callbacks = [*(callbacks or []), *trial_callbacks(config, x, validation_data)]
        return model.fit(
            x,
            validation_data=validation_data,
            epochs=epochs,
            callbacks=callbacks,
            shuffle=False,  # the trial's pipeline shuffles itself
            **kwargs,
        )
