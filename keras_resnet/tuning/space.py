"""The search space: ``search_space`` entries declared with KerasTuner's own ``hp.*`` calls.

A ``search_space`` entry is a value (``hp.Fixed``), a list (``hp.Choice``, or
``hp.Boolean`` for ``[False, True]``), a tuple ``(min, max[, step][, sampling])``
(``hp.Int`` for ints, ``hp.Float`` otherwise) or ``None`` (dropped: the baseline's
value is used and nothing is searched). The default space around a baseline is data
in the same format (:func:`default_space`), so user entries simply replace defaults.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner as kt

from keras_resnet.models.resnet.config import SHORTCUT_ALIASES, ResNetConfig
from keras_resnet.training import SCHEDULES, TrainConfig

# Fields of TrainConfig that are hyperparameters (the rest, e.g. epochs, precision,
# strategy, describe the run, not the recipe).
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
# Hyperparameters that are not ResNetConfig / TrainConfig fields.
EXTRA_HPS: tuple[str, ...] = ("width_multiplier", "head_dropout")
# The default space's most expensive configuration costs at most this many times the
# baseline's MACs (width x1.5 = 2.25x, depth x1.67 for 3-block stages, bottlenecks at
# the baseline's inner width): sized to what a CPU user can wait for.
COST_FACTOR = 4.0
# Children that only mean something for some values of a parent.
PARENTS: dict[str, tuple[str, Any]] = {
    "groups": ("block", lambda v: v == "bottleneck"),
    "base_width": ("block", lambda v: v == "bottleneck"),
    "drop_path_rate": ("shortcut", lambda v: v != "none"),
}


def encode_value(name: str, value: Any) -> Any:
    """A value as KerasTuner stores it (scalars only): `None` -> "none", (2, 2) -> "2-2".

    Example:
        >>> encode_value("stage_depths", (2, 2)), encode_value("shortcut", None)
        ('2-2', 'none')
    """
    if name == "shortcut":
        return "none" if value is None else SHORTCUT_ALIASES.get(value, value)
    if name == "stage_depths" and isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return value


def decode_value(name: str, value: Any) -> Any:
    """Inverse of :func:`encode_value`.

    Example:
        >>> decode_value("stage_depths", "2-2"), decode_value("shortcut", "none")
        ((2, 2), None)
    """
    if name == "shortcut" and value == "none":
        return None
    if name == "stage_depths" and isinstance(value, str):
        return tuple(int(v) for v in value.split("-"))
    return value


def _is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _with(choices: list, value: Any) -> list:
    return choices if value in choices else sorted([*choices, value], key=str)


def default_space(base: ResNetConfig, recipe: TrainConfig) -> dict[str, Any]:
    """The default ``search_space`` around an architecture and a recipe.

    Bounded by the baseline's cost (:data:`COST_FACTOR`): cardinality up to 4 (or the
    baseline's) at the baseline's bottleneck width (``base_width`` follows ``groups``,
    ResNeXt's constant-complexity template), width x0.5 to x1.5, stage depths up to
    1.5 times the baseline's (at least 2).

    Example:
        >>> space = default_space(ResNetConfig(block="basic"), TrainConfig())
        >>> space["groups"], space["width_multiplier"], space["stage1_depth"]
        ([1, 2, 4], [0.5, 1.0, 1.5], (1, 5))
    """
    lr, wd = recipe.learning_rate, recipe.weight_decay
    space: dict[str, Any] = {
        "block": _with(["basic", "bottleneck"], base.block),
        "preact": [False, True],
        **{
            f"stage{i}_depth": (1, max(2, math.ceil(1.5 * n)))
            for i, n in enumerate(base.stage_depths, 1)
        },
        "width_multiplier": [0.5, 1.0, 1.5],
        "groups": _with([1, 2, 4], base.groups),
        "shortcut": _with(
            ["projection", "zero_pad", "avg_down"], encode_value("shortcut", base.shortcut)
        ),
        "drop_path_rate": (0.0, max(0.3, base.drop_path_rate), 0.05),
        "dropout": (0.0, max(0.3, base.dropout), 0.1),
        "se_ratio": _with([0.0, 0.25], base.se_ratio),
        "head_dropout": (0.0, 0.5, 0.1),
        "learning_rate": (min(1e-3, lr), max(0.3, lr), "log"),
        "weight_decay": (min(1e-5, wd), max(1e-3, wd), "log") if wd else (0.0, 1e-3),
        "label_smoothing": (0.0, max(0.2, recipe.label_smoothing), 0.05),
        "batch_size": _with([32, 64, 128, 256], recipe.batch_size),
        "schedule": _with(list(SCHEDULES), recipe.schedule),
    }
    return {**space, **{n: getattr(recipe, n) for n in TRAINING_HPS if n not in space}}


def declare(hp: kt.HyperParameters, name: str, spec: Any, default: Any) -> Any:
    """Declare one ``search_space`` entry on ``hp`` and return its value.

    Args:
        hp: The ``keras_tuner.HyperParameters`` to declare on.
        name: Hyperparameter name.
        spec: A value, list, ``(min, max[, step][, sampling])`` tuple (see module doc).
        default: The baseline's value, used as default where the entry allows it.

    Raises:
        ValueError: A malformed entry, naming ``search_space[name]``.

    Example:
        >>> import keras_tuner
        >>> hp = keras_tuner.HyperParameters()
        >>> declare(hp, "learning_rate", (0.01, 0.1, "log"), 0.05)
        0.05
        >>> type(hp.space[0]).__name__
        'Float'
    """
    where = f"`search_space[{name!r}]`"
    if not isinstance(spec, (list, tuple, str, bool, int, float)):
        raise ValueError(
            f"{where} must be a fixed value, a list of choices, a (min, max[, step][, sampling]) "
            f"tuple or None to drop it. Received: search_space[{name!r}]={spec!r}"
        )
    try:
        if isinstance(spec, list):
            return _declare_choice(hp, name, [encode_value(name, v) for v in spec], default)
        if isinstance(spec, tuple) and name != "stage_depths":
            return _declare_range(hp, name, spec, default)
        return hp.Fixed(name, encode_value(name, spec))
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{where} is not a valid hyperparameter: {err} Received: {spec!r}"
        ) from None


def _declare_choice(hp: kt.HyperParameters, name: str, values: list, default: Any) -> Any:
    if not values:
        raise ValueError("it must list at least one choice.")
    if len({(type(v), v) for v in values}) != len(values):
        raise ValueError("it has duplicate choices.")
    if len(values) == 1:
        return hp.Fixed(name, values[0])
    if all(isinstance(v, bool) for v in values):  # [False, True]: duplicates are out
        return hp.Boolean(name, default=bool(default))
    if all(_is_number(v) for v in values) and any(isinstance(v, float) for v in values):
        values = [float(v) for v in values]  # [0, 0.25] is one type for the user
    default = encode_value(name, default)
    return hp.Choice(name, values, default=default if default in values else None)


def _declare_range(hp: kt.HyperParameters, name: str, spec: tuple, default: Any) -> Any:
    lo, hi, *rest = spec if len(spec) >= 2 else (None, None)
    step = rest.pop(0) if rest and (_is_number(rest[0]) or rest[0] is None) else None
    sampling = rest.pop(0) if rest else "linear"
    if rest or not (_is_number(lo) and _is_number(hi)):
        raise ValueError(
            "a range is (min, max), (min, max, step), (min, max, sampling) or "
            "(min, max, step, sampling) with numeric min and max."
        )
    if not lo < hi:
        raise ValueError("a range needs min < max (use a single value to fix it).")
    if step is not None and not step > 0:
        raise ValueError("the step must be positive.")
    if sampling in ("log", "reverse_log") and lo <= 0:
        raise ValueError("log sampling needs min > 0.")
    inside = _is_number(default) and lo <= default <= hi
    if all(isinstance(v, int) for v in (lo, hi, step or 1)):
        default = int(default) if inside and default == int(default) else lo
        return hp.Int(name, lo, hi, step=step, sampling=sampling, default=default)
    default = float(default) if inside else float(lo)
    return hp.Float(name, float(lo), float(hi), step=step, sampling=sampling, default=default)


def active_values(hp: kt.HyperParameters, name: str, parent_default: Any) -> list | None:
    """Parent values that activate child ``name``: ``None`` all, ``[]`` none.

    An undeclared parent keeps ``parent_default``.

    Example:
        >>> active_values(kt.HyperParameters(), "base_width", "bottleneck") is None
        True
    """
    parent, wanted = PARENTS[name]
    declared = [p for p in hp.space if p.name == parent]
    values = list(declared[0].values) if declared else [parent_default]
    active = [v for v in values if wanted(v)]
    return None if len(active) == len(values) else active
