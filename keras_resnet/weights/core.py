"""The one place that writes checkpoint tensors into a model: all or nothing.

Every source loader turns its file into a :class:`Checkpoint`: our layer name -> the
layer's weights in Keras order (conv ``kernel[, bias]``, BN ``gamma, beta,
moving_mean, moving_variance``, dense ``kernel, bias``), plus the checkpoint's
:class:`Preprocessing`. :func:`assign` matches every tensor by name and shape before
it writes anything.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import warnings
from typing import Any

import keras
import numpy as np

from keras_resnet.utils.checks import check_floats

logger = logging.getLogger("keras_resnet.weights")

HEAD = "predictions"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How the images were prepared when the weights were trained.

    Pixel values are on a 0-1 scale: ``mean``/``std`` are per RGB channel
    (``(x - mean) / std``). ``mode`` names a keras.applications preprocessing mode
    (``"caffe"``: BGR, subtract ``mean`` x 255, no scaling; ``"tf"``: scale to [-1, 1];
    ``"torch"``: ``mean``/``std``) when the weights came from there.

    Example:
        >>> p = Preprocessing(mean=IMAGENET_MEAN, std=IMAGENET_STD)
        >>> p.to_dict()["crop_pct"] is None
        True
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int] | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    mode: str | None = None
    class_names: tuple[str, ...] | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        # mean/std come from the checkpoint's own files, which may hold anything.
        try:
            for name in ("mean", "std"):
                value = check_floats(name, getattr(self, name), allow_none=True)
                object.__setattr__(self, name, value)
            if self.std is not None and min(self.std, default=0) <= 0:
                raise ValueError(f"`std` must be positive. Received: std={self.std!r}")
            if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
                raise ValueError(
                    f"`mean` and `std` must have one value per channel each. "
                    f"Received: mean={self.mean!r}, std={self.std!r}"
                )
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"The preprocessing read from {self.source or 'the checkpoint'} is invalid: {err}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists).

        Example:
            >>> Preprocessing(input_size=(224, 224)).to_dict()["input_size"]
            [224, 224]
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclasses.dataclass
class Checkpoint:
    """Weights by our layer name, in Keras order, and where they came from.

    Example:
        >>> ckpt = Checkpoint({"predictions": [np.zeros((4, 2)), np.zeros(2)]}, "demo")
        >>> ckpt.classes
        2
    """

    tensors: dict[str, list[np.ndarray]]
    source: str
    preprocessing: Preprocessing = dataclasses.field(default_factory=Preprocessing)

    @property
    def classes(self) -> int | None:
        """Classes of the checkpoint's classifier (``None`` without one)."""
        head = self.tensors.get(HEAD)
        return int(head[0].shape[-1]) if head else None


def weight_shapes(values: list[Any]) -> list[tuple[int, ...]]:
    """The shapes of a list of weights (arrays or variables), as tuples of ints.

    Example:
        >>> weight_shapes([np.zeros((3, 3, 2, 4)), np.zeros(4)])
        [(3, 3, 2, 4), (4,)]
    """
    return [tuple(int(d) for d in v.shape) for v in values]


def _problems(model: keras.Model, ckpt: Checkpoint, skip: set[str]) -> list[str]:
    problems = []
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    for name, values in ckpt.tensors.items():
        if name in skip:
            continue
        layer = layers.get(name)
        if layer is None:
            problems.append(f"extra tensor(s) for {name!r}: the model has no such layer")
        elif weight_shapes(values) != weight_shapes(layer.weights):
            problems.append(
                f"shape mismatch for {name!r}: checkpoint {weight_shapes(values)}, "
                f"model {weight_shapes(layer.weights)}"
            )
    for name in layers:
        if name not in ckpt.tensors and name not in skip:
            problems.append(f"missing tensor(s) for model layer {name!r}")
    return problems


def _bad_values(model: keras.Model, ckpt: Checkpoint, skip: set[str]) -> str | None:
    """The first tensor that is not floating point or holds NaN / inf, described."""
    for name, values in ckpt.tensors.items():
        if name in skip:
            continue
        for value, weight in zip(values, model.get_layer(name).weights, strict=True):
            value = np.asarray(value)
            if not np.issubdtype(value.dtype, np.floating):
                return f"tensor {weight.path!r} holds {value.dtype} values, not floating point"
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                return (
                    f"tensor {weight.path!r} holds {bad} NaN or infinite value(s) of {value.size}"
                )
    return None


