"""The built-in DenseNet variants: one registry record each (family ``"densenet"``).

ImageNet (Huang et al. 2017, Table 1; the torchvision / timm / keras.applications
names): ``densenet121``, ``densenet169``, ``densenet201``, ``densenet264`` (k = 32,
64 stem channels) and ``densenet161`` (k = 48, 96 stem channels), all DenseNet-BC
(bottleneck width 4, compression 0.5).

CIFAR (Table 2, 10 classes): ``densenet40_k12`` (DenseNet L=40, k=12: no bottleneck,
no compression, 16 stem channels) and the DenseNet-BC nets ``densenet_bc100_k12``,
``densenet_bc250_k24``, ``densenet_bc190_k40`` (2k stem channels); a BC net of depth L
has (L - 4) / 6 dense layers per block. The exact parameter counts are summed from the
paper's definition (no conv biases, as in torchvision).
"""

from __future__ import annotations

from typing import Any

from keras_resnet.models.densenet.builder import DenseNet
from keras_resnet.models.registry import ModelRecord, register

_TV = "torchvision weight metadata (keras.applications agrees)"
_CIFAR_INPUT = {"input_shape": (32, 32, 3), "classes": 10}
_PAPER = "Huang et al. 2017 Table 2 ({}); exact by summation of the paper's definition"


def _densenet(name: str, arch: dict[str, Any], params: int, source: str, **fields: Any) -> None:
    fields["family"] = "densenet"
    register(ModelRecord(name, DenseNet, arch, params=params, params_source=source, **fields))


def _bc(block_sizes: tuple[int, ...], growth_rate: int = 32) -> dict[str, Any]:
    # DenseNet-BC: 2k stem channels (bottleneck width 4 and compression 0.5 by default).
    return {"growth_rate": growth_rate, "block_sizes": block_sizes, "stem_width": 2 * growth_rate}


def _weights(depth: int, keras_app: bool = True) -> dict[str, dict[str, str]]:
    names = {"torchvision": f"densenet{depth}", "timm": f"densenet{depth}"}
    if keras_app:
        names |= {
            "keras_applications": f"DenseNet{depth}",
            "keras_hub": f"densenet_{depth}_imagenet",
        }
    return {"weights": names}


def _cifar(n: int, growth_rate: int, **kw: Any) -> dict[str, Any]:
    # Three dense blocks of n layers after a single 3x3 stem conv.
    return {**_bc((n, n, n), growth_rate), "stem": "cifar", **kw}


for _depth, _sizes, _count in (
    (121, (6, 12, 24, 16), 7_978_856),
    (169, (6, 12, 32, 32), 14_149_480),
    (201, (6, 12, 48, 32), 20_013_928),
):
    _densenet(
        f"densenet{_depth}",
        _bc(_sizes),
        _count,
        _TV,
        description=f"DenseNet-{_depth} (BC, k=32), layout of torchvision and keras.applications",
        **_weights(_depth),
    )
_densenet(
    "densenet161",
    _bc((6, 12, 36, 24), growth_rate=48),
    28_681_000,
    "torchvision weight metadata",
    description="DenseNet-161 (BC, k=48, 96 stem channels), layout of torchvision",
    **_weights(161, keras_app=False),
)
_densenet(
    "densenet264",
    _bc((6, 12, 64, 48)),
    33_337_704,
    "Huang et al. 2017 Table 1 (blocks 6-12-64-48, k=32); exact by summation",
    # Table 1's blocks give 2 * 130 + 5 = 265 layers; the paper (and timm) call it 264.
    description="DenseNet-264 (BC, k=32) of the paper's Table 1",
)
_densenet(
    "densenet40_k12",
    _cifar(12, 12, stem_width=16, bottleneck_width=0, compression=1.0),
    1_019_722,
    _PAPER.format("1.0M"),
    description="DenseNet (L=40, k=12) for CIFAR: no bottleneck, no compression",
    **_CIFAR_INPUT,
)
for _depth, _k, _published, _count in (
    (100, 12, "0.8M", 769_162),
    (250, 24, "15.3M", 15_324_406),
    (190, 40, "25.6M", 25_624_430),
):
    _densenet(
        f"densenet_bc{_depth}_k{_k}",
        _cifar((_depth - 4) // 6, _k),
        _count,
        _PAPER.format(_published),
        description=f"DenseNet-BC (L={_depth}, k={_k}) for CIFAR",
        **_CIFAR_INPUT,
    )
# Private: the smallest full DenseNet-BC, for fast tests.
_densenet(
    "_tiny_densenet",
    {"growth_rate": 4, "block_sizes": (2, 2), "stem": "cifar", "stem_width": 8},
    3_730,
    "exact by summation of the paper's definition",
    description="Two dense blocks of two BC layers, k=4: for tests",
    **_CIFAR_INPUT,
)
