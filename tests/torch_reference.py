"""An independent numpy implementation of timm / torchvision ResNets, for the weight tests.

It writes random state dicts in timm's key layout (from timm's definitions, not from
our models) and runs their forward pass with PyTorch semantics (NCHW, symmetric
zero padding, -inf max-pool padding, ceil-mode average pool without padded values),
in float64.
"""

from __future__ import annotations

import numpy as np

# timm names -> (block, layers, cardinality, base_width, deep_stem_and_avg_down)
TIMM_ARCHS = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64, False),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64, False),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64, False),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64, False),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64, False),
    "resnet18d": ("basic", (2, 2, 2, 2), 1, 64, True),
    "resnet50d": ("bottleneck", (3, 4, 6, 3), 1, 64, True),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4, False),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), 32, 8, False),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128, False),
    "wide_resnet101_2": ("bottleneck", (3, 4, 23, 3), 1, 128, False),
    "resnetv2_50": ("preact", (3, 4, 6, 3), 1, 64, False),
    "resnetv2_101": ("preact", (3, 4, 23, 3), 1, 64, False),
    "resnetv2_152": ("preact", (3, 8, 36, 3), 1, 64, False),
}


def _conv_w(rng, o, i, k):
    return rng.normal(0, np.sqrt(2.0 / (i * k * k)), (o, i, k, k)).astype("float32")


def _bn(sd, prefix, c, rng):
    sd[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, c).astype("float32")
    sd[f"{prefix}.bias"] = rng.normal(0, 0.1, c).astype("float32")
    sd[f"{prefix}.running_mean"] = rng.normal(0, 0.1, c).astype("float32")
    sd[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, c).astype("float32")
    sd[f"{prefix}.num_batches_tracked"] = np.array(7, dtype="int64")


