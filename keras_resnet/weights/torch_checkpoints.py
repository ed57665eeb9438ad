"""timm and torchvision ResNet checkpoints (PyTorch state dicts) as :class:`Checkpoint`.

Layouts: torchvision / timm ``ResNet`` (``conv1``, ``bn1``, ``layer{1-4}.{i}``,
``downsample.{0,1}`` or ResNet-D's ``downsample.{1,2}`` after the average pool,
the deep stem ``conv1.{0,1,3,4,6}``, ``fc``), which covers resnet18-152, ``*d``,
ResNeXt and Wide ResNet; and timm ``ResNetV2`` (``stem.conv``,
``stages.{s}.blocks.{i}.norm1/conv1/norm2/conv2/norm3/conv3/downsample.conv``,
``norm``, ``head.fc`` as a 1x1 conv), which is our pre-activation ``resnet*v2``:
the stem has no BN, the projection shortcut reads the block's pre-activated input
and ``norm`` is our ``post_bn``.

Tensors convert as conv ``OIHW -> HWIO``, linear ``(out, in) -> (in, out)``, BN
``weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
moving_variance`` (``num_batches_tracked`` is dropped).

The CIFAR ResNets of akamaster/pytorch_resnet_cifar10 (``resnet20`` ... ``resnet1202``,
``torch.save({"state_dict": ..., "best_prec1": ...})`` of a ``DataParallel`` model) use
the same ``conv1`` / ``bn1`` / ``layer{1-3}.{i}`` names with a ``linear`` head; their
option-A shortcut (subsample, ``planes // 4`` zero channels on each side) is our
``zero_pad`` shortcut, which has no tensors.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from keras_resnet.utils.atomic import read_json
from keras_resnet.weights.core import (
    HEAD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Checkpoint,
    Preprocessing,
    read_with,
    require,
    torch_tensors,
)
from keras_resnet.weights.torch_densenet import densenet_layer_name

_DROPPED = ("num_batches_tracked",)
_DEEP_STEM = {"conv1.0": "stem_conv1", "conv1.1": "stem_bn1", "conv1.3": "stem_conv2",
              "conv1.4": "stem_bn2", "conv1.6": "stem_conv3", "bn1": "stem_bn3"}  # fmt: skip
_PLAIN_STEM = {"conv1": "stem_conv", "bn1": "stem_bn", "stem.conv": "stem_conv"}
_V2_PARTS = {
    "norm1": "preact_bn",
    "norm2": "bn1",
    "norm3": "bn2",
    "downsample.conv": "shortcut_conv",
}
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^layer(\d)\.(\d+)\.(conv|bn)(\d)$"),
     lambda m: f"stage{m[1]}_block{int(m[2]) + 1}_{m[3]}{m[4]}"),
    (re.compile(r"^layer(\d)\.(\d+)\.downsample\.(\d)$"),
     lambda m: f"stage{m[1]}_block{int(m[2]) + 1}_shortcut_#"),  # '#' -> conv / bn
    (re.compile(r"^stages\.(\d)\.blocks\.(\d+)\.(norm\d|downsample\.conv)$"),
     lambda m: f"stage{int(m[1]) + 1}_block{int(m[2]) + 1}_{_V2_PARTS[m[3]]}"),
    (re.compile(r"^stages\.(\d)\.blocks\.(\d+)\.conv(\d)$"),
     lambda m: f"stage{int(m[1]) + 1}_block{int(m[2]) + 1}_conv{m[3]}"),
    (re.compile(r"^(fc|head\.fc|linear)$"), lambda m: HEAD),
    (re.compile(r"^norm$"), lambda m: "post_bn"),
)  # fmt: skip


def torch_layer_name(module: str, deep_stem: bool = False) -> str | None:
    """Our layer name for a timm / torchvision module path (``None`` if unmapped).

    Example:
        >>> torch_layer_name("layer3.0.downsample.1")
        'stage3_block1_shortcut_#'
        >>> torch_layer_name("stages.1.blocks.0.norm2")
        'stage2_block1_bn1'
    """
    stem = _DEEP_STEM if deep_stem else _PLAIN_STEM
    if module in stem:
        return stem[module]
    for pattern, target in _RULES:
        match = pattern.match(module)
        if match:
            return target(match)
    return None


def from_state_dict(state: Mapping[str, Any], source: str) -> Checkpoint:
    """A timm / torchvision ResNet or DenseNet state dict (numpy arrays) as a :class:`Checkpoint`.

    A DenseNet is recognised by its ``features.denseblock*`` keys and named by
    :func:`~keras_resnet.weights.torch_densenet.densenet_layer_name`. Unmapped modules
    stay in the checkpoint under ``<torch:...>`` names, so the load reports them as
    extra tensors instead of silently dropping them.

    Example:
        >>> state = {"fc.weight": np.zeros((10, 512)), "fc.bias": np.zeros(10)}
        >>> [w.shape for w in from_state_dict(state, "sd").tensors["predictions"]]
        [(512, 10), (10,)]
        >>> state = {"features.denseblock1.denselayer1.conv.1.weight": np.zeros((8, 4, 1, 1))}
        >>> [w.shape for w in from_state_dict(state, "sd").tensors["stage1_layer1_conv1"]]
        [(1, 1, 4, 8)]
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, param = key.removeprefix("module.").rpartition(".")
        if param not in _DROPPED:  # dtypes stay: assign() refuses non-float tensors
            modules.setdefault(module, {})[param] = np.asarray(value)
    dense = any(module.startswith("features.denseblock") for module in modules)
    deep = "conv1.0" in modules
    tensors: dict[str, list[np.ndarray]] = {}
    for module, params in modules.items():
        target = densenet_layer_name(module) if dense else torch_layer_name(module, deep)
        if target is None or "weight" not in params and "running_mean" not in params:
            tensors[f"<torch:{module}>"] = list(params.values())
            continue
        if target.endswith("#"):
            target = target[:-1] + ("bn" if "running_mean" in params else "conv")
        tensors[target] = torch_tensors(target, params)
    return Checkpoint(tensors, source)


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    numpy = require("safetensors.numpy", f"Reading {path}", "safetensors")
    return read_with(numpy.load_file, path, ".safetensors file (corrupt or truncated?)")


