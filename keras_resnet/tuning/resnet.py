"""``ResNetHyperModel``: KerasTuner over the same builder as ``create_model``."""

from __future__ import annotations

import itertools
from typing import Any

import keras_tuner as kt

from keras_resnet.models.resnet.config import ResNetConfig
from keras_resnet.training import TrainConfig
from keras_resnet.tuning import space as sp
from keras_resnet.tuning.base import ZooHyperModel, candidates
from keras_resnet.utils.checks import check_float, check_rate

# Hyperparameters whose combinations decide whether the widths are buildable.
_WIDTH_HPS = ("block", "groups", "base_width", "width_multiplier", "stem_width", "shortcut")


class ResNetHyperModel(ZooHyperModel):
    """A KerasTuner search space over residual networks and their training recipe.

    ``build(hp)`` maps hyperparameters onto :func:`keras_resnet.create_model`
    (:class:`~keras_resnet.models.resnet.config.ResNetConfig` fields of the same names, plus
    ``stageN_depth``, ``width_multiplier``, ``head_dropout``); ``fit(hp, model, ...)``
    trains with the trial's :class:`~keras_resnet.training.TrainConfig` fields. Every
    default is the ``baseline`` and the ``recipe``: ``build(HyperParameters())`` is
    ``create_model(baseline, ...)``. The default space
    (:func:`~keras_resnet.tuning.default_space`) is bounded by the baseline's cost.

    ``search_space`` is a dict (name -> value to fix it, list of choices,
    ``(min, max[, step][, sampling])`` range, ``None`` to drop it) or a function
    ``space(hp)`` declaring hyperparameters with ``hp.*`` before the defaults (what
    it declares wins). Names and values are checked here, before any search.

    Arguments are :class:`~keras_resnet.tuning.base.ZooHyperModel`'s; ``baseline``
    defaults to ``"resnet20"``, and ``search_space`` may also be the dict above.

    Example:
        >>> import keras_tuner
        >>> hypermodel = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny",
        ...                               search_space={"block": "bottleneck"})
        >>> model = hypermodel.build(keras_tuner.HyperParameters())
        >>> tuple(model.output.shape), model.get_layer("stage1_block1_conv3").filters
        ((None, 10), 32)
    """

    family = "resnet"
    default_baseline = "resnet20"

    #: Besides a function of hp, ``search_space`` may be a dict (see above).
    space_dict = "a dict mapping hyperparameter names to values, lists, ranges or None"

    def _prepare(self, search_space: Any) -> None:
        self._base = ResNetConfig(**self._record.arch)
        self._space_fn = search_space if callable(search_space) else None
        overrides = dict(search_space or {}) if self._space_fn is None else {}
        self._check_names(overrides)
        space = sp.default_space(self._base, self.recipe)
        if "stage_depths" in overrides:  # a depth family replaces the per-stage depths
            space = {k: v for k, v in space.items() if not k.endswith("_depth")}
        space.update(overrides)
        self._entries = {k: v for k, v in space.items() if v is not None}
        self._validate()

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
        return tuple(sorted((*ResNetConfig.fields(), *depths, *sp.EXTRA_HPS, *sp.TRAINING_HPS)))

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
                active = sp.active_values(hp, name, sp.encode_value(parent, self._default(parent)))
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
            for v in candidates(p)
        ]
        options = [candidates(space[n]) if n in space else (None,) for n in _WIDTH_HPS]
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

    def _value(self, hp: kt.HyperParameters, name: str) -> Any:
        """The trial's value of ``name`` (the default when not declared or inactive)."""
        return sp.decode_value(name, hp.values[name]) if name in hp.values else self._default(name)

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


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))
