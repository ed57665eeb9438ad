"""``ResNetHyperModel``: KerasTuner over the same builder as ``create_model``."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet.config import ResNetConfig
from keras_resnet.training import (
    TrainConfig,
    get_recipe,
    make_callbacks,
    make_loss,
    make_metrics,
    make_optimizer,
)
from keras_resnet.tuning import space as sp
from keras_resnet.tuning.budget import SKIPPED, TimeBudget
from keras_resnet.zoo import create_model, model_spec

# Hyperparameters whose combinations decide whether the widths are buildable.
_WIDTH_HPS = ("block", "groups", "base_width", "width_multiplier", "stem_width", "shortcut")


class ResNetHyperModel(kt.HyperModel):
    """A KerasTuner search space over residual networks and their training recipe.

    ``build(hp)`` maps hyperparameters onto :func:`keras_resnet.create_model` (fields
    of :class:`~keras_resnet.config.ResNetConfig` of the same names, plus
    ``stage1_depth`` ... ``stageN_depth``, ``width_multiplier`` and ``head_dropout``);
    ``fit(hp, model, ...)`` compiles with the trial's recipe (fields of
    :class:`~keras_resnet.training.TrainConfig`) and trains. Every default is the
    ``baseline`` variant and the ``recipe``, so ``build(keras_tuner.HyperParameters())``
    is ``create_model(baseline, ...)``. The default space is bounded by the baseline's
    cost (see :func:`keras_resnet.tuning.space.default_space`); unless ``base_width``
    is searched, a bottleneck keeps the baseline's inner width whatever ``groups``.

    ``search_space`` is either a dict (name -> value to fix it, list of choices,
    ``(min, max[, step][, sampling])`` range, or ``None`` to drop it) or a function
    ``space(hp)`` that declares hyperparameters with KerasTuner's ``hp.*`` calls
    before the defaults (what it declares wins; e.g. ``hp.Fixed("block", "basic")``).
    Names and values are checked against the builder here, before any search.

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        classes: Number of classes; 1 or 2 give one sigmoid unit (binary
            cross-entropy), more a softmax head.
        baseline: Zoo variant the defaults reproduce (:func:`keras_resnet.list_models`).
        search_space: Overrides of the default space (see above).
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
        >>> import keras_tuner
        >>> hypermodel = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny",
        ...                               search_space={"block": "bottleneck"})
        >>> model = hypermodel.build(keras_tuner.HyperParameters())
        >>> tuple(model.output.shape), model.get_layer("stage1_block1_conv3").filters
        ((None, 10), 32)
    """

    def __init__(
        self,
        input_shape: tuple[int | None, int | None, int],
        classes: int,
        *,
        baseline: str = "resnet20",
        search_space: Mapping[str, Any] | Callable[[kt.HyperParameters], Any] | None = None,
        recipe: str | TrainConfig = "he2015_cifar",
        max_macs: float | None = None,
        max_trial_seconds: float | None = None,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError(f"`classes` must be an integer >= 1. Received: classes={classes!r}")
        for arg, value in (("max_macs", max_macs), ("max_trial_seconds", max_trial_seconds)):
            if value is not None and (not sp.is_number(value) or value <= 0):
                raise ValueError(f"`{arg}` must be a positive number. Received: {arg}={value!r}")
        if search_space is not None and not isinstance(search_space, Mapping):
            if not callable(search_space):
                raise TypeError(
                    "`search_space` must be a dict mapping hyperparameter names to values, "
                    f"lists, ranges or None, or a function of hp. Received: {search_space!r}"
                )
        recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
        if not isinstance(recipe, TrainConfig):
            raise TypeError(
                f"`recipe` must be a recipe name or a TrainConfig. Received: recipe={recipe!r}"
            )
        self.recipe, self.baseline, self.classes = recipe, baseline, classes
        self.input_shape = tuple(input_shape)
        self.max_macs, self.max_trial_seconds = max_macs, max_trial_seconds
        self._arch = {k: v for k, v in model_spec(baseline).items() if k in ResNetConfig.fields()}
        self._base = ResNetConfig(**self._arch)
        self._head = {"classes": 1, "classifier_activation": "sigmoid"} if self.binary else {}
        self._baseline_macs: int | None = None
        self._space_fn = search_space if callable(search_space) else None
        self._entries = self._merge(dict(search_space or {}) if self._space_fn is None else {})
        self._validate()

    @property
    def binary(self) -> bool:
        """Whether the head is a single sigmoid unit (``classes`` 1 or 2)."""
        return self.classes <= 2

    # ----------------------------------------------------------------- the space
    def _default(self, name: str) -> Any:
        """The baseline's (or recipe's) value of a hyperparameter."""
        if name in TrainConfig.__dataclass_fields__:
            return getattr(self.recipe, name)
        if name.startswith("stage") and name.endswith("_depth"):
            return self._base.stage_depths[int(name[5:-6]) - 1]
        if name in sp.EXTRA_HPS:
            return {"width_multiplier": 1.0, "head_dropout": 0.0}[name]
        return getattr(self._base, name)

    def known_names(self) -> tuple[str, ...]:
        """Every name ``search_space`` accepts (a subclass may add its own).

        Example:
            >>> "groups" in ResNetHyperModel((32, 32, 3), 10).known_names()
            True
        """
        depths = [f"stage{i}_depth" for i in range(1, len(self._base.stage_depths) + 1)]
        names = (*ResNetConfig.fields(), *depths, *sp.EXTRA_HPS, *sp.TRAINING_HPS)
        return tuple(sorted(names))

    def _merge(self, overrides: dict[str, Any]) -> dict[str, Any]:
        self._check_names(overrides)
        space = sp.default_space(self._base, self.recipe)
        if "stage_depths" in overrides:  # a depth family replaces the per-stage depths
            space = {k: v for k, v in space.items() if not k.endswith("_depth")}
            family = overrides["stage_depths"]
            if isinstance(family, list):
                overrides["stage_depths"] = [sp.encode("stage_depths", v) for v in family]
        space.update(overrides)
        return {k: v for k, v in space.items() if v is not None}

    def _check_names(self, names: Any) -> None:
        known = self.known_names()
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter name(s) {unknown} in `search_space`. Valid names: "
                f"{', '.join(known)}. Received: search_space keys {sorted(names)}"
            )

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Declare the whole space (architecture and training) on ``hp``.

        The ``space(hp)`` function first, then every default and ``search_space``
        entry not declared yet; ``groups`` / ``base_width`` under
        ``hp.conditional_scope("block", ["bottleneck"])`` and ``drop_path_rate``
        under the residual ``shortcut`` values when those are searched.

        Example:
            >>> import keras_tuner
            >>> hp = keras_tuner.HyperParameters()
            >>> ResNetHyperModel((32, 32, 3), 10).declare_hyperparameters(hp)
            >>> hp.get("learning_rate"), hp.space[0].name
            (0.1, 'block')
        """
        if self._space_fn is not None:
            self._space_fn(hp)
        taken = {p.name for p in hp.space}
        for name, spec in self._entries.items():
            if name in taken:
                continue
            active = None
            if name in sp.PARENTS:
                parent = sp.PARENTS[name][0]
                active = sp.active_values(hp, name, sp.encode(parent, self._default(parent)))
                if active == []:
                    continue  # e.g. groups with basic blocks only: nothing to search
            if active is None:
                sp.declare(hp, name, spec, self._default(name))
            else:
                with hp.conditional_scope(sp.PARENTS[name][0], active):
                    sp.declare(hp, name, spec, self._default(name))

    @property
    def space(self) -> dict[str, Any]:
        """The declared space: name -> KerasTuner hyperparameter (``Choice``, ``Int`` ...).

        Example:
            >>> space = ResNetHyperModel((32, 32, 3), 10).space
            >>> type(space["block"]).__name__, space["block"].values
            ('Choice', ['basic', 'bottleneck'])
        """
        hp = kt.HyperParameters()
        self.declare_hyperparameters(hp)
        return {p.name: p for p in hp.space}

    def _validate(self) -> None:
        """Check the space's every value, and the width combinations, against the builder."""
        if len(self.input_shape) != 3:
            raise ValueError(
                "`input_shape` must be (height, width, channels). "
                f"Received: input_shape={self.input_shape}"
            )
        total = self._base.total_stride
        if any(d is not None and d < total for d in self.input_shape[:2]):
            raise ValueError(
                f"`input_shape` is too small for baseline {self.baseline!r}, which "
                f"downsamples by {total}. Received: input_shape={self.input_shape}"
            )
        space = self.space
        self._check_names(space)
        for name, param in space.items():
            context = {c.name: c.values[0] for c in param.conditions}
            for value in _candidates(param):
                try:
                    self._check({**context, name: value})
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"`search_space[{name!r}]` allows a value the builder rejects: {err}"
                    ) from None
        options = [_candidates(space[n]) if n in space else (None,) for n in _WIDTH_HPS]
        for values in itertools.product(*options):
            combo = {n: v for n, v in zip(_WIDTH_HPS, values, strict=True) if v is not None}
            try:
                self._check(combo)
            except ValueError as err:
                raise ValueError(
                    f"`search_space` combines values the builder rejects: {combo}: {err}. "
                    "Narrow one of these choices."
                ) from None

    def _check(self, values: dict[str, Any]) -> None:
        hp = kt.HyperParameters()
        hp.values.update(values)
        multiplier = self._value(hp, "width_multiplier")
        if not sp.is_number(multiplier) or multiplier <= 0:
            raise ValueError(
                f"`width_multiplier` must be a positive number. Received: {multiplier!r}"
            )
        arch = self.architecture(hp)
        if not sp.is_number(arch["head_dropout"]) or not 0 <= arch["head_dropout"] < 1:
            raise ValueError(f"`head_dropout` must be in [0, 1). Received: {arch['head_dropout']}")
        ResNetConfig.from_kwargs(**{k: v for k, v in arch.items() if k != "head_dropout"})
        self.train_config(hp, epochs=10**6)  # TrainConfig validates the recipe values
        from keras_resnet.data import PRESETS

        if self._value(hp, "augment") not in PRESETS:
            raise ValueError(f"`augment` must be one of {PRESETS}. Received: {values}")

    def _value(self, hp: kt.HyperParameters, name: str) -> Any:
        """The trial's value of ``name`` (the default when not declared or inactive)."""
        return sp.decode(name, hp.values[name]) if name in hp.values else self._default(name)

    # ----------------------------------------------------------------- build
    def architecture(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """The :func:`keras_resnet.ResNet` arguments a set of hyperparameters selects.

        Example:
            >>> import keras_tuner
            >>> arch = ResNetHyperModel((32, 32, 3), 10).architecture(keras_tuner.HyperParameters())
            >>> arch["stage_depths"], arch["shortcut"]
            ((3, 3, 3), 'zero_pad')
        """
        arch = {f: self._value(hp, f) for f in ResNetConfig.fields()}
        if "stage_depths" not in hp.values:
            n = len(self._base.stage_depths)
            arch["stage_depths"] = tuple(
                self._value(hp, f"stage{i}_depth") for i in range(1, n + 1)
            )
        # The multiplier scales stem and stages alike (option-A shortcuts need the ratio).
        multiplier = self._value(hp, "width_multiplier")
        arch["stage_widths"] = tuple(_scale(w, multiplier) for w in self._base.stage_widths)
        arch["stem_width"] = _scale(arch["stem_width"], multiplier)
        if arch["block"] == "basic":  # ResNeXt knobs are inactive: keep the baseline's
            arch["groups"], arch["base_width"] = self._base.groups, self._base.base_width
        elif "base_width" not in hp.values:  # ResNeXt's template: same inner width
            arch["base_width"] = max(1, self._base.groups * self._base.base_width // arch["groups"])
        arch["head_dropout"] = self._value(hp, "head_dropout")
        return arch

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Build the network these hyperparameters select, compiled at a constant rate.

        :meth:`fit` recompiles with the full recipe (the schedule needs the number of
        steps, label smoothing one-hot labels); this compile lets the models of
        ``tuner.get_best_models()`` evaluate on plain integer labels.

        Raises:
            keras_tuner.errors.FailedTrialError: A combination the builder rejects;
                the tuner records the trial as failed and moves on.

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny")
            >>> hm.build(keras_tuner.HyperParameters()).count_params() > 0
            True
        """
        self.declare_hyperparameters(hp)
        try:
            model = create_model(
                self.baseline, input_shape=self.input_shape, **self._head, **self.architecture(hp)
            )
        except (ValueError, TypeError) as err:
            raise kt.errors.FailedTrialError(f"Invalid combination of hyperparameters: {err}")
        config = self.train_config(hp).replace(
            schedule="constant", warmup_epochs=0, label_smoothing=0.0
        )
        self._compile(model, config, steps_per_epoch=1, one_hot=False)
        return model

    def train_config(self, hp: kt.HyperParameters, epochs: int | None = None) -> TrainConfig:
        """The recipe with the trial's training hyperparameters applied.

        A warm-up longer than half the run is cut to half of it, so short trials decay.

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((32, 32, 3), 10, search_space={"batch_size": 64})
            >>> cfg = hm.train_config(keras_tuner.HyperParameters(), epochs=3)
            >>> cfg.batch_size, cfg.epochs, cfg.recipe
            (64, 3, 'he2015_cifar')
        """
        self.declare_hyperparameters(hp)
        values = {n: self._value(hp, n) for n in sp.TRAINING_HPS}
        epochs = self.recipe.epochs if epochs is None else epochs
        values["warmup_epochs"] = min(values["warmup_epochs"], epochs / 2)
        return self.recipe.replace(epochs=epochs, **values)

    def _compile(
        self, model: keras.Model, config: TrainConfig, steps_per_epoch: int, one_hot: bool
    ):
        if self.binary:  # make_loss / make_metrics cover softmax heads
            loss = keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy")]
        else:
            loss, metrics = make_loss(config, one_hot=one_hot), make_metrics(one_hot=one_hot)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=loss, metrics=metrics)

    # ----------------------------------------------------------------- fit
    def trial_macs(self, model: keras.Model, verbose: Any = 1) -> int | None:
        """Multiply-adds per image of a trial's model; prints them and applies ``max_macs``.

        Raises:
            keras_tuner.errors.FailedTrialError: Over ``max_macs`` (the trial is
                skipped before training and reported as ``SKIPPED``).

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny")
            >>> hm.trial_macs(hm.build(keras_tuner.HyperParameters()), verbose=0)
            22848
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
        if verbose != 0:
            print(
                f"Trial cost: {macs / 1e6:.3g} M MACs per image, {ratio:.2f}x the baseline "
                f"{self.baseline}"
                + (f" (over max_macs={self.max_macs:.3g}: skipped)" if over else "")
            )
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

        Compiles with ``make_optimizer`` (schedule, warm-up, decoupled weight decay),
        ``make_loss`` and ``make_metrics`` and adds ``make_callbacks`` (learning-rate
        logging, stop on NaN, early stopping when the recipe sets it), as ``train()``
        does. Data: arrays (``x``, ``y``), a batched ``tf.data.Dataset`` (re-batched
        when ``batch_size`` is searched) or a callable
        ``data(batch_size=..., augment=..., one_hot=...)`` returning
        :class:`keras_resnet.data.Datasets` or ``(train, validation)``, e.g.
        ``functools.partial(keras_resnet.get_datasets, "digits", seed=0)``; only a
        callable can apply ``augment``. A subclass adds training knobs (e.g.
        fine-tuning learning rates) by reading ``hp`` here.

        Args:
            hp: ``keras_tuner.HyperParameters`` of the trial.
            model: The model :meth:`build` returned.
            x: Training inputs, dataset or data callable.
            y: Training labels when ``x`` is an array.
            validation_data: Validation data (taken from the callable when omitted).
            epochs: Last epoch (Hyperband sets it).
            initial_epoch: First epoch (the schedule continues from there).
            callbacks: Callbacks (KerasTuner adds its own here).
            **kwargs: Passed on to ``model.fit``.

        Returns:
            The ``History``, with the trial's ``fit_seconds``, ``macs`` and
            ``time_budget_stopped`` (1.0 when ``max_trial_seconds`` cut it short)
            added so tuners record them with the metrics.

        Example:
            >>> import numpy as np, keras_tuner
            >>> hm = ResNetHyperModel((16, 16, 1), 3, baseline="_tiny")
            >>> hp = keras_tuner.HyperParameters()
            >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8) % 3
            >>> history = hm.fit(hp, hm.build(hp), x, y, epochs=1, verbose=0)
            >>> sorted(history.history)[:3]
            ['accuracy', 'fit_seconds', 'learning_rate']
        """
        macs = self.trial_macs(model, kwargs.get("verbose", 1))
        config = self.train_config(hp, epochs=max(1, epochs))
        x, y, validation_data, steps, one_hot = self._data(
            hp, config, x, y, validation_data, kwargs
        )
        with model.distribute_strategy.scope():
            self._compile(model, config, steps, one_hot and not self.binary)
            if initial_epoch:
                model.optimizer.iterations.assign(initial_epoch * steps)
        monitor = config.monitor
        if validation_data is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        budget = TimeBudget(self.max_trial_seconds)
        callbacks = [*(callbacks or []), *make_callbacks(config, None, monitor=monitor), budget]
        start = time.perf_counter()
        history = model.fit(
            x,
            y,
            validation_data=validation_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            **kwargs,
        )
        extra = {"fit_seconds": time.perf_counter() - start, "macs": macs or 0}
        extra["time_budget_stopped"] = float(budget.stopped)
        n = len(history.epoch)
        history.history.update({k: [float(v)] * n for k, v in extra.items()})
        return history

    def _data(self, hp, config, x, y, validation_data, kwargs) -> tuple:
        """The trial's training and validation data, steps per epoch and label kind."""
        import tensorflow as tf

        smoothing = not self.binary and config.label_smoothing > 0
        steps = None
        from_callable = callable(x) and not isinstance(x, tf.data.Dataset)
        if from_callable:
            data = x(batch_size=config.batch_size, augment=config.augment, one_hot=smoothing)
            x, y, info = data[0], None, getattr(data, "info", None)
            if info is not None and int(x.cardinality()) < 1:  # e.g. filtered pipelines
                steps = max(1, math.ceil(info.num_examples["train"] / config.batch_size))
            validation_data = data[1] if validation_data is None else validation_data
        elif _searched(hp, "augment"):
            raise kt.errors.FatalValueError(
                "The `augment` hyperparameter needs a data callable "
                "`data(batch_size=..., augment=..., one_hot=...)` as the training data. "
                f"Received: x of type {type(x).__name__}; fix or drop it with "
                "search_space={'augment': None}"
            )
        if isinstance(x, tf.data.Dataset):
            if _searched(hp, "batch_size") and not from_callable:
                # Re-batching hides the cardinality: size the schedule from one batch.
                batches = int(x.cardinality())
                first = int(tf.shape(tf.nest.flatten(next(iter(x.take(1))))[0])[0])
                x = x.rebatch(config.batch_size)
                steps = math.ceil(batches * first / config.batch_size) if batches > 0 else None
            x = self._one_hot(x, smoothing)
            kwargs.pop("batch_size", None)
            kwargs.setdefault("shuffle", False)  # a pipeline shuffles itself
            one_hot = x.element_spec[1].shape.rank == 2
            steps = steps or max(1, int(x.cardinality()))
        else:
            kwargs.setdefault("batch_size", config.batch_size)
            y, one_hot = self._one_hot(y, smoothing), smoothing or len(getattr(y, "shape", ())) == 2
            steps = max(1, math.ceil(len(x) / kwargs["batch_size"])) if x is not None else 1
        if isinstance(validation_data, (tf.data.Dataset, tuple)):
            validation_data = self._one_hot(validation_data, one_hot)
        return x, y, validation_data, kwargs.get("steps_per_epoch") or steps, one_hot

    def _one_hot(self, data: Any, one_hot: bool) -> Any:
        """One-hot integer labels of arrays, ``(x, y)`` tuples or datasets when needed."""
        import tensorflow as tf

        if self.binary or not one_hot or data is None:
            return data
        if isinstance(data, tuple):
            return (data[0], self._one_hot(data[1], True))
        if isinstance(data, tf.data.Dataset):
            if data.element_spec[1].shape.rank != 1:
                return data
            return data.map(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), self.classes)))
        if len(getattr(data, "shape", ())) != 1:
            return data
        return keras.ops.one_hot(keras.ops.convert_to_tensor(data, "int32"), self.classes)


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def _candidates(param: Any) -> tuple:
    """Values to check up front: every choice, or a range's ends and default."""
    if hasattr(param, "min_value"):
        return (param.min_value, param.max_value, param.default)
    return tuple(param.values)


def _searched(hp: kt.HyperParameters, name: str) -> bool:
    return any(p.name == name and len(_candidates(p)) > 1 for p in hp.space)
