"""Hyperparameter search over the ResNet family with KerasTuner.

:class:`ResNetHyperModel` is a ``keras_tuner.HyperModel`` whose ``build(hp)`` maps
hyperparameters onto the same builder as :func:`keras_resnet.create_model` (the
fields of :class:`keras_resnet.config.ResNetConfig`, with the same names where they
correspond) and whose ``fit(hp, model, ...)`` tunes the training recipe. Every
hyperparameter defaults to the baseline variant and recipe, so an empty
``HyperParameters`` builds exactly the baseline. The search space is data: a
``search_space`` dict fixes, narrows, widens or drops any hyperparameter without
subclassing.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner as kt

from keras_resnet.config import SHORTCUT_ALIASES, ResNetConfig
from keras_resnet.data import PRESETS
from keras_resnet.training import (
    SCHEDULES,
    TrainConfig,
    get_recipe,
    make_callbacks,
    make_loss,
    make_metrics,
    make_optimizer,
)
from keras_resnet.zoo import create_model, model_spec

# Head and input arguments of ResNet that a variant spec may carry but that are not
# part of the architecture.
_HEAD_KEYS = ("classes", "classifier_activation", "include_top", "pooling", "name")
SAMPLINGS = ("linear", "log", "reverse_log")
# Fields of keras_resnet.training.TrainConfig that are hyperparameters (the rest,
# e.g. epochs, precision, strategy, describe the run, not the recipe).
TRAINING_HPS: tuple[str, ...] = (
    "optimizer",
    "learning_rate",
    "momentum",
    "nesterov",
    "weight_decay",
    "schedule",
    "decay_factor",
    "min_lr_fraction",
    "warmup_epochs",
    "batch_size",
    "label_smoothing",
    "use_ema",
    "ema_momentum",
    "augment",
)
# Searched by default (with ranges below); the other training names stay fixed at
# the recipe's value unless ``search_space`` says otherwise.
_SEARCHED_TRAINING = ("learning_rate", "weight_decay", "label_smoothing", "batch_size", "schedule")
_CHOICE_DEFAULTS = {
    "block": ["basic", "bottleneck"],
    "groups": [1, 2, 4, 8, 32],
    "base_width": [4, 16, 64],
    "shortcut": ["projection", "zero_pad", "avg_down"],
    "se_ratio": [0.0, 0.25],
    "width_multiplier": [0.5, 1.0, 1.5, 2.0],
    "batch_size": [32, 64, 128, 256],
    "schedule": list(SCHEDULES),
}


@dataclasses.dataclass(frozen=True)
class _Param:
    """One hyperparameter: how to declare it on a ``keras_tuner.HyperParameters``."""

    name: str
    kind: str  # "fixed", "choice", "boolean", "int", "float"
    default: Any
    values: tuple = ()
    min_value: Any = None
    max_value: Any = None
    step: Any = None
    sampling: str = "linear"
    parent: tuple[str, tuple] | None = None

    def declare(self, hp: kt.HyperParameters) -> Any:
        cond = {}
        if self.parent:
            cond = {"parent_name": self.parent[0], "parent_values": list(self.parent[1])}
        if self.kind == "fixed":
            return hp.Fixed(self.name, self.default, **cond)
        if self.kind == "boolean":
            return hp.Boolean(self.name, default=self.default, **cond)
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default, **cond)
        factory = hp.Int if self.kind == "int" else hp.Float
        return factory(
            self.name,
            self.min_value,
            self.max_value,
            step=self.step,
            sampling=self.sampling,
            default=self.default,
            **cond,
        )

    def candidates(self) -> tuple:
        """Values to validate up front: every choice, or a range's end points."""
        if self.kind == "fixed":
            return (self.default,)
        if self.kind == "boolean":
            return (False, True)
        if self.kind == "choice":
            return self.values
        return (self.min_value, self.max_value, self.default)


def _encode(name: str, value: Any) -> Any:
    # KerasTuner values are scalars: None (a plain network) and depth tuples are strings.
    if name == "shortcut":
        return "none" if value is None else SHORTCUT_ALIASES.get(value, value)
    if name == "stage_depths" and not isinstance(value, str):
        return "-".join(str(v) for v in value)
    return value


