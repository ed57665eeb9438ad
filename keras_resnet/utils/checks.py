"""Shared argument checks: one message format for every public entry point.

Each check returns the (normalized) value or raises ``TypeError`` for a value of the
wrong type and ``ValueError`` for one out of range, naming the argument, what is
allowed and what was received (keras-hub style: ``... Received: groups=3``). Types
are strict, as a config file needs them: a bool is never an int or a float, and the
string ``"false"`` is never a bool. Every check takes the argument's ``name`` (used in
the message) and the ``value`` to check; ``allow_none=True`` lets ``None`` through.

Example:
    >>> check_int("epochs", 3, min_value=1)
    3
    >>> check_bool("use_ema", "false")
    Traceback (most recent call last):
    TypeError: `use_ema` must be True or False. Received: use_ema='false'
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def _fail(error: type[Exception], name: str, what: str, value: Any) -> Exception:
    return error(f"`{name}` must be {what}. Received: {name}={value!r}")


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def _in_bounds(value: float, low, high, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def _number(name: str, value: Any, what: str, types: type, bounds: tuple, allow_none: bool):
    """``value`` if it is ``None`` (allowed) or a finite number of ``types`` in ``bounds``
    (``(low, high, low_open, high_open)``)."""
    if value is None and allow_none:
        return None
    what += _bounds(*bounds) + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, types):
        raise _fail(TypeError, name, what, value)
    finite = isinstance(value, numbers.Integral) or math.isfinite(value)
    if not finite or not _in_bounds(value, *bounds):
        raise _fail(ValueError, name, what, value)
    return value


def check_int(
    name: str,
    value: Any,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as an ``int`` if it is an integer (not a bool) within bounds.

    Args:
        value: A Python or NumPy integer.
        min_value: Smallest allowed value, or None.
        max_value: Largest allowed value, or None.

    Example:
        >>> check_int("batch_size", 0, min_value=1)
        Traceback (most recent call last):
        ValueError: `batch_size` must be an int >= 1. Received: batch_size=0
    """
    bounds = (min_value, max_value, False, False)
    value = _number(name, value, "an int", numbers.Integral, bounds, allow_none)
    return None if value is None else int(value)


