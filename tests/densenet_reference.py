"""An independent numpy forward pass of torchvision / timm DenseNets, for the weight tests.

It writes random state dicts in torchvision's key layout (from torchvision's
``DenseNet`` definition, not from our models) and runs them with PyTorch semantics
(NCHW, -inf max-pool padding, floor-mode 2x2 average pool) in float64, reusing the
conv / BN / max-pool primitives of the ResNet reference.
"""

from __future__ import annotations

import numpy as np
from torch_reference import _bn, _bn_f, _conv, _conv_w, _maxpool, _relu


def torchvision_densenet_state_dict(
    growth_rate: int, block_config: tuple[int, ...], num_init_features: int,
    bn_size: int = 4, classes: int = 10, seed: int = 0, old_names: bool = False,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Random weights and BN statistics under torchvision's DenseNet key names.

    ``old_names`` writes the pre-0.3 spelling ``norm.1`` / ``conv.1`` inside dense layers.
    """
    rng = np.random.default_rng(seed)
    sd = {"features.conv0.weight": _conv_w(rng, num_init_features, 3, 7)}
    _bn(sd, "features.norm0", num_init_features, rng)
    c = num_init_features
    dot = "." if old_names else ""
    for b, n in enumerate(block_config, start=1):
        for i in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            _bn(sd, f"{p}.norm{dot}1", c, rng)
            sd[f"{p}.conv{dot}1.weight"] = _conv_w(rng, bn_size * growth_rate, c, 1)
            _bn(sd, f"{p}.norm{dot}2", bn_size * growth_rate, rng)
            sd[f"{p}.conv{dot}2.weight"] = _conv_w(rng, growth_rate, bn_size * growth_rate, 3)
            c += growth_rate
        if b < len(block_config):
            _bn(sd, f"features.transition{b}.norm", c, rng)
            sd[f"features.transition{b}.conv.weight"] = _conv_w(rng, c // 2, c, 1)
            c //= 2
    _bn(sd, "features.norm5", c, rng)
    sd["classifier.weight"] = rng.normal(0, 0.05, (classes, c)).astype("float32")
    sd["classifier.bias"] = rng.normal(0, 0.05, classes).astype("float32")
    return sd


def _avgpool2(x):
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def torchvision_densenet_forward(
    sd: dict[str, np.ndarray], block_config: tuple[int, ...], images_nhwc: np.ndarray
) -> np.ndarray:
    """Logits of a torchvision DenseNet with (new-style) state dict ``sd`` for NHWC images."""
    x = images_nhwc.transpose(0, 3, 1, 2).astype("float64")
    x = _maxpool(_relu(_bn_f(_conv(x, sd["features.conv0.weight"], 2), sd, "features.norm0")))
    for b, n in enumerate(block_config, start=1):
        for i in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            h = _conv(_relu(_bn_f(x, sd, f"{p}.norm1")), sd[f"{p}.conv1.weight"])
            h = _conv(_relu(_bn_f(h, sd, f"{p}.norm2")), sd[f"{p}.conv2.weight"])
            x = np.concatenate([x, h], axis=1)
        if b < len(block_config):
            p = f"features.transition{b}"
            x = _avgpool2(_conv(_relu(_bn_f(x, sd, f"{p}.norm")), sd[f"{p}.conv.weight"]))
    x = _relu(_bn_f(x, sd, "features.norm5")).mean(axis=(2, 3))
    return x @ sd["classifier.weight"].T + sd["classifier.bias"]
