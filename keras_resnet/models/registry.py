"""The model registry: one typed record per named variant (the pattern of timm's registry).

A :class:`ModelRecord` holds everything known about a variant: the builder and its
architecture arguments (no head arguments), the default input and classes, the
published trainable-parameter count with its source, and the names of the same layout
in other libraries (weight sources). :func:`create_model` merges a record's defaults
with user overrides as ``dict(spec, **overrides)``
(:func:`keras_resnet.models.factory.create_model`). The built-in records live in
:mod:`keras_resnet.models.resnet.zoo` and :mod:`keras_resnet.models.densenet.zoo` and
are loaded on first lookup.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras

from keras_resnet.utils.checks import check_int, check_ints

# Modules whose import registers built-in records (loaded on the first lookup).
BUILTIN_MODULES = ["keras_resnet.models.resnet.zoo", "keras_resnet.models.densenet.zoo"]
_REGISTRY: dict[str, ModelRecord] = {}
_loaded = False


@dataclass(frozen=True)
class ModelRecord:
    """Everything known about one named variant.

    Args:
        name: Registry name (timm style, e.g. ``"resnet50d"``); names starting with
            ``_`` are private (tests).
        builder: Callable taking architecture and head keyword arguments and
            returning a ``keras.Model`` (:func:`keras_resnet.models.resnet.builder.ResNet`).
        arch: Architecture keyword arguments of ``builder`` (no head arguments).
        input_shape: The input the variant was designed for, e.g. ``(224, 224, 3)``
            (used for summaries, MAC counts and tests; models accept other sizes).
        classes: Default number of classes of the classifier.
        params: Published trainable-parameter count at ``classes`` (or ``None``).
        params_source: Where ``params`` comes from.
        weights: Weight-source kind -> external name of the same layout, e.g.
            ``{"keras_applications": "ResNet50"}``, ``{"torchvision": "resnet50"}``.
        family: ``"resnet"`` or ``"densenet"``.
        description: One line on what the variant is.

    Example:
        >>> from keras_resnet.models.resnet.builder import ResNet
        >>> rec = ModelRecord("my_net", ResNet, {"block": "basic"}, classes=10)
        >>> rec.arch["block"], rec.classes
        ('basic', 10)
    """

    name: str
    builder: Callable[..., keras.Model]
    arch: Mapping[str, Any]
    input_shape: tuple[int, int, int] = (224, 224, 3)
    classes: int = 1000
    params: int | None = None
    params_source: str = ""
    weights: Mapping[str, str] = field(default_factory=dict)
    family: str = "resnet"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`name` must be a non-empty string. Received: name={self.name!r}")
        if not callable(self.builder):
            raise TypeError(f"`builder` must be callable. Received: builder={self.builder!r}")
        for arg in ("arch", "weights"):
            value = getattr(self, arg)
            if not isinstance(value, Mapping):
                raise TypeError(f"`{arg}` must be a mapping. Received: {arg}={value!r}")
            object.__setattr__(self, arg, MappingProxyType(dict(value)))
        head = sorted({"classes", "input_shape", "include_top", "name"} & set(self.arch))
        if head:
            raise ValueError(
                f"`arch` must hold architecture arguments only; move {head} to the record's "
                f"fields. Received: arch keys {sorted(self.arch)}"
            )
        shape = check_ints("input_shape", self.input_shape, min_value=1)
        if len(shape) != 3:
            raise ValueError(f"`input_shape` must be three integers. Received: input_shape={shape}")
        object.__setattr__(self, "input_shape", shape)
        check_int("params", self.params, min_value=1, allow_none=True)

    def spec(self) -> dict[str, Any]:
        """Architecture arguments plus the head defaults that :func:`create_model` applies.

        Example:
            >>> get_record("resnet20").spec()["classes"]
            10
        """
        return {**self.arch, "classes": self.classes, "name": self.name.lstrip("_")}


def register(record: ModelRecord) -> ModelRecord:
    """Add a record to the registry (a name can be registered once).

    Raises:
        ValueError: If the name is taken (records are never silently replaced).

    Example:
        >>> register(get_record("resnet50"))
        Traceback (most recent call last):
        ...
        ValueError: A model named 'resnet50' is already registered.
    """
    if not isinstance(record, ModelRecord):
        raise TypeError(f"`record` must be a ModelRecord. Received: record={record!r}")
    if record.name in _REGISTRY:
        raise ValueError(f"A model named {record.name!r} is already registered.")
    _REGISTRY[record.name] = record
    return record


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def list_models(include_private: bool = False) -> list[str]:
    """Names accepted by :func:`create_model`, sorted.

    Args:
        include_private: Also list private variants (names starting with ``_``).

    Example:
        >>> "resnet50" in list_models()
        True
    """
    return sorted(r.name for r in records(include_private))


def records(include_private: bool = False) -> list[ModelRecord]:
    """Every record, in registration (family) order.

    Example:
        >>> records()[0].name
        'resnet18'
    """
    _load_builtin()
    return [r for n, r in _REGISTRY.items() if include_private or not n.startswith("_")]


def get_record(name: str) -> ModelRecord:
    """The record of variant ``name``.

    Raises:
        ValueError: For an unknown name, with close matches and the valid names.

    Example:
        >>> rec = get_record("resnet50")
        >>> rec.params, rec.weights["torchvision"]
        (25557032, 'resnet50')
    """
    _load_builtin()
    if not isinstance(name, str) or name not in _REGISTRY:
        hint = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        did_you_mean = f" (did you mean {', '.join(hint)}?)" if hint else ""
        raise ValueError(
            f"Unknown model name {name!r}{did_you_mean}. Valid names: {', '.join(list_models())}"
        )
    return _REGISTRY[name]
