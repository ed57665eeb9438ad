"""Named architectures as data: each variant is a dict of :func:`ResNet` arguments.

Names follow timm (``resnet50``, ``resnet50d``, ``resnext50_32x4d``,
``wide_resnet50_2``) and the CIFAR papers (``resnet20`` ... ``resnet1202``,
``preact_resnet164``, ``resnext29_8x64d``, ``wrn28_10``). ``create_model`` merges a
variant with user overrides as ``dict(spec, **overrides)``.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Any

import keras

from keras_resnet.models import ResNet

_IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# keras.applications ResNet/ResNetV2: stride on the first 1x1 (v1), conv biases, BN
# epsilon 1.001e-5 and Keras' default momentum, so their weights load one to one.
_KERAS_APP = {"use_bias": True, "bn_epsilon": 1.001e-5, "bn_momentum": 0.99}


def _imagenet(depth: int, **kw: Any) -> dict[str, Any]:
    block, depths = _IMAGENET_DEPTHS[depth]
    return {"block": block, "stage_depths": depths, "stage_widths": (64, 128, 256, 512), **kw}


def _cifar(n: int, **kw: Any) -> dict[str, Any]:
    # He et al. 2015 Sec. 4.2: 6n+2 layers, widths 16/32/64, option A shortcuts.
    return {
        "block": "basic",
        "stage_depths": (n, n, n),
        "stage_widths": (16, 32, 64),
        "stem": "cifar",
        "stem_width": 16,
        "shortcut": "zero_pad",
        "classes": 10,
        **kw,
    }


def _wrn(depth: int, k: int) -> dict[str, Any]:
    # Zagoruyko & Komodakis 2016: depth 6n+4, pre-activation basic blocks, width k.
    n = (depth - 4) // 6
    return {
        "block": "basic",
        "preact": True,
        "stage_depths": (n, n, n),
        "stage_widths": (16 * k, 32 * k, 64 * k),
        "stem": "cifar",
        "stem_width": 16,
        "classes": 10,
    }


def _preact_cifar(depth: int) -> dict[str, Any]:
    # He et al. 2016: bottleneck pre-activation nets of depth 9n+2, widths 16/32/64 (x4).
    n = (depth - 2) // 9
    return {
        "block": "bottleneck",
        "preact": True,
        "stage_depths": (n, n, n),
        "stage_widths": (16, 32, 64),
        "stem": "cifar",
        "stem_width": 16,
        "classes": 10,
    }


def _resnext29(cardinality: int) -> dict[str, Any]:
    # Xie et al. 2017 Sec. 5.3: 3 stages x 3 bottlenecks, 64-d per group, 64-ch 3x3 stem.
    return {
        "block": "bottleneck",
        "stage_depths": (3, 3, 3),
        "stage_widths": (64, 128, 256),
        "groups": cardinality,
        "base_width": 64,
        "stem": "cifar",
        "stem_width": 64,
        "classes": 10,
    }


_D = {"stem": "deep", "shortcut": "avg_down"}  # ResNet-C stem + ResNet-D shortcut (timm "d")
_V2 = {"preact": True}

_SPECS: dict[str, dict[str, Any]] = {
    # ImageNet, ResNet v1.5 (stride on the 3x3): torchvision / timm definitions.
    **{f"resnet{d}": _imagenet(d) for d in _IMAGENET_DEPTHS},
    **{f"resnet{d}d": _imagenet(d, **_D) for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}v2": _imagenet(d, **_V2) for d in (50, 101, 152)},
    "resnext50_32x4d": _imagenet(50, groups=32, base_width=4),
    "resnext101_32x8d": _imagenet(101, groups=32, base_width=8),
    "resnext101_64x4d": _imagenet(101, groups=64, base_width=4),
    "wide_resnet50_2": _imagenet(50, base_width=128),
    "wide_resnet101_2": _imagenet(101, base_width=128),
    # keras.applications-compatible layouts (load_keras_applications_weights).
    **{f"resnet{d}_keras": _imagenet(d, stride_in="1x1", **_KERAS_APP) for d in (50, 101, 152)},
    **{
        f"resnet{d}v2_keras": _imagenet(d, preact=True, downsample_in="last", **_KERAS_APP)
        for d in (50, 101, 152)
    },
    # CIFAR (He et al. 2015): residual nets with option A, and their plain twins.
    **{f"resnet{6 * n + 2}": _cifar(n) for n in (3, 5, 7, 9, 18, 200)},
    **{f"plain{6 * n + 2}": _cifar(n, shortcut=None) for n in (3, 5, 7, 9, 18)},
    "preact_resnet164": _preact_cifar(164),
    "preact_resnet1001": _preact_cifar(1001),
    "resnext29_8x64d": _resnext29(8),
    "resnext29_16x64d": _resnext29(16),
    "wrn16_8": _wrn(16, 8),
    "wrn28_10": _wrn(28, 10),
    "wrn40_4": _wrn(40, 4),
    # Private: the smallest full model, for fast tests.
    "_tiny": {
        "block": "basic",
        "stage_depths": (1, 1),
        "stage_widths": (8, 16),
        "stem": "cifar",
        "stem_width": 8,
        "classes": 10,
    },
}
SPECS = MappingProxyType(_SPECS)


def list_models(include_private: bool = False) -> list[str]:
    """Names accepted by :func:`create_model`, sorted.

    Args:
        include_private: Also list private variants (names starting with ``_``).

    Returns:
        The variant names.

    Example:
        >>> "resnet50" in list_models()
        True
    """
    return sorted(n for n in _SPECS if include_private or not n.startswith("_"))


def model_spec(name: str) -> dict[str, Any]:
    """The keyword arguments that define variant ``name`` (a copy).

    Example:
        >>> model_spec("resnext50_32x4d")["groups"]
        32
    """
    if not isinstance(name, str) or name not in _SPECS:
        hint = difflib.get_close_matches(str(name), list(_SPECS), n=3)
        raise ValueError(
            f"Unknown model name {name!r}"
            + (f" (did you mean {', '.join(hint)}?)" if hint else "")
            + ". Valid names: "
            + ", ".join(list_models())
        )
    return dict(_SPECS[name])


def create_model(name: str, /, **overrides: Any) -> keras.Model:
    """Build the named variant, with any :func:`ResNet` argument overridden.

    Args:
        name: A name from :func:`list_models` (positional, so that ``name=`` in
            ``overrides`` renames the model).
        **overrides: Any argument of :func:`keras_resnet.models.ResNet`
            (architecture fields or head/input arguments), including ``weights``
            (a pretrained checkpoint; see :func:`keras_resnet.weights.load_weights`).

    Returns:
        A functional ``keras.Model`` named ``name`` unless overridden.

    Example:
        >>> model = create_model("resnet20", classes=100, input_shape=(32, 32, 3))
        >>> tuple(model.output.shape)
        (None, 100)
    """
    spec = model_spec(name)
    spec.setdefault("name", name.lstrip("_"))
    weights = overrides.pop("weights", None)
    model = ResNet(**dict(spec, **overrides))
    if weights is not None:
        from keras_resnet.weights import load_weights

        load_weights(model, weights, variant=name)
    return model