def check_float(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Return ``value`` as a finite ``float`` within bounds (ints accepted, bools not).

    Args:
        min_value: Lower bound, or None.
        max_value: Upper bound, or None.
        min_open: Exclude ``min_value`` itself.
        max_open: Exclude ``max_value`` itself.

    Example:
        >>> check_float("learning_rate", 1, min_value=0, min_open=True)
        1.0
        >>> check_float("learning_rate", True)
        Traceback (most recent call last):
        TypeError: `learning_rate` must be a finite number. Received: learning_rate=True
    """
    bounds = (min_value, max_value, min_open, max_open)
    value = _number(name, value, "a finite number", numbers.Real, bounds, allow_none)
    return None if value is None else float(value)


def check_rate(name: str, value: Any, *, include_one: bool = False, exclude_zero: bool = False):
    """Return ``value`` as a float fraction in ``[0, 1)`` (bounds adjustable).

    Args:
        include_one: Allow 1.
        exclude_zero: Refuse 0.

    Example:
        >>> check_rate("validation_fraction", 1.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `validation_fraction` must be a ... in [0, 1). Received: validation_fraction=1.0
    """
    return check_float(
        name, value, min_value=0, max_value=1, min_open=exclude_zero, max_open=not include_one
    )


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """Return ``value`` if it is ``True`` or ``False`` (never ``1``, ``"false"``, ...).

    Example:
        >>> check_bool("nesterov", True)
        True
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        raise _fail(TypeError, name, "True or False" + (" or None" if allow_none else ""), value)
    return value


def _same(a: Any, b: Any) -> bool:
    # `1 == True` in Python: a choice of (True, False, "auto") must not accept 1
    return type(a) is type(b) and a == b


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed`` (with a "did you mean" hint if not).

    Args:
        allowed: The allowed values (compared with their types: ``1`` is not ``True``).

    Example:
        >>> check_choice("optimizer", "adamw", ("sgd", "adamw"))
        'adamw'
        >>> check_choice("optimizer", "adamm", ("sgd", "adamw"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `optimizer` must be one of 'sgd', 'adamw' (did you mean 'adamw'?). Received: ...
    """
    allowed = tuple(allowed)
    if any(_same(value, a) for a in allowed):
        return value
    words = [a for a in allowed if isinstance(a, str)]
    hint = difflib.get_close_matches(value, words, n=1) if isinstance(value, str) else []
    listed = ", ".join(repr(a) for a in allowed)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"`{name}` must be one of {listed}{suggestion}. Received: {name}={value!r}")


def check_str(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """Return ``value`` if it is a non-empty string.

    Example:
        >>> check_str("dataset", "")
        Traceback (most recent call last):
        ValueError: `dataset` must be a non-empty str. Received: dataset=''
    """
    if value is None and allow_none:
        return None
    what = "a non-empty str" + (" or None" if allow_none else "")
    if not isinstance(value, str):
        raise _fail(TypeError, name, what, value)
    if not value:
        raise _fail(ValueError, name, what, value)
    return value


def check_path(
    name: str, value: Any, *, exists: str | None = None, allow_none: bool = False
) -> Path | None:
    """Return ``value`` as a ``Path``; refuse non-paths and the empty string.

    Args:
        value: A ``str`` or path-like.
        exists: ``"file"`` or ``"dir"`` to require an existing file or folder
            (``FileNotFoundError`` otherwise), or None.

    Example:
        >>> check_path("output", "")
        Traceback (most recent call last):
        ValueError: `output` must be a non-empty path. Received: output=''
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise _fail(TypeError, name, "a path (str or os.PathLike)", value)
    if not os.fspath(value):
        raise _fail(ValueError, name, "a non-empty path", value)
    path = Path(value).expanduser()
    if exists == "file" and not path.is_file():
        raise FileNotFoundError(f"`{name}` must be an existing file. Received: {name}={value!r}")
    if exists == "dir" and not path.is_dir():
        raise FileNotFoundError(f"`{name}` must be an existing folder. Received: {name}={value!r}")
    return path


def check_floats(name: str, value: Any, *, allow_none: bool = False) -> tuple[float, ...] | None:
    """Return a list or tuple of finite numbers as a tuple of floats.

    Args:
        value: A list or tuple of numbers.

    Example:
        >>> check_floats("decay_at", [0.5, 0.75])
        (0.5, 0.75)
        >>> check_floats("decay_at", 0.5)
        Traceback (most recent call last):
        TypeError: `decay_at` must be a list or tuple of numbers. Received: decay_at=0.5
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (list, tuple)):
        raise _fail(TypeError, name, "a list or tuple of numbers", value)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise _fail(TypeError, name, "a list or tuple of numbers", value)
        if not math.isfinite(item):
            raise _fail(ValueError, name, "a list or tuple of finite numbers", value)
    return tuple(float(v) for v in value)


# A sanity limit on each side of an image size: one 4096x4096 RGB float32 image is
# 200 MB, and a ResNet's activations for it tens of GB (the memory check of `train`,
# keras_resnet.training.memory, bounds what a run can afford below this).
MAX_IMAGE_SIDE = 4096


def check_image_size(name: str, value: Any) -> tuple[int, int] | None:
    """Return an image size as ``(height, width)``: an int means a square; None stays None.

    Each side must be 1 to :data:`MAX_IMAGE_SIDE` (4096) pixels.

    Example:
        >>> check_image_size("image_size", 16), check_image_size("image_size", [16, 8])
        ((16, 16), (16, 8))
        >>> check_image_size("image_size", 0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `image_size` must be an int or a (height, width) pair ... image_size=0
        >>> check_image_size("image_size", 1000000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `image_size` must be ... to 4096 pixels a side, or None. Received: ...
    """
    what = (
        f"an int or a (height, width) pair of ints from 1 to {MAX_IMAGE_SIDE} pixels a side, "
        "or None"
    )
    pair = isinstance(value, (list, tuple))
    if value is None:
        return None
    if (pair and len(value) != 2) or not (pair or isinstance(value, numbers.Integral)):
        raise _fail(TypeError, name, what, value)
    sizes = tuple(value) if pair else (value, value)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in sizes):
        raise _fail(TypeError, name, what, value)
    if min(sizes) < 1 or max(sizes) > MAX_IMAGE_SIDE:
        raise _fail(ValueError, name, what, value)
    return (int(sizes[0]), int(sizes[1]))


def check_ints(name: str, value: Any, *, min_value: int | None = None) -> tuple[int, ...]:
    """Return a non-empty sequence of integers, each ``>= min_value``, as a tuple.

    Args:
        min_value: Smallest allowed item, or None.

    Example:
        >>> check_ints("stage_depths", [2, 2], min_value=1)
        (2, 2)
        >>> check_ints("sizes", 3, min_value=1)
        Traceback (most recent call last):
        TypeError: `sizes` must be a non-empty sequence of ints >= 1. Received: sizes=3
    """
    what = "a non-empty sequence of ints" + _bounds(min_value, None, False, False)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _fail(TypeError, name, what, value)
    items = tuple(value)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise _fail(TypeError, name, what, value)
    if not items or not all(_in_bounds(v, min_value, None, False, False) for v in items):
        raise _fail(ValueError, name, what, value)
    return tuple(int(v) for v in items)


def check_fields(
    owner: str, given: Iterable[str], valid: Sequence[str], what: str = "field"
) -> None:
    """Raise ``TypeError`` naming unknown field names (with a "did you mean" hint).

    Args:
        owner: What the fields belong to (``"TrainConfig"``), used in the message.
        given: Field names received.
        valid: The valid field names.
        what: What a name is called in the message (``"field"``, ``"option"``).

    Example:
        >>> check_fields("TrainConfig", ["epochz"], ["epochs"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: Unknown field(s) of TrainConfig: epochz (did you mean 'epochs'?). Valid ...
    """
    unknown = sorted(set(given) - set(valid))
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(valid), n=1)
        raise TypeError(
            f"Unknown {what}(s) of {owner}: {', '.join(unknown)}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f". Valid {what}s: {', '.join(valid)}"
        )