def timm_state_dict(
    arch: str, classes: int = 10, seed: int = 0, layers: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Random weights and BN statistics under timm's key names for ``arch``.

    ``layers`` overrides the blocks per stage (timm's ``layers=`` argument).
    """
    block, default_layers, card, base, deep = TIMM_ARCHS[arch]
    layers = layers or default_layers
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    if block == "preact":
        return _timm_v2_state_dict(layers, classes, rng)
    if deep:
        for idx, (o, i) in zip((0, 3, 6), ((32, 3), (32, 32), (64, 32))):
            sd[f"conv1.{idx}.weight"] = _conv_w(rng, o, i, 3)
        _bn(sd, "conv1.1", 32, rng)
        _bn(sd, "conv1.4", 32, rng)
    else:
        sd["conv1.weight"] = _conv_w(rng, 64, 3, 7)
    _bn(sd, "bn1", 64, rng)
    inplanes, exp = 64, (1 if block == "basic" else 4)
    for s, n in enumerate(layers):
        planes = 64 * 2**s
        for j in range(n):
            p = f"layer{s + 1}.{j}"
            stride = 2 if s > 0 and j == 0 else 1
            out = planes * exp
            if block == "basic":
                sd[f"{p}.conv1.weight"] = _conv_w(rng, planes, inplanes, 3)
                sd[f"{p}.conv2.weight"] = _conv_w(rng, planes, planes, 3)
                _bn(sd, f"{p}.bn1", planes, rng)
                _bn(sd, f"{p}.bn2", planes, rng)
            else:
                width = int(planes * base / 64) * card
                sd[f"{p}.conv1.weight"] = _conv_w(rng, width, inplanes, 1)
                sd[f"{p}.conv2.weight"] = _conv_w(rng, width, width // card, 3)
                sd[f"{p}.conv3.weight"] = _conv_w(rng, out, width, 1)
                for k, c in ((1, width), (2, width), (3, out)):
                    _bn(sd, f"{p}.bn{k}", c, rng)
            if j == 0 and (stride != 1 or inplanes != out):
                first = 1 if deep else 0  # ResNet-D: downsample.0 is the average pool
                sd[f"{p}.downsample.{first}.weight"] = _conv_w(rng, out, inplanes, 1)
                _bn(sd, f"{p}.downsample.{first + 1}", out, rng)
            inplanes = out
    sd["fc.weight"] = rng.normal(0, 0.05, (classes, inplanes)).astype("float32")
    sd["fc.bias"] = rng.normal(0, 0.05, classes).astype("float32")
    return sd


def _timm_v2_state_dict(layers, classes, rng):
    sd = {"stem.conv.weight": _conv_w(rng, 64, 3, 7)}
    inp = 64
    for s, n in enumerate(layers):
        out, mid = 256 * 2**s, 64 * 2**s
        for j in range(n):
            p = f"stages.{s}.blocks.{j}"
            _bn(sd, f"{p}.norm1", inp, rng)
            sd[f"{p}.conv1.weight"] = _conv_w(rng, mid, inp, 1)
            _bn(sd, f"{p}.norm2", mid, rng)
            sd[f"{p}.conv2.weight"] = _conv_w(rng, mid, mid, 3)
            _bn(sd, f"{p}.norm3", mid, rng)
            sd[f"{p}.conv3.weight"] = _conv_w(rng, out, mid, 1)
            if j == 0:
                sd[f"{p}.downsample.conv.weight"] = _conv_w(rng, out, inp, 1)
            inp = out
    _bn(sd, "norm", inp, rng)
    sd["head.fc.weight"] = rng.normal(0, 0.05, (classes, inp, 1, 1)).astype("float32")
    sd["head.fc.bias"] = rng.normal(0, 0.05, classes).astype("float32")
    return sd


# ---- forward pass, PyTorch semantics, NCHW, float64 ----
def _conv(x, w, stride=1, groups=1):
    k = w.shape[-1]
    pad = k // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, h, wd = win.shape[:4]
    win = win.reshape(n, groups, c // groups, h, wd, k, k)
    w = w.reshape(groups, w.shape[0] // groups, *w.shape[1:]).astype("float64")
    return np.einsum("ngchwij,gocij->ngohw", win, w).reshape(n, -1, h, wd)


def _bn_f(x, sd, p):
    scale = sd[f"{p}.weight"] / np.sqrt(sd[f"{p}.running_var"].astype("float64") + 1e-5)
    shift = sd[f"{p}.bias"] - sd[f"{p}.running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _relu(x):
    return np.maximum(x, 0)


def _maxpool(x):
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    return win.max(axis=(-1, -2))


def _avgpool_ceil(x):
    h, w = x.shape[2], x.shape[3]
    x = np.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2)), constant_values=np.nan)
    n, c, hh, ww = x.shape
    return np.nanmean(x.reshape(n, c, hh // 2, 2, ww // 2, 2), axis=(3, 5))


def timm_forward(
    arch: str, sd: dict[str, np.ndarray], images_nhwc: np.ndarray, layers=None
) -> np.ndarray:
    """Logits of timm ``arch`` with state dict ``sd`` for NHWC images."""
    block, default_layers, card, _, deep = TIMM_ARCHS[arch]
    layers = layers or default_layers
    x = images_nhwc.transpose(0, 3, 1, 2).astype("float64")
    if block == "preact":
        x = _maxpool(_conv(x, sd["stem.conv.weight"], 2))
        for s, n in enumerate(layers):
            for j in range(n):
                p = f"stages.{s}.blocks.{j}"
                stride = 2 if s > 0 and j == 0 else 1
                pre = _relu(_bn_f(x, sd, f"{p}.norm1"))
                short = _conv(pre, sd[f"{p}.downsample.conv.weight"], stride) if j == 0 else x
                y = _conv(pre, sd[f"{p}.conv1.weight"])
                y = _conv(_relu(_bn_f(y, sd, f"{p}.norm2")), sd[f"{p}.conv2.weight"], stride)
                x = short + _conv(_relu(_bn_f(y, sd, f"{p}.norm3")), sd[f"{p}.conv3.weight"])
        x = _relu(_bn_f(x, sd, "norm")).mean(axis=(2, 3))
        return x @ sd["head.fc.weight"][:, :, 0, 0].T + sd["head.fc.bias"]
    if deep:
        x = _relu(_bn_f(_conv(x, sd["conv1.0.weight"], 2), sd, "conv1.1"))
        x = _relu(_bn_f(_conv(x, sd["conv1.3.weight"]), sd, "conv1.4"))
        x = _conv(x, sd["conv1.6.weight"])
    else:
        x = _conv(x, sd["conv1.weight"], 2)
    x = _maxpool(_relu(_bn_f(x, sd, "bn1")))
    for s, n in enumerate(layers):
        for j in range(n):
            p = f"layer{s + 1}.{j}"
            stride = 2 if s > 0 and j == 0 else 1
            short = x
            if f"{p}.downsample.0.weight" in sd:
                short = _bn_f(
                    _conv(x, sd[f"{p}.downsample.0.weight"], stride), sd, f"{p}.downsample.1"
                )
            elif f"{p}.downsample.1.weight" in sd:
                pooled = _avgpool_ceil(x) if stride == 2 else x
                short = _bn_f(
                    _conv(pooled, sd[f"{p}.downsample.1.weight"]), sd, f"{p}.downsample.2"
                )
            if block == "basic":
                y = _relu(_bn_f(_conv(x, sd[f"{p}.conv1.weight"], stride), sd, f"{p}.bn1"))
                y = _bn_f(_conv(y, sd[f"{p}.conv2.weight"]), sd, f"{p}.bn2")
            else:
                y = _relu(_bn_f(_conv(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                y = _relu(_bn_f(_conv(y, sd[f"{p}.conv2.weight"], stride, card), sd, f"{p}.bn2"))
                y = _bn_f(_conv(y, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            x = _relu(short + y)
    return x.mean(axis=(2, 3)) @ sd["fc.weight"].T + sd["fc.bias"]