def assign(model: keras.Model, ckpt: Checkpoint) -> keras.Model:
    """Write ``ckpt`` into ``model`` once every tensor matched by name and shape.

    The classifier is the one tolerated difference: a model without ``predictions``
    (``include_top=False``) drops the checkpoint's head; a head of another size keeps
    the backbone and leaves the model's fresh head (with a warning).

    Args:
        model: A keras_resnet model of the checkpoint's architecture.
        ckpt: The checkpoint.

    Returns:
        ``model``, its weights replaced.

    Raises:
        ValueError: Naming the first mismatches, or the first tensor that is not floating
            point or holds NaN / inf; ``model`` is then untouched.

    Example:
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(8, 8, 3))
        >>> ckpt = Checkpoint({w.name: w.get_weights() for w in model.layers if w.weights}, "x")
        >>> other = create_model("_tiny", input_shape=(8, 8, 3))
        >>> x = keras.random.normal((1, 8, 8, 3))
        >>> bool(keras.ops.all(assign(other, ckpt)(x) == model(x)))
        True
    """
    skip: set[str] = set()
    names = {layer.name for layer in model.layers}
    if HEAD in ckpt.tensors:
        if HEAD not in names:
            skip.add(HEAD)
        elif weight_shapes(ckpt.tensors[HEAD]) != weight_shapes(model.get_layer(HEAD).weights):
            skip.add(HEAD)
            ours = int(model.get_layer(HEAD).weights[0].shape[-1])
            message = (
                f"{ckpt.source}: the checkpoint's classifier has {ckpt.classes} classes and the "
                f"model {ours}: the backbone is loaded, the head is freshly initialized"
            )
            warnings.warn(message, stacklevel=3)
            logger.warning(message)
    elif HEAD in names:
        skip.add(HEAD)  # a backbone-only checkpoint: the model keeps its fresh head
        logger.warning("%s has no classifier: the head is freshly initialized", ckpt.source)
    problems = _problems(model, ckpt, skip)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise ValueError(
            f"The checkpoint {ckpt.source} does not match model {model.name!r}; nothing was "
            f"loaded. First mismatches: " + "; ".join(problems[:_SHOWN]) + more
        )
    bad = _bad_values(model, ckpt, skip)
    if bad:
        raise ValueError(
            f"The checkpoint {ckpt.source} is corrupt or not a float checkpoint; nothing was "
            f"loaded: {bad}"
        )
    for name, values in ckpt.tensors.items():
        if name not in skip:
            model.get_layer(name).set_weights(values)
    return model


def checkpoint_of(model: keras.Model, source: str) -> Checkpoint:
    """Every weighted layer of a Keras model, as a :class:`Checkpoint`.

    Example:
        >>> from keras_resnet import create_model
        >>> sorted(checkpoint_of(create_model("_tiny"), "m").tensors)[:2]
        ['predictions', 'stage1_block1_bn1']
    """
    return Checkpoint(
        {layer.name: layer.get_weights() for layer in model.layers if layer.weights}, source
    )


def require(module: str, purpose: str, install: str = "'keras-resnet-toolkit[hub]'") -> Any:
    """Import an optional dependency, or raise ``ImportError`` saying how to install it.

    Example:
        >>> require("json", "Reading a preset").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs {module}: pip install {install}") from err


def read_with(load: Any, source: str, kind: str, **kwargs: Any) -> Any:
    """``load(source, **kwargs)``, any failure a ``ValueError`` naming the file's kind.

    Example:
        >>> read_with(int, "12", "number")
        12
        >>> read_with(int, "x", "number")
        Traceback (most recent call last):
        ValueError: x is not a readable number: invalid literal for int() with base 10: 'x'
    """
    try:
        return load(source, **kwargs)
    except Exception as err:  # each library raises its own error types for a bad file
        raise ValueError(f"{source} is not a readable {kind}: {err}") from err


_BN_ORDER = ("weight", "bias", "running_mean", "running_var")


def torch_tensors(target: str, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One PyTorch module's parameters in Keras order and layout (timm, torchvision).

    Args:
        target: The Keras layer name (the classifier ``HEAD`` may be a 1x1 conv).
        params: The module's tensors by PyTorch name (``weight``, ``running_mean``, ...).

    Example:
        >>> [w.shape for w in torch_tensors("stem_conv", {"weight": np.ones((8, 3, 7, 7))})]
        [(7, 7, 3, 8)]
    """
    if "running_mean" in params:
        return [params[k] for k in _BN_ORDER if k in params]
    weight = params["weight"]
    if weight.ndim == 4 and target == HEAD:  # timm ResNetV2's head is a 1x1 conv
        weight = weight[:, :, 0, 0]
    kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
    return [kernel] + ([params["bias"]] if "bias" in params else [])
