"""The built-in ResNet variants: one registry record each (see :mod:`keras_resnet.models.registry`).

Names follow timm (``resnet50``, ``resnet50d``, ``resnext50_32x4d``,
``wide_resnet50_2``) and the CIFAR papers (``resnet20`` ... ``resnet1202``,
``preact_resnet164``, ``resnext29_8x64d``, ``wrn28_10``). A record holds architecture
arguments only; the default input and classes, the published trainable-parameter
count and the names of the same layout elsewhere are fields of its own. Adding a
variant is one ``_resnet(...)`` line.
"""

from __future__ import annotations

from typing import Any

from keras_resnet.models.registry import ModelRecord, get_record, register
from keras_resnet.models.resnet.builder import ResNet

_TV = "torchvision weight metadata"
_CIFAR_INPUT = {"input_shape": (32, 32, 3), "classes": 10}
_BLOCKS = {18: "basic", 34: "basic", 50: "bottleneck", 101: "bottleneck", 152: "bottleneck"}
_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
_DEPTHS[152] = (3, 8, 36, 3)
# keras.applications ResNet/ResNetV2: stride on the first 1x1 (v1), conv biases, BN
# epsilon 1.001e-5, Keras' default momentum and a zero-padded stem max-pool, so their
# weights load one to one and give the same outputs.
_KERAS_APP = dict(use_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99, stem_pool_padding="zeros")
_D = {"stem": "deep", "shortcut": "avg_down"}  # ResNet-C stem + ResNet-D shortcut (timm "d")


def _resnet(
    name: str, arch: dict[str, Any], params: int | None = None, source: str = "", **fields: Any
) -> None:
    register(ModelRecord(name, ResNet, arch, params=params, params_source=source, **fields))


def _imagenet(depth: int, **kw: Any) -> dict[str, Any]:
    return {
        "block": _BLOCKS[depth],
        "stage_depths": _DEPTHS[depth],
        "stage_widths": (64, 128, 256, 512),
        **kw,
    }


def _cifar(
    depths: tuple[int, ...], widths: tuple[int, ...] = (16, 32, 64), stem_width: int = 16, **kw: Any
) -> dict[str, Any]:
    # The CIFAR layouts: one 3x3 stem conv, basic blocks unless `kw` says otherwise.
    return {
        "block": "basic",
        "stage_depths": depths,
        "stage_widths": widths,
        "stem": "cifar",
        "stem_width": stem_width,
        **kw,
    }


def _he_cifar(n: int, shortcut: str | None = "zero_pad") -> dict[str, Any]:
    # He et al. 2015 Sec. 4.2: 6n+2 layers, widths 16/32/64, option A shortcuts.
    return _cifar((n, n, n), shortcut=shortcut)


