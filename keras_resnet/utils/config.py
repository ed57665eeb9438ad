"""The one base class of the project's frozen config dataclasses.

Architecture configs (``ResNetConfig``, ``DenseNetConfig``), ``TrainConfig`` and
``DataConfig`` share construction from a dict with unknown names refused (with a "did
you mean" hint), a JSON-ready dict form, copies with changes, and merging with
overrides.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_resnet.utils.checks import check_fields


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Config:
    """``fields`` / ``from_dict`` / ``to_dict`` / ``replace`` / ``resolve`` for frozen dataclasses.

    Unknown names raise ``TypeError`` listing the valid ones (:attr:`FIELD_KIND` names
    them in the message); every value is checked again by the dataclass's
    ``__post_init__``.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Toy(Config):
        ...     size: tuple = (1, 2)
        >>> Toy().replace(size=(3,)).to_dict()
        {'size': [3]}
        >>> Toy.from_dict({"sise": [3]})
        Traceback (most recent call last):
        TypeError: Unknown field(s) of Toy: sise (did you mean 'size'?). Valid fields: size
    """

    FIELD_KIND = "field"

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Names of all fields.

        Example:
            >>> from keras_resnet.models.resnet.config import ResNetConfig
            >>> "groups" in ResNetConfig.fields()
            True
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Args:
            d: A dict of field values; unknown keys raise ``TypeError``.

        Example:
            >>> from keras_resnet.models.resnet.config import ResNetConfig
            >>> ResNetConfig.from_dict({"block": "basic"}).block
            'basic'
        """
        if not isinstance(d, dict):
            raise TypeError(
                f"`d` must be a dict of {cls.__name__} fields. Received: {type(d).__name__}"
            )
        check_fields(cls.__name__, d, cls.fields(), cls.FIELD_KIND)
        return cls(**d)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Any:
        """:meth:`from_dict` of keyword arguments.

        Example:
            >>> from keras_resnet.models.resnet.config import ResNetConfig
            >>> cfg = ResNetConfig.from_kwargs(block="bottleneck", groups=32, base_width=4)
            >>> ResNetConfig.from_kwargs(**cfg.to_dict()) == cfg
            True
        """
        return cls.from_dict(kwargs)

    @classmethod
    def resolve(cls, config: Any, overrides: dict[str, Any]) -> Any:
        """The config a builder uses: ``config`` (or the defaults) with ``overrides``.

        Example:
            >>> from keras_resnet.models.resnet.config import ResNetConfig
            >>> ResNetConfig.resolve(ResNetConfig(block="basic"), {"groups": 2}).groups
            2
        """
        if config is None:
            return cls.from_dict(overrides)
        if not isinstance(config, cls):
            raise TypeError(f"`config` must be a {cls.__name__}. Received: config={config!r}")
        return cls.from_dict({**config.to_dict(), **overrides})

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (validated again).

        Args:
            **changes: Field values to change.
        """
        check_fields(type(self).__name__, changes, self.fields(), self.FIELD_KIND)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict of every field (tuples become lists)."""
        return {name: _jsonable(getattr(self, name)) for name in self.fields()}
