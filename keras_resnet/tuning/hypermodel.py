"""``ResNetHyperModel``: KerasTuner over the same builder as ``create_model``."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet.checks import check_float, check_int, check_rate
from keras_resnet.config import ResNetConfig
from keras_resnet.training import TrainConfig, compile_model, get_recipe
from keras_resnet.tuning import space as sp
from keras_resnet.tuning.trial import SKIPPED, TimeBudget, trial_callbacks, trial_data
from keras_resnet.zoo import create_model, model_spec

# Hyperparameters whose combinations decide whether the widths are buildable.
_WIDTH_HPS = ("block", "groups", "base_width", "width_multiplier", "stem_width", "shortcut")


class ResNetHyperModel(kt.HyperModel):
    """A KerasTuner search space over residual networks and their training recipe.

    ``build(hp)`` maps hyperparameters onto :func:`keras_resnet.create_model`
    (:class:`~keras_resnet.config.ResNetConfig` fields of the same names, plus
    ``stageN_depth``, ``width_multiplier``, ``head_dropout``); ``fit(hp, model, ...)``
    trains with the trial's :class:`~keras_resnet.training.TrainConfig` fields. Every
    default is the ``baseline`` and the ``recipe``: ``build(HyperParameters())`` is
    ``create_model(baseline, ...)``. The default space
    (:func:`~keras_resnet.tuning.default_space`) is bounded by the baseline's cost.

    ``search_space`` is a dict (name -> value to fix it, list of choices,
    ``(min, max[, step][, sampling])`` range, ``None`` to drop it) or a function
    ``space(hp)`` declaring hyperparameters with ``hp.*`` before the defaults (what
    it declares wins). Names and values are checked here, before any search.

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
        check_int("classes", classes, min_value=1)
        for arg, value in (("max_macs", max_macs), ("max_trial_seconds", max_trial_seconds)):
            check_float(arg, value, min_value=0, min_open=True, allow_none=True)
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
        self._head = {"classes": classes}
        if self.binary:
            self._head = {"classes": 1, "classifier_activation": "sigmoid"}
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
                overrides["stage_depths"] = [sp._encode("stage_depths", v) for v in family]
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
        """Declare the space on ``hp``: the ``space(hp)`` function, then what it left.

        ``groups`` / ``base_width`` go under ``hp.conditional_scope("block",
        ["bottleneck"])``, ``drop_path_rate`` under the residual shortcuts.

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
                active = sp._active_values(hp, name, sp._encode(parent, self._default(parent)))
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
        checks = [
            ({**{c.name: c.values[0] for c in p.conditions}, n: v}, f"`search_space[{n!r}]`")
            for n, p in space.items()
            for v in _candidates(p)
        ]
        options = [_candidates(space[n]) if n in space else (None,) for n in _WIDTH_HPS]
        for values in itertools.product(*options):
            combo = {n: v for n, v in zip(_WIDTH_HPS, values, strict=True) if v is not None}
            checks.append((combo, f"`search_space` combination {combo}"))
        for values, what in checks:
            try:
                self._check(values)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{what} allows values the builder rejects: {err}") from None

    def _check(self, values: dict[str, Any]) -> None:
        hp = kt.HyperParameters()
        hp.values.update(values)
        multiplier = self._value(hp, "width_multiplier")
        check_float("width_multiplier", multiplier, min_value=0, min_open=True)
        arch = self.architecture(hp)
        check_rate("head_dropout", arch["head_dropout"])
        ResNetConfig.from_kwargs(**{k: v for k, v in arch.items() if k != "head_dropout"})
        self._train_config(hp, epochs=10**6)  # TrainConfig validates the recipe values
        from keras_resnet.data import PRESETS

        if self._value(hp, "augment") not in PRESETS:
            raise ValueError(f"`augment` must be one of {PRESETS}. Received: {values}")

    def _value(self, hp: kt.HyperParameters, name: str) -> Any:
        """The trial's value of ``name`` (the default when not declared or inactive)."""
        return sp._decode(name, hp.values[name]) if name in hp.values else self._default(name)

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

        :meth:`fit` recompiles with the full recipe; this compile lets
        ``tuner.get_best_models()`` evaluate on integer labels. A combination the
        builder rejects raises ``keras_tuner.errors.FailedTrialError`` (trial failed).

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
            raise kt.errors.FailedTrialError(
                f"Invalid combination of hyperparameters: {err}"
            ) from err
        config = self.train_config(hp).replace(
            schedule="constant", warmup_epochs=0, label_smoothing=0.0
        )
        self._compile(model, config, 1, one_hot=False)
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
        return self._train_config(hp, epochs)

    def _train_config(self, hp: kt.HyperParameters, epochs: int | None = None) -> TrainConfig:
        values = {n: self._value(hp, n) for n in sp.TRAINING_HPS}
        epochs = self.recipe.epochs if epochs is None else epochs
        values["warmup_epochs"] = min(values["warmup_epochs"], epochs / 2)
        return self.recipe.replace(epochs=epochs, **values)

    def _compile(self, model: keras.Model, config: TrainConfig, steps: int, one_hot: bool):
        binary = {}  # make_loss / make_metrics cover softmax heads
        if self.binary:
            binary["loss"] = keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
            binary["metrics"] = [keras.metrics.BinaryAccuracy(name="accuracy")]
        compile_model(model, config, steps_per_epoch=steps, one_hot=one_hot, **binary)

    # ----------------------------------------------------------------- fit
    def trial_macs(self, model: keras.Model, verbose: Any = 1) -> int | None:
        """Multiply-adds per image of a trial's model; prints them and applies ``max_macs``.

        Over ``max_macs`` raises ``keras_tuner.errors.FailedTrialError`` before any
        training (reported as ``SKIPPED`` by :func:`~keras_resnet.tuning.trial_results`).

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny")
            >>> macs = hm.trial_macs(hm.build(keras_tuner.HyperParameters()), verbose=0)
            >>> from keras_resnet.analysis import count_flops
            >>> macs == count_flops(create_model("_tiny", input_shape=(8, 8, 1)))
            True
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
        x, validation_data, steps, one_hot = trial_data(
            x, y, validation_data, config, self.classes, searched=_searched_names(hp)
        )
        steps = kwargs.get("steps_per_epoch") or steps
        with model.distribute_strategy.scope():
            self._compile(model, config, steps, one_hot and not self.binary)
            if initial_epoch:
                model.optimizer.iterations.assign(initial_epoch * steps)
        budget = TimeBudget(self.max_trial_seconds)
        standard = trial_callbacks(config, x, validation_data)
        callbacks = [*(callbacks or []), *standard, budget]
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
        n = len(history.epoch)
        history.history.update({k: [float(v)] * n for k, v in extra.items()})
        return history


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def _candidates(param: Any) -> tuple:
    """Values to check up front: every choice, or a range's ends and default."""
    if hasattr(param, "min_value"):
        return (param.min_value, param.max_value, param.default)
    return tuple(param.values)


def _searched_names(hp: kt.HyperParameters) -> set[str]:
    return {p.name for p in hp.space if len(_candidates(p)) > 1}