def _decode(name: str, value: Any) -> Any:
    if name == "shortcut" and value == "none":
        return None
    if name == "stage_depths" and isinstance(value, str):
        return tuple(int(v) for v in value.split("-"))
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_entry(name: str, spec: Any, default: Any) -> _Param:
    """Turn one ``search_space`` entry into a :class:`_Param` (``None`` is handled above)."""
    bad = f"`search_space[{name!r}]`"
    if isinstance(spec, list):
        if not spec:
            raise ValueError(
                f"{bad} must list at least one choice. Received: search_space[{name!r}]=[]"
            )
        values = [_encode(name, v) for v in spec]
        if len(set(values)) != len(values):
            raise ValueError(f"{bad} has duplicate choices. Received: {spec!r}")
        if len(values) == 1:
            return _Param(name, "fixed", values[0])
        if set(values) == {True, False} and all(isinstance(v, bool) for v in values):
            return _Param(name, "boolean", bool(default))
        kinds = {type(v) for v in values}
        if kinds == {int, float}:
            values = [float(v) for v in values]
        elif len(kinds) != 1 or not kinds <= {int, float, str, bool}:
            raise ValueError(
                f"{bad} choices must all be ints, floats, strings or booleans of one type. "
                f"Received: search_space[{name!r}]={spec!r}"
            )
        default = _encode(name, default)
        if isinstance(values[0], float) and _is_number(default):
            default = float(default)
        return _Param(name, "choice", default if default in values else values[0], tuple(values))
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3, 4) or not (_is_number(spec[0]) and _is_number(spec[1])):
            raise ValueError(
                f"{bad} range must be (min, max), (min, max, step), (min, max, sampling) or "
                f"(min, max, step, sampling) with numeric min and max. "
                f"Received: search_space[{name!r}]={spec!r}"
            )
        lo, hi, rest = spec[0], spec[1], list(spec[2:])
        step = sampling = None
        if rest and (_is_number(rest[0]) or rest[0] is None):
            step = rest.pop(0)
        if rest:
            sampling = rest.pop(0)
        if rest or (sampling is not None and sampling not in SAMPLINGS):
            raise ValueError(
                f"{bad} sampling must be one of {', '.join(SAMPLINGS)}. "
                f"Received: search_space[{name!r}]={spec!r}"
            )
        if not lo < hi:
            raise ValueError(
                f"{bad} range needs min < max (use a single value to fix it). "
                f"Received: search_space[{name!r}]={spec!r}"
            )
        if step is not None and not step > 0:
            raise ValueError(
                f"{bad} step must be positive. Received: search_space[{name!r}]={spec!r}"
            )
        if sampling in ("log", "reverse_log") and lo <= 0:
            raise ValueError(
                f"{bad} log sampling needs min > 0. Received: search_space[{name!r}]={spec!r}"
            )
        is_int = all(isinstance(v, int) for v in (lo, hi) + ((step,) if step else ()))
        kind = "int" if is_int else "float"
        cast = int if is_int else float
        inside = _is_number(default) and lo <= default <= hi
        default = cast(default) if inside and (not is_int or default == int(default)) else cast(lo)
        return _Param(
            name,
            kind,
            default,
            min_value=cast(lo),
            max_value=cast(hi),
            step=step,
            sampling=sampling or "linear",
        )
    if isinstance(spec, (str, bool, int, float)):
        return _Param(name, "fixed", _encode(name, spec))
    raise ValueError(
        f"{bad} must be a fixed value, a list of choices, a (min, max[, step/sampling]) tuple "
        f"or None to drop it. Received: search_space[{name!r}]={spec!r}"
    )


