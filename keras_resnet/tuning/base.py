"""``ZooHyperModel``: what every zoo HyperModel shares (head, build, cost, fit).

A subclass says which hyperparameters it declares (:meth:`declare_hyperparameters`),
which builder arguments they select (:meth:`architecture`) and which recipe a trial
trains with (:meth:`train_config`); building through :func:`keras_resnet.create_model`,
the per-trial MAC count and budgets, and ``fit`` through the trial's pipeline and
``train()``'s callbacks are written once, here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet.models.factory import create_model
from keras_resnet.models.registry import get_record
from keras_resnet.training import TrainConfig, compile_model, get_recipe
from keras_resnet.tuning.trial import SKIPPED, TimeBudget, trial_callbacks, trial_data
from keras_resnet.utils.checks import check_float, check_int


class ZooHyperModel(kt.HyperModel):
    """A KerasTuner HyperModel over one zoo family (subclassed per family).

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        classes: Number of classes; 1 or 2 give one sigmoid unit (binary
            cross-entropy), more a softmax head.
        baseline: Zoo variant of the family the defaults reproduce
            (:func:`keras_resnet.list_models`); ``None``: the family's ``default_baseline``.
        search_space: Changes to the family's default space: a function ``space(hp)``
            declaring hyperparameters with ``hp.*`` first (what it declares wins), or
            what the family accepts besides (``ResNetHyperModel``: a dict).
        recipe: Recipe name or :class:`~keras_resnet.training.TrainConfig` the
            training hyperparameters default to (its ``early_stopping_patience``,
            ``monitor`` ... apply to every trial).
        max_macs: Skip (do not train) trials whose network needs more multiply-adds
            per image (:func:`keras_resnet.analysis.count_flops`); ``None``: no limit.
        max_trial_seconds: Stop a trial's training after this many seconds (it is
            scored on what it learned so far); ``None``: no limit.
        name: Optional name of the HyperModel.
        tunable: Whether the hyperparameters join the tuner's search space.

    Example:
        >>> from keras_resnet.tuning import ResNetHyperModel
        >>> isinstance(ResNetHyperModel((32, 32, 3), 2), ZooHyperModel)
        True
    """

    #: The registry family the ``baseline`` must belong to, and its default variant.
    family = ""
    default_baseline = ""
    #: What a non-function ``search_space`` may be, in words ("" if nothing else).
    space_dict = ""

    def __init__(
        self,
        input_shape: tuple[int | None, int | None, int],
        classes: int,
        *,
        baseline: str | None = None,
        search_space: Any = None,
        recipe: str | TrainConfig = "he2015_cifar",
        max_macs: float | None = None,
        max_trial_seconds: float | None = None,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        check_int("classes", classes, min_value=1)
        for arg, value in (("max_macs", max_macs), ("max_trial_seconds", max_trial_seconds)):
            check_float(arg, value, min_value=0, min_open=True, allow_none=True)
        baseline = self.default_baseline if baseline is None else baseline
        record = get_record(baseline)
        if record.family != self.family:
            raise ValueError(
                f"`baseline` of {type(self).__name__} must be a {self.family!r} variant; "
                f"{baseline!r} is {record.family!r}. Received: baseline={baseline!r}"
            )
        recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
        if not isinstance(recipe, TrainConfig):
            raise TypeError(
                f"`recipe` must be a recipe name or a TrainConfig. Received: recipe={recipe!r}"
            )
        self.recipe, self.baseline, self.classes = recipe, baseline, classes
        self.input_shape = tuple(input_shape)
        self.max_macs, self.max_trial_seconds = max_macs, max_trial_seconds
        self._record = record
        self._head: dict[str, Any] = {"classes": classes}
        if self.binary:
            self._head = {"classes": 1, "classifier_activation": "sigmoid"}
        self._baseline_macs: int | None = None
        is_dict = isinstance(search_space, Mapping) and self.space_dict
        if not (search_space is None or callable(search_space) or is_dict):
            allowed = f"{self.space_dict}, or " if self.space_dict else ""
            raise TypeError(
                f"`search_space` of {type(self).__name__} must be {allowed}a function of hp. "
                f"Received: search_space={search_space!r}"
            )
        self._prepare(search_space)

    @property
    def binary(self) -> bool:
        """Whether the head is a single sigmoid unit (``classes`` 1 or 2)."""
        return self.classes <= 2

    # ----------------------------------------------------------- what a family says
    def _prepare(self, search_space: Any) -> None:
        """Check ``search_space`` against the family's space and keep it (subclasses)."""
        raise NotImplementedError

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declare the family's space on ``hp`` (subclasses)."""
        raise NotImplementedError

    def architecture(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """The builder arguments a set of hyperparameters selects (subclasses)."""
        raise NotImplementedError

    def train_config(self, hp: kt.HyperParameters, epochs: int | None = None) -> TrainConfig:
        """The recipe with the trial's training hyperparameters applied (subclasses)."""
        raise NotImplementedError

    # ----------------------------------------------------------- shared by all
    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Build the network these hyperparameters select, compiled at a constant rate.

        :meth:`fit` recompiles with the full recipe; this compile lets
        ``tuner.get_best_models()`` evaluate on integer labels. A combination the
        builder rejects raises ``keras_tuner.errors.FailedTrialError`` (trial failed).

        Example:
            >>> import keras_tuner
            >>> from keras_resnet.tuning import ResNetHyperModel
            >>> hm = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny")
            >>> hm.build(keras_tuner.HyperParameters()).count_params()  # default values
            5266
        """
        self.declare_hyperparameters(hp)
        try:
            model = create_model(
                self.baseline, input_shape=self.input_shape, **self._head, **self.architecture(hp)
            )
        except (ValueError, TypeError) as err:
            raise kt.errors.FailedTrialError(
                f"Invalid combination of hyperparameters: {err}"
            ) from err
        config = self.train_config(hp).replace(
            schedule="constant", warmup_epochs=0, label_smoothing=0.0
        )
        self._compile(model, config, 1, one_hot=False)
        return model

    def _compile(self, model: keras.Model, config: TrainConfig, steps: int, one_hot: bool):
        binary = {}  # make_loss / make_metrics cover softmax heads
        if self.binary:
            binary["loss"] = keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
            binary["metrics"] = [keras.metrics.BinaryAccuracy(name="accuracy")]
        compile_model(model, config, steps_per_epoch=steps, one_hot=one_hot, **binary)

    def trial_macs(self, model: keras.Model, verbose: Any = 1) -> int | None:
        """Multiply-adds per image of a trial's model; prints them and applies ``max_macs``.

        Over ``max_macs`` raises ``keras_tuner.errors.FailedTrialError`` before any
        training (reported as ``SKIPPED`` by :func:`~keras_resnet.tuning.trial_results`).

        Example:
            >>> import keras_tuner
            >>> from keras_resnet.tuning import ResNetHyperModel
            >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny")
            >>> hm.trial_macs(hm.build(keras_tuner.HyperParameters()), verbose=0)
            135840
            >>> small = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny", max_macs=100_000)
            >>> small.trial_macs(small.build(keras_tuner.HyperParameters()), verbose=0)
            Traceback (most recent call last):
            ...
            keras_tuner.src.errors.FailedTrialError: over the MAC budget: macs=135840...
        """
        from keras_resnet.analysis import count_flops

        if any(d is None for d in model.input_shape[1:]):
            return None
        macs = count_flops(model)
        if self._baseline_macs is None:
            base = create_model(self.baseline, input_shape=self.input_shape, **self._head)
            self._baseline_macs = count_flops(base)
        ratio = macs / self._baseline_macs
        over = self.max_macs is not None and macs > self.max_macs
        skipped = f" (over max_macs={self.max_macs:.3g}: skipped)" if over else ""
        if verbose != 0:
            cost = f"{macs / 1e6:.3g} M MACs per image, {ratio:.2f}x the baseline"
            print(f"Trial cost: {cost} {self.baseline}{skipped}")
        if over:
            raise kt.errors.FailedTrialError(
                f"{SKIPPED}: macs={macs} per image exceed max_macs={self.max_macs:.0f}"
            )
        return macs

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        x: Any = None,
        y: Any = None,
        *,
        validation_data: Any = None,
        epochs: int = 1,
        initial_epoch: int = 0,
        callbacks: list[keras.callbacks.Callback] | None = None,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Train ``model`` with the trial's recipe; returns the ``History``.

        Compiles with ``compile_model`` and adds ``make_callbacks``, as ``train()`` does. Data as
        :func:`~keras_resnet.tuning.trial.trial_data` takes it (arrays, a dataset, or
        a callable such as ``functools.partial(get_datasets, "digits")``). A subclass
        adds training knobs (e.g. fine-tuning learning rates) by reading ``hp`` here.

        ``epochs`` / ``initial_epoch`` are Hyperband's (the schedule continues);
        other keyword arguments go to ``model.fit``. The ``History`` gets the trial's
        ``fit_seconds``, ``macs`` and ``time_budget_stopped`` (1.0 when
        ``max_trial_seconds`` cut it short), so tuners record them as metrics.

        Example:
            >>> import numpy as np, keras_tuner
            >>> from keras_resnet.tuning import ResNetHyperModel
            >>> hm = ResNetHyperModel((16, 16, 1), 3, baseline="_tiny")
            >>> hp = keras_tuner.HyperParameters()
            >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8) % 3
            >>> history = hm.fit(hp, hm.build(hp), x, y, epochs=1, verbose=0)
            >>> sorted(history.history)[:3]
            ['accuracy', 'fit_seconds', 'learning_rate']
        """
        macs = self.trial_macs(model, kwargs.get("verbose", 1))
        config = self.train_config(hp, epochs=max(1, epochs))
        for arg in ("batch_size", "shuffle"):  # the trial's pipeline decides
            kwargs.pop(arg, None)
        searched = {p.name for p in hp.space if len(candidates(p)) > 1}
        x, validation_data, steps, one_hot = trial_data(
            x, y, validation_data, config, self.classes, searched=searched
        )
        steps = kwargs.get("steps_per_epoch") or steps
        with model.distribute_strategy.scope():
            self._compile(model, config, steps, one_hot and not self.binary)
            if initial_epoch:
                model.optimizer.iterations.assign(initial_epoch * steps)
        budget = TimeBudget(self.max_trial_seconds)
        callbacks = [*(callbacks or []), *trial_callbacks(config, x, validation_data), budget]
        start = time.perf_counter()
        history = model.fit(
            x,
            validation_data=validation_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the trial's pipeline shuffles itself
            **kwargs,
        )
        extra = {"fit_seconds": time.perf_counter() - start, "macs": macs or 0}
        extra["time_budget_stopped"] = float(budget.stopped)
        history.history.update({k: [float(v)] * len(history.epoch) for k, v in extra.items()})
        return history


def candidates(param: Any) -> tuple:
    """Values of a KerasTuner hyperparameter to check up front: every choice, or a
    range's ends and default.

    Example:
        >>> hp = kt.HyperParameters()
        >>> _ = hp.Int("depth", 1, 4), hp.Choice("block", ["basic", "bottleneck"])
        >>> candidates(hp.space[0]), candidates(hp.space[1])
        ((1, 4, 1), ('basic', 'bottleneck'))
    """
    if hasattr(param, "min_value"):
        return (param.min_value, param.max_value, param.default)
    return tuple(param.values)