def _read_torch(path: str) -> dict[str, np.ndarray]:
    torch = require(
        "torch",
        f"Reading the PyTorch file {path}",
        "'keras-resnet-toolkit[torch]', or convert it to .safetensors (no torch needed)",
    )
    state = read_with(torch.load, path, "PyTorch checkpoint", map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict (tensor names -> "
            "tensors, alone or under 'state_dict' / 'model'): save model.state_dict()"
        )
    return {
        k: (v.float() if v.is_floating_point() else v).numpy()
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }


def _preprocessing(config: Mapping[str, Any], source: str) -> Preprocessing:
    """timm's ``pretrained_cfg`` and ``label_names`` (from ``config.json``)."""
    cfg = config.get("pretrained_cfg") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{source}: `pretrained_cfg` must be an object. Received: {cfg!r}")
    size = cfg.get("input_size")
    names = config.get("label_names") or None
    return Preprocessing(
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        input_size=tuple(size[-2:]) if size else None,
        crop_pct=cfg.get("crop_pct"),
        interpolation=cfg.get("interpolation"),
        class_names=tuple(names) if names else None,
        source=source,
    )


def _cifar_preprocessing(state: Mapping[str, Any], source: str) -> Preprocessing | None:
    """The akamaster/pytorch_resnet_cifar10 layout's preprocessing, or ``None``.

    That layout is the only one with a ``linear`` head after ``layer3`` and no
    ``layer4``. Its training script normalizes 32x32 CIFAR images with the ImageNet
    mean and std (not CIFAR's own statistics), so its weights expect exactly those.

    Example:
        >>> keys = {"module.layer3.0.conv1.weight": 0, "module.linear.weight": 0}
        >>> _cifar_preprocessing(keys, "resnet20.th").input_size
        (32, 32)
        >>> _cifar_preprocessing({"fc.weight": 0, "layer3.0.conv1.weight": 0}, "x.pth") is None
        True
    """
    modules = {key.removeprefix("module.").split(".")[0] for key in state}
    if "linear" not in modules or "layer3" not in modules or modules & {"layer4", "fc"}:
        return None
    return Preprocessing(IMAGENET_MEAN, IMAGENET_STD, input_size=(32, 32), source=source)


def _hf_download(handle: str) -> str:
    repo = handle.removeprefix("hf://")
    hub = require("huggingface_hub", f"Downloading {handle}")
    return hub.snapshot_download(repo, allow_patterns=["config.json", "model.safetensors"])


def read_torch_checkpoint(source: str) -> Checkpoint:
    """Read a timm / torchvision checkpoint: a file, a Hugging Face folder, or ``hf://``.

    Args:
        source: A ``.safetensors`` file; a ``.pth`` / ``.pt`` / ``.bin`` / ``.th`` file
            (needs torch; a ``state_dict`` entry beside others is read); a folder with
            ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``), as timm
            publishes on the Hugging Face Hub; or ``hf://timm/<name>`` (downloads through
            ``huggingface_hub``).

    Returns:
        The :class:`Checkpoint`, with the timm ``pretrained_cfg`` preprocessing when
        the folder has a ``config.json``, and ImageNet mean/std at 32x32 for a CIFAR
        ResNet of the akamaster/pytorch_resnet_cifar10 layout.

    Example:
        >>> import tempfile
        >>> from safetensors.numpy import save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "head.safetensors")
        >>> save_file({"fc.weight": np.ones((3, 8), "float32")}, path)
        >>> read_torch_checkpoint(path).classes
        3
    """
    path = _hf_download(source) if source.startswith("hf://") else source
    config: dict[str, Any] = {}
    config_path = os.path.join(path, "config.json")
    if os.path.isdir(path):
        if os.path.exists(config_path):
            config = read_json(config_path, want_object=True)
        for name in ("model.safetensors", "pytorch_model.bin"):
            if os.path.exists(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise ValueError(
                f"The folder {source} has neither model.safetensors nor pytorch_model.bin"
            )
    state = _read_safetensors(path) if path.endswith(".safetensors") else _read_torch(path)
    ckpt = from_state_dict(state, source)
    prep = _cifar_preprocessing(state, source) or _preprocessing(
        config, config_path if config else source
    )
    return dataclasses.replace(ckpt, preprocessing=prep)