class ResNetHyperModel(kt.HyperModel):
    """A KerasTuner search space over residual networks and their training recipe.

    ``build(hp)`` maps hyperparameters onto :func:`keras_resnet.create_model` (one
    builder, no second copy of the architecture); ``fit(hp, model, ...)`` compiles
    with the tuned recipe and trains. Defaults equal the ``baseline`` variant and
    its training ``recipe``, so ``build(keras_tuner.HyperParameters())`` is exactly
    ``create_model(baseline, input_shape=..., classes=...)``.

    Architecture hyperparameters (names of :class:`~keras_resnet.config.ResNetConfig`
    fields where they correspond): ``block`` (basic / bottleneck), ``preact``,
    ``stage1_depth`` ... ``stageN_depth`` (or ``stage_depths``: a list of depth
    families such as ``[(2, 2, 2), (3, 3, 3)]``), ``width_multiplier`` (scales
    ``stage_widths`` and ``stem_width``), ``groups`` and ``base_width`` (ResNeXt;
    active for bottleneck blocks), ``shortcut`` (``"none"`` is a plain network), ``drop_path_rate``
    (stochastic depth), ``dropout``, ``se_ratio`` (squeeze-and-excitation) and
    ``head_dropout``. Any other ``ResNetConfig`` field may be added (e.g.
    ``{"stem_width": [16, 32]}``). Training hyperparameters: ``learning_rate``,
    ``weight_decay``, ``label_smoothing``, ``batch_size``, ``schedule`` (searched by
    default) and the other tunable :class:`~keras_resnet.training.TrainConfig` fields
    (``optimizer``, ``momentum``, ``nesterov``, ``warmup_epochs``, ``augment``,
    ``use_ema``, ...; fixed at the recipe's value by default).

    ``search_space`` maps a name to: a value (fix it), a list (choices), a tuple
    ``(min, max)``, ``(min, max, step)``, ``(min, max, sampling)`` or
    ``(min, max, step, sampling)`` (a range; ints give ``hp.Int``, floats
    ``hp.Float``; sampling ``"linear"``, ``"log"`` or ``"reverse_log"``), or ``None``
    (drop it: the baseline value is used and nothing is searched). Every value is
    checked against the builder before any search starts.

    Args:
        input_shape: ``(height, width, channels)`` of the images.
        classes: Number of classes; 1 or 2 give a binary head (one sigmoid unit,
            binary cross-entropy), more a softmax head.
        baseline: Name of the zoo variant the defaults reproduce
            (see :func:`keras_resnet.list_models`).
        search_space: Overrides of the default space (see above).
        recipe: The training recipe the training hyperparameters default to: a
            name of :func:`keras_resnet.training.list_recipes` or a
            :class:`~keras_resnet.training.TrainConfig` (its
            ``early_stopping_patience``, ``monitor``, ``seed`` ... apply to every
            trial). Defaults to He et al. 2015's CIFAR recipe.
        name: Optional name of the HyperModel.
        tunable: Whether the hyperparameters join the tuner's search space.

    Example:
        >>> import keras_tuner
        >>> hypermodel = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny",
        ...                               search_space={"block": "bottleneck"})
        >>> model = hypermodel.build(keras_tuner.HyperParameters())
        >>> tuple(model.output.shape)
        (None, 10)
    """

    def __init__(
        self,
        input_shape: tuple[int | None, int | None, int],
        classes: int,
        *,
        baseline: str = "resnet20",
        search_space: Mapping[str, Any] | None = None,
        recipe: str | TrainConfig = "he2015_cifar",
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError(f"`classes` must be an integer >= 1. Received: classes={classes!r}")
        if search_space is not None and not isinstance(search_space, Mapping):
            raise TypeError(
                "`search_space` must be a dict mapping hyperparameter names to values, "
                f"lists, ranges or None. Received: search_space={search_space!r}"
            )
        if isinstance(recipe, str):
            recipe = get_recipe(recipe)
        if not isinstance(recipe, TrainConfig):
            raise TypeError(
                f"`recipe` must be a recipe name or a TrainConfig. Received: recipe={recipe!r}"
            )
        self.recipe = recipe
        spec = model_spec(baseline)
        self.baseline = baseline
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self._arch = {k: v for k, v in spec.items() if k in ResNetConfig.fields()}
        self._base_config = ResNetConfig(**self._arch)
        self._head = (
            {"classes": 1, "classifier_activation": "sigmoid"}
            if classes <= 2
            else {"classes": classes}
        )
        self._params = self._make_space(dict(search_space or {}))
        self._validate()

    # ----------------------------------------------------------------- the space
    @property
    def binary(self) -> bool:
        """Whether the head is a single sigmoid unit (``classes`` 1 or 2)."""
        return self.classes <= 2

    def _defaults(self) -> dict[str, Any]:
        cfg = self._base_config
        values: dict[str, Any] = {f: getattr(cfg, f) for f in ResNetConfig.fields()}
        values["shortcut"] = _encode("shortcut", cfg.shortcut)
        values["stage_depths"] = _encode("stage_depths", cfg.stage_depths)
        for i, depth in enumerate(cfg.stage_depths, start=1):
            values[f"stage{i}_depth"] = depth
        values.update(width_multiplier=1.0, head_dropout=0.0)
        values.update({n: getattr(self.recipe, n) for n in TRAINING_HPS})
        return values

    def _default_space(self) -> dict[str, Any]:
        cfg, d = self._base_config, self._defaults()

        def choices(name: str) -> list:
            base = list(_CHOICE_DEFAULTS[name])
            return base if d[name] in base else sorted(base + [d[name]], key=str)

        space: dict[str, Any] = {
            "block": choices("block"),
            "preact": [False, True],
            **{f"stage{i}_depth": (1, max(2, 2 * n)) for i, n in enumerate(cfg.stage_depths, 1)},
            "width_multiplier": choices("width_multiplier"),
            "groups": choices("groups"),
            "base_width": [
                v
                for v in choices("base_width")
                # a 3x3 width int(width * base_width / 64) of 0 is no network
                if v == d["base_width"] or int(min(cfg.stage_widths) * 0.5 * v / 64) >= 1
            ],
            "shortcut": choices("shortcut"),
            "drop_path_rate": (0.0, max(0.3, cfg.drop_path_rate), 0.05),
            "dropout": (0.0, max(0.3, cfg.dropout), 0.1),
            "se_ratio": choices("se_ratio"),
            "head_dropout": (0.0, 0.5, 0.1),
            "learning_rate": (min(1e-3, d["learning_rate"]), max(0.3, d["learning_rate"]), "log"),
            "weight_decay": (
                min(1e-5, d["weight_decay"] or 1e-5),
                max(1e-3, d["weight_decay"]),
                "log",
            ),
            "label_smoothing": (0.0, max(0.2, d["label_smoothing"]), 0.05),
            "batch_size": choices("batch_size"),
            "schedule": choices("schedule"),
        }
        if not d["weight_decay"]:  # a recipe without decay: search it linearly from 0
            space["weight_decay"] = (0.0, 1e-3)
        # Fixed by default; callers may search them.
        space.update({n: d[n] for n in TRAINING_HPS if n not in _SEARCHED_TRAINING})
        return space

    def known_names(self) -> tuple[str, ...]:
        """Every name ``search_space`` accepts.

        Example:
            >>> "groups" in ResNetHyperModel((32, 32, 3), 10).known_names()
            True
        """
        names = set(self._default_space()) | set(ResNetConfig.fields()) | {"stage_depths"}
        return tuple(sorted(names))

    def _make_space(self, overrides: dict[str, Any]) -> dict[str, _Param]:
        known = self.known_names()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter name(s) {unknown} in `search_space`. Valid names: "
                + ", ".join(known)
                + f". Received: search_space keys {sorted(overrides)}"
            )
        space = self._default_space()
        if "stage_depths" in overrides:  # a depth family replaces the per-stage depths
            for i in range(1, len(self._base_config.stage_depths) + 1):
                space.pop(f"stage{i}_depth")
            spec = overrides["stage_depths"]
            if isinstance(spec, tuple):  # one family, fixed
                overrides["stage_depths"] = _encode("stage_depths", spec)
            elif isinstance(spec, list) and all(isinstance(v, (tuple, list)) for v in spec):
                overrides["stage_depths"] = [_encode("stage_depths", v) for v in spec]
        space.update(overrides)
        defaults = self._defaults()
        params: dict[str, _Param] = {}
        for name, spec in space.items():
            if spec is not None:
                params[name] = _parse_entry(name, spec, defaults[name])
        # ResNeXt knobs only mean something for bottleneck blocks.
        block = params.get("block")
        block_values = block.candidates() if block else (self._base_config.block,)
        if "bottleneck" in block_values:
            for name in ("groups", "base_width"):
                if name in params and block and block.kind != "fixed":
                    params[name] = dataclasses.replace(
                        params[name], parent=("block", ("bottleneck",))
                    )
        else:
            for name in ("groups", "base_width"):
                if name in params and params[name].kind != "fixed":
                    params.pop(name)  # basic blocks only: nothing to search
        # Stochastic depth needs shortcuts: not searched for plain networks.
        shortcut = params.get("shortcut")
        if shortcut and "none" in shortcut.candidates() and "drop_path_rate" in params:
            residual = tuple(v for v in shortcut.candidates() if v != "none")
            if residual:
                params["drop_path_rate"] = dataclasses.replace(
                    params["drop_path_rate"], parent=("shortcut", residual)
                )
            else:
                params.pop("drop_path_rate")
        return params

    @property
    def space(self) -> dict[str, dict[str, Any]]:
        """The search space as plain data: name -> kind, default, values / range.

        Example:
            >>> ResNetHyperModel((32, 32, 3), 10).space["block"]["kind"]
            'choice'
        """
        return {
            name: {k: v for k, v in dataclasses.asdict(p).items() if v not in (None, ())}
            for name, p in self._params.items()
        }

    def _validate(self) -> None:
        """Check every candidate value against the builder before any search runs."""
        for name, param in self._params.items():
            for value in param.candidates():
                try:
                    self._check_value(name, value, param.parent)
                except (ValueError, TypeError) as err:
                    raise ValueError(
                        f"`search_space[{name!r}]` allows a value the builder rejects: {err}"
                    ) from None
        self._check_combinations()
        # The baseline itself (stride against the input size, head arguments).
        total = self._base_config.total_stride
        for d in self.input_shape[:2]:
            if d is not None and d < total:
                raise ValueError(
                    f"`input_shape` is too small for baseline {self.baseline!r}, which "
                    f"downsamples by {total}. Received: input_shape={self.input_shape}"
                )
        if len(self.input_shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels). "
                f"Received: input_shape={self.input_shape}"
            )

    def _check_combinations(self) -> None:
        """Every combination of the width-related choices must build (no failed trials)."""
        names = ("block", "groups", "base_width", "width_multiplier", "stem_width", "shortcut")
        defaults = self._defaults()
        options = [
            self._params[n].candidates() if n in self._params else (defaults[n],) for n in names
        ]
        for values in itertools.product(*options):
            block, groups, base_width, multiplier, stem, shortcut = values
            if block == "basic":
                groups, base_width = self._base_config.groups, self._base_config.base_width
            combo = dict(zip(names, values, strict=True))
            try:
                cfg = ResNetConfig(
                    **{
                        **self._arch,
                        "block": block,
                        "groups": groups,
                        "base_width": base_width,
                        "stage_widths": self._widths(multiplier),
                        "stem_width": self._scale(stem, multiplier),
                        "shortcut": _decode("shortcut", shortcut),
                    }
                )
                # The parameter-free option-A shortcut pads channels; it cannot drop any.
                first = cfg.stage_widths[0] * cfg.expansion
                if cfg.shortcut == "zero_pad" and first < cfg.stem_width:
                    raise ValueError(
                        f"shortcut='zero_pad' needs stage 1 ({first} channels) at least as "
                        f"wide as the stem ({cfg.stem_width})"
                    )
            except ValueError as err:
                raise ValueError(
                    f"`search_space` combines values the builder rejects: {combo}: {err}. "
                    "Narrow one of these choices."
                ) from None

    def _check_value(self, name: str, value: Any, parent: tuple[str, tuple] | None) -> None:
        if name in ResNetConfig.fields() or name == "stage_depths":
            context = {parent[0]: _decode(parent[0], parent[1][0])} if parent else {}
            ResNetConfig(**{**self._arch, **context, name: _decode(name, value)})
        elif name.startswith("stage") and name.endswith("_depth"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"depths are positive integers. Received: {name}={value!r}")
        elif name == "width_multiplier":
            if not _is_number(value) or value <= 0:
                raise ValueError(f"must be a positive number. Received: {name}={value!r}")
            stem = self._scale(self._base_config.stem_width, value)
            ResNetConfig(**{**self._arch, "stage_widths": self._widths(value), "stem_width": stem})
        elif name == "head_dropout":
            if not _is_number(value) or not 0 <= value < 1:
                raise ValueError(f"must be in [0, 1). Received: {name}={value!r}")
        elif name == "augment":
            if value not in PRESETS:
                raise ValueError(f"`augment` must be one of {PRESETS}. Received: augment={value!r}")
        elif name in TRAINING_HPS:
            # TrainConfig validates recipe values (epochs raised so warm-up always fits).
            self.recipe.replace(**{name: value, "epochs": max(self.recipe.epochs, 10**6)})

    @staticmethod
    def _scale(width: int, multiplier: float) -> int:
        return max(1, int(round(width * multiplier)))

    def _widths(self, multiplier: float) -> tuple[int, ...]:
        return tuple(self._scale(w, multiplier) for w in self._base_config.stage_widths)

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """Register the whole space (architecture and training) on ``hp``.

        KerasTuner calls this before the search, so hyperparameters first read in
        :meth:`fit` are part of the space from the first trial on.

        Args:
            hp: The ``keras_tuner.HyperParameters`` to populate.

        Example:
            >>> import keras_tuner
            >>> hp = keras_tuner.HyperParameters()
            >>> ResNetHyperModel((32, 32, 3), 10).declare_hyperparameters(hp)
            >>> hp.get("learning_rate")
            0.1
        """
        # Parents first, so conditional hyperparameters find them.
        order = sorted(self._params.values(), key=lambda p: p.parent is not None)
        for param in order:
            param.declare(hp)

    def _value(self, hp: kt.HyperParameters, name: str) -> Any:
        """The value of ``name`` for this trial (baseline / recipe when dropped or inactive)."""
        param = self._params.get(name)
        value = param.declare(hp) if param is not None else None
        if value is None:
            value = self._defaults()[name]
        return _decode(name, value)

    # ----------------------------------------------------------------- build
    def architecture(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """The :func:`keras_resnet.ResNet` arguments a set of hyperparameters selects.

        Args:
            hp: ``keras_tuner.HyperParameters`` (missing values take their defaults).

        Returns:
            Architecture fields plus ``head_dropout``, ready for ``create_model``.

        Example:
            >>> import keras_tuner
            >>> arch = ResNetHyperModel((32, 32, 3), 10).architecture(keras_tuner.HyperParameters())
            >>> arch["stage_depths"], arch["shortcut"]
            ((3, 3, 3), 'zero_pad')
        """
        arch = {f: self._value(hp, f) for f in ResNetConfig.fields() if f != "stage_depths"}
        if "stage_depths" in self._params:
            arch["stage_depths"] = self._value(hp, "stage_depths")
        else:
            n = len(self._base_config.stage_depths)
            arch["stage_depths"] = tuple(
                self._value(hp, f"stage{i}_depth") for i in range(1, n + 1)
            )
        # The multiplier scales the whole network (stem and stages), so the stem to
        # stage-1 ratio of the baseline is kept (option-A shortcuts need it).
        multiplier = self._value(hp, "width_multiplier")
        arch["stage_widths"] = self._widths(multiplier)
        arch["stem_width"] = self._scale(arch["stem_width"], multiplier)
        if arch["block"] == "basic":  # ResNeXt knobs are inactive: keep the baseline's
            arch["groups"], arch["base_width"] = (
                self._arch.get("groups", 1),
                self._arch.get("base_width", 64),
            )
        arch["head_dropout"] = self._value(hp, "head_dropout")
        return arch

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Build and compile the network these hyperparameters select.

        Args:
            hp: ``keras_tuner.HyperParameters``.

        Returns:
            A ``keras.Model`` compiled with the trial's optimizer at a constant
            learning rate, for integer labels and without label smoothing
            (:meth:`fit` recompiles with the full recipe: the schedule needs the
            number of steps, label smoothing one-hot labels).

        Raises:
            keras_tuner.errors.FailedTrialError: A combination of values the builder
                rejects (single values and width combinations were checked in
                ``__init__``); the tuner records the trial as failed and moves on.

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((16, 16, 1), 10, baseline="_tiny")
            >>> hm.build(keras_tuner.HyperParameters()).count_params() > 0
            True
        """
        arch = self.architecture(hp)
        try:
            model = create_model(self.baseline, input_shape=self.input_shape, **self._head, **arch)
        except (ValueError, TypeError) as err:
            raise kt.errors.FailedTrialError(
                f"Invalid combination of hyperparameters: {err}"
            ) from err
        # Integer labels and a constant rate here, so models from get_best_models()
        # evaluate on plain datasets; fit() compiles the trial's full recipe.
        config = self.train_config(hp).replace(
            schedule="constant", warmup_epochs=0, label_smoothing=0.0
        )
        self._compile(model, config, steps_per_epoch=1, one_hot=False)
        return model

    def train_config(self, hp: kt.HyperParameters, epochs: int | None = None) -> TrainConfig:
        """The recipe with the trial's training hyperparameters applied.

        Args:
            hp: ``keras_tuner.HyperParameters`` (missing values take the recipe's).
            epochs: Epochs of the run (default: the recipe's). A recipe warm-up
                longer than half the run is shortened to half of it, so short trials
                still decay.

        Returns:
            A :class:`keras_resnet.training.TrainConfig`, e.g. for
            :func:`keras_resnet.training.train` to retrain the best trial.

        Example:
            >>> import keras_tuner
            >>> hm = ResNetHyperModel((32, 32, 3), 10, search_space={"batch_size": 64})
            >>> cfg = hm.train_config(keras_tuner.HyperParameters(), epochs=3)
            >>> cfg.batch_size, cfg.epochs, cfg.recipe
            (64, 3, 'he2015_cifar')
        """
        values = {n: self._value(hp, n) for n in TRAINING_HPS}
        epochs = self.recipe.epochs if epochs is None else epochs
        values["warmup_epochs"] = min(values["warmup_epochs"], epochs / 2)
        return self.recipe.replace(epochs=epochs, **values)

    def _compile(
        self, model: keras.Model, config: TrainConfig, steps_per_epoch: int, one_hot: bool
    ) -> None:
        optimizer = make_optimizer(config, steps_per_epoch)
        if self.binary:  # make_loss / make_metrics cover softmax heads
            loss = keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy")]
        else:
            loss = make_loss(config, one_hot=one_hot)
            metrics = make_metrics(one_hot=one_hot)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)

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

        Compiles with :func:`keras_resnet.training.make_optimizer` (schedule,
        warm-up, decoupled weight decay), ``make_loss`` / ``make_metrics`` and adds
        ``make_callbacks`` (learning-rate logging, stop on NaN, early stopping when
        the recipe sets ``early_stopping_patience``). Data can be arrays (``x``,
        ``y``; the trial's ``batch_size``), a batched ``tf.data.Dataset`` (re-batched
        to the trial's ``batch_size`` when that is searched), or a callable
        ``data(batch_size=..., augment=..., one_hot=...)`` returning
        :class:`keras_resnet.data.Datasets` or ``(train, validation)``, e.g.
        ``functools.partial(keras_resnet.get_datasets, "digits", seed=0)``; only a
        callable can apply the ``augment`` hyperparameter.

        Args:
            hp: ``keras_tuner.HyperParameters`` of the trial.
            model: The model :meth:`build` returned.
            x: Training inputs, dataset or data callable (see above).
            y: Training labels when ``x`` is an array.
            validation_data: Validation data (taken from the callable when omitted).
            epochs: Last epoch (KerasTuner's Hyperband sets it).
            initial_epoch: First epoch (Hyperband sets it when it continues a model;
                the schedule continues from there).
            callbacks: Callbacks (KerasTuner adds its own here).
            **kwargs: Passed on to ``model.fit``.

        Returns:
            The ``keras.callbacks.History``; ``history.history["fit_seconds"]`` holds
            the trial's training time so tuners record it with the metrics.

        Example:
            >>> import numpy as np, keras_tuner
            >>> hm = ResNetHyperModel((16, 16, 1), 3, baseline="_tiny")
            >>> hp = keras_tuner.HyperParameters()
            >>> x, y = np.zeros((8, 16, 16, 1), "float32"), np.arange(8) % 3
            >>> history = hm.fit(hp, hm.build(hp), x, y, epochs=1, verbose=0)
            >>> sorted(history.history)[:2]
            ['accuracy', 'fit_seconds']
        """
        import tensorflow as tf

        config = self.train_config(hp, epochs=max(1, epochs))
        batch_size = config.batch_size
        smoothing = (not self.binary) and config.label_smoothing > 0
        steps = None
        from_callable = callable(x) and not isinstance(x, tf.data.Dataset)
        if from_callable:
            data = x(batch_size=batch_size, augment=config.augment, one_hot=smoothing)
            x, y = data[0], None
            info = getattr(data, "info", None)
            if info is not None and int(x.cardinality()) < 1:  # e.g. filtered pipelines
                steps = max(1, math.ceil(info.num_examples["train"] / batch_size))
            validation_data = data[1] if validation_data is None else validation_data
        elif self._params.get("augment") and self._params["augment"].kind != "fixed":
            raise kt.errors.FatalValueError(
                "The `augment` hyperparameter needs a data callable "
                "`data(batch_size=..., augment=..., one_hot=...)` as the training data. "
                f"Received: x of type {type(x).__name__}; fix or drop it with "
                "search_space={'augment': None}"
            )
        if isinstance(x, tf.data.Dataset):
            searched = "batch_size" in self._params and self._params["batch_size"].kind != "fixed"
            if searched and not from_callable:  # a callable already batched at batch_size
                # Re-batching hides the cardinality; estimate the steps for the LR
                # schedule from the original batches (one batch is read to size them).
                batches = int(x.cardinality())
                first = int(tf.shape(tf.nest.flatten(next(iter(x.take(1))))[0])[0])
                x = x.rebatch(batch_size)
                steps = math.ceil(batches * first / batch_size) if batches > 0 else None
            x = self._labels(x, smoothing)
            kwargs.pop("batch_size", None)
            kwargs.setdefault("shuffle", False)  # a pipeline shuffles itself
            one_hot = x.element_spec[1].shape.rank == 2
        else:
            kwargs.setdefault("batch_size", batch_size)
            y, one_hot = self._array_labels(y, smoothing)
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = self._labels(validation_data, one_hot)
        elif isinstance(validation_data, tuple) and len(validation_data) == 2:
            validation_data = (
                validation_data[0],
                self._array_labels(validation_data[1], one_hot)[0],
            )
        steps = steps or self._steps_per_epoch(
            x, kwargs.get("batch_size"), kwargs.get("steps_per_epoch")
        )
        with model.distribute_strategy.scope():
            self._compile(model, config, steps_per_epoch=steps, one_hot=one_hot and not self.binary)
            if initial_epoch:
                model.optimizer.iterations.assign(initial_epoch * steps)
        monitor = config.monitor
        if validation_data is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        callbacks = list(callbacks or []) + make_callbacks(config, None, monitor=monitor)
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
        seconds = time.perf_counter() - start
        n = len(next(iter(history.history.values()), []))
        history.history["fit_seconds"] = [seconds] * n
        return history

    def _array_labels(self, y: Any, one_hot: bool) -> tuple[Any, bool]:
        if y is None or self.binary:
            return y, False
        rank = len(getattr(y, "shape", ()))
        if rank == 1 and one_hot:
            return keras.ops.one_hot(keras.ops.convert_to_tensor(y, "int32"), self.classes), True
        return y, rank == 2

    def _labels(self, ds: Any, one_hot: bool) -> Any:
        import tensorflow as tf

        spec = ds.element_spec
        if self.binary or not one_hot or not isinstance(spec, tuple) or spec[1].shape.rank != 1:
            return ds
        classes = self.classes
        return ds.map(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), classes)))

    @staticmethod
    def _steps_per_epoch(x: Any, batch_size: int | None, steps: int | None) -> int:
        import tensorflow as tf

        if steps:
            return int(steps)
        if isinstance(x, tf.data.Dataset):
            n = int(x.cardinality())
            return n if n > 0 else 1
        if x is None or batch_size is None:
            return 1
        return max(1, math.ceil(len(x) / batch_size))