def _wrn(depth: int, k: int) -> dict[str, Any]:
    # Zagoruyko & Komodakis 2016: depth 6n+4, pre-activation basic blocks, width k.
    return _cifar(((depth - 4) // 6,) * 3, (16 * k, 32 * k, 64 * k), preact=True)


def _preact_cifar(depth: int) -> dict[str, Any]:
    # He et al. 2016: bottleneck pre-activation nets of depth 9n+2, widths 16/32/64 (x4).
    return _cifar(((depth - 2) // 9,) * 3, block="bottleneck", preact=True)


def _resnext29(cardinality: int) -> dict[str, Any]:
    # Xie et al. 2017 Sec. 5.3: 3 stages x 3 bottlenecks, 64-d per group, 64-ch 3x3 stem.
    arch = {"block": "bottleneck", "groups": cardinality, "base_width": 64}
    return _cifar((3, 3, 3), (64, 128, 256), 64, **arch)


def _same(tv: str | None = None, timm: str | None = None) -> dict[str, dict[str, str]]:
    names = {"torchvision": tv, "timm": timm}
    return {"weights": {k: v for k, v in names.items() if v}}


# ImageNet, ResNet v1.5 (stride on the 3x3): the torchvision / timm definitions.
_resnet("resnet18", _imagenet(18), 11_689_512, _TV, **_same("resnet18", "resnet18"))
_resnet("resnet34", _imagenet(34), 21_797_672, _TV, **_same("resnet34", "resnet34"))
_resnet("resnet50", _imagenet(50), 25_557_032, _TV, **_same("resnet50", "resnet50"))
_resnet("resnet101", _imagenet(101), 44_549_160, _TV, **_same("resnet101", "resnet101"))
_resnet("resnet152", _imagenet(152), 60_192_808, _TV, **_same("resnet152", "resnet152"))
# He et al. 2019 ResNet-D (deep stem, average-pool shortcut): timm's "d" nets.
_XRES = "timm / fast.ai xresnet ResNet-D table"
_resnet("resnet18d", _imagenet(18, **_D), 11_708_744, _XRES, **_same(timm="resnet18d"))
_resnet("resnet34d", _imagenet(34, **_D), 21_816_904, _XRES, **_same(timm="resnet34d"))
_resnet("resnet50d", _imagenet(50, **_D), 25_576_264, _XRES, **_same(timm="resnet50d"))
_resnet("resnet101d", _imagenet(101, **_D), 44_568_392, _XRES, **_same(timm="resnet101d"))
_resnet("resnet152d", _imagenet(152, **_D), 60_212_040, _XRES, **_same(timm="resnet152d"))
# Pre-activation (He et al. 2016) with the v1.5 stride: timm's ResNetV2 with BatchNorm.
_BIT = "BiT-R{0}x1 / timm resnetv2_{0} (Kolesnikov et al. 2020)"
for _depth, _count in ((50, 25_549_352), (101, 44_541_480), (152, None)):
    _source = _BIT.format(_depth) if _count else ""
    _timm = _same(timm=f"resnetv2_{_depth}")
    _resnet(f"resnet{_depth}v2", _imagenet(_depth, preact=True), _count, _source, **_timm)
# ResNeXt (Xie et al. 2017) and Wide ResNet-50/101 (Zagoruyko & Komodakis 2016).
for _name, _depth, _kw, _count in (
    ("resnext50_32x4d", 50, {"groups": 32, "base_width": 4}, 25_028_904),
    ("resnext101_32x8d", 101, {"groups": 32, "base_width": 8}, 88_791_336),
    ("resnext101_64x4d", 101, {"groups": 64, "base_width": 4}, 83_455_272),
    ("wide_resnet50_2", 50, {"base_width": 128}, 68_883_240),
    ("wide_resnet101_2", 101, {"base_width": 128}, 126_886_696),
):
    _resnet(_name, _imagenet(_depth, **_kw), _count, _TV, **_same(_name, _name))
# keras.applications layouts (v1 stride on the 1x1, biases; V2 subsamples in the last
# block of a stage): their weights load one to one (keras_resnet.weights).
for _depth, _count in ((50, 25_583_592), (101, 44_601_832), (152, 60_268_520)):
    _resnet(
        f"resnet{_depth}_keras",
        _imagenet(_depth, stride_in="1x1", **_KERAS_APP),
        _count,
        f"keras.applications ResNet{_depth} (trainable weights)",
        weights={"keras_applications": f"ResNet{_depth}"},
    )
for _depth, _count in ((50, 25_568_360), (101, 44_577_896), (152, 60_236_904)):
    _resnet(
        f"resnet{_depth}v2_keras",
        _imagenet(_depth, preact=True, downsample_in="last", **_KERAS_APP),
        _count,
        f"keras.applications ResNet{_depth}V2 (trainable weights)",
        weights={"keras_applications": f"ResNet{_depth}V2"},
    )
# CIFAR (He et al. 2015): residual nets with option A, and their plain twins.
for _n in (3, 5, 7, 9, 18, 200):
    _count = 269_722 if _n == 3 else None
    _source = "He et al. 2015 Table 6 (0.27M); exact by summation" if _n == 3 else ""
    _resnet(f"resnet{6 * _n + 2}", _he_cifar(_n), _count, _source, **_CIFAR_INPUT)
for _n in (3, 5, 7, 9, 18):
    _resnet(f"plain{6 * _n + 2}", _he_cifar(_n, shortcut=None), **_CIFAR_INPUT)
_resnet("preact_resnet164", _preact_cifar(164), **_CIFAR_INPUT)
_resnet("preact_resnet1001", _preact_cifar(1001), **_CIFAR_INPUT)
_resnet("resnext29_8x64d", _resnext29(8), **_CIFAR_INPUT)
_resnet("resnext29_16x64d", _resnext29(16), **_CIFAR_INPUT)
_resnet("wrn16_8", _wrn(16, 8), **_CIFAR_INPUT)
_WRN = "Zagoruyko & Komodakis 2016 (36.5M); WideResNet-pytorch"
_resnet("wrn28_10", _wrn(28, 10), 36_479_194, _WRN, **_CIFAR_INPUT)
_resnet("wrn40_4", _wrn(40, 4), **_CIFAR_INPUT)
# Private: the smallest full model, for fast tests.
_resnet("_tiny", _cifar((1, 1), (8, 16), 8), **_CIFAR_INPUT)


def model_spec(name: str) -> dict[str, Any]:
    """The architecture arguments of variant ``name`` (a copy; no head arguments).

    Example:
        >>> model_spec("resnext50_32x4d")["groups"]
        32
    """
    return dict(get_record(name).arch)