def hyperparameter_names(hypermodel: ResNetHyperModel) -> list[str]:
    """Names of the hyperparameters a hypermodel declares, in declaration order.

    Example:
        >>> hyperparameter_names(ResNetHyperModel((32, 32, 3), 10))[:2]
        ['block', 'preact']
    """
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return [p.name for p in hp.space]


def trial_results(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """One row per finished trial: id, status, hyperparameters, score, seconds.

    Rows are sorted best first (the oracle's objective). Hyperband's bookkeeping
    values (``tuner/...``) are kept in ``hyperparameters`` as they are part of the
    trial.

    Args:
        tuner: A KerasTuner tuner after (or during) ``search``.

    Returns:
        A list of JSON-serializable dicts.

    Example:
        >>> trial_results(tuner)  # doctest: +SKIP
        [{'trial': '0', 'status': 'COMPLETED', 'score': 0.91, ...}]
    """
    rows = []
    oracle = tuner.oracle
    for trial in oracle.trials.values():
        metrics = trial.metrics
        seconds = metrics.get_best_value("fit_seconds") if metrics.exists("fit_seconds") else None
        rows.append(
            {
                "trial": trial.trial_id,
                "status": str(trial.status),
                "score": trial.score,
                "best_step": trial.best_step,
                "seconds": seconds,
                "hyperparameters": dict(trial.hyperparameters.values),
            }
        )
    direction = getattr(oracle.objective, "direction", "max")
    sign = -1 if direction == "max" else 1

    def key(row: dict[str, Any]) -> tuple:
        return (row["score"] is None, sign * (row["score"] or 0.0), row["trial"])

    return sorted(rows, key=key)


TUNERS: tuple[str, ...] = ("random", "hyperband", "bayesian")


def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    *,
    max_trials: int,
    max_epochs: int,
    directory: str | os.PathLike,
    project_name: str = "search",
    objective: str | kt.Objective = "val_accuracy",
    overwrite: bool = False,
    seed: int | None = None,
    distribution_strategy: Any = None,
    executions_per_trial: int = 1,
) -> kt.Tuner:
    """A KerasTuner tuner of ``kind`` with one set of arguments for all three.

    ``max_trials`` caps the number of trials for every kind (Hyperband sizes its
    brackets from ``max_epochs`` and stops at the cap). With ``overwrite=False`` an
    existing project in ``directory/project_name`` is reloaded, so an interrupted
    search continues where it stopped (a trial that was running is run again).

    Args:
        kind: ``"random"`` (RandomSearch), ``"hyperband"`` or ``"bayesian"``
            (BayesianOptimization).
        hypermodel: The hypermodel, e.g. a :class:`ResNetHyperModel`.
        max_trials: Maximum number of trials (>= 1).
        max_epochs: Epochs of the longest Hyperband trial (>= 1; informational for
            the others, whose epochs come from ``search(..., epochs=...)``).
        directory: Folder of KerasTuner projects.
        project_name: Sub-folder of this search.
        objective: Metric to optimize (``"val_accuracy"``: maximize).
        overwrite: Delete an existing project instead of resuming it.
        seed: Random seed of the oracle.
        distribution_strategy: A ``tf.distribute.Strategy`` for every trial.
        executions_per_trial: Trainings averaged per trial.

    Returns:
        A ``keras_tuner.Tuner``.

    Example:
        >>> import tempfile
        >>> hm = ResNetHyperModel((8, 8, 1), 10, baseline="_tiny")
        >>> tuner = make_tuner("bayesian", hm, max_trials=4, max_epochs=2,
        ...                    directory=tempfile.mkdtemp())
        >>> type(tuner).__name__, tuner.oracle.max_trials
        ('BayesianOptimization', 4)
    """
    if kind not in TUNERS:
        raise ValueError(f"`kind` must be one of {TUNERS}. Received: kind={kind!r}")
    for arg, value in (
        ("max_trials", max_trials),
        ("max_epochs", max_epochs),
        ("executions_per_trial", executions_per_trial),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    common: dict[str, Any] = {
        "objective": objective,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        "seed": seed,
        "distribution_strategy": distribution_strategy,
        "executions_per_trial": executions_per_trial,
    }
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(
            hypermodel, max_trials=max_trials, num_initial_points=min(3, max_trials), **common
        )
    tuner = kt.Hyperband(
        hypermodel, max_epochs=max_epochs, factor=3, hyperband_iterations=1, **common
    )
    # Hyperband has no trial budget of its own; the oracle's generic cap stops it.
    tuner.oracle.max_trials = max_trials
    return tuner


__all__ = [
    "TRAINING_HPS",
    "TUNERS",
    "make_tuner",
    "ResNetHyperModel",
    "hyperparameter_names",
    "trial_results",
]
