"""Independent parameter counts from the papers' definitions (pure Python, no Keras).

This is a second derivation of every variant's trainable parameter count, written
from the block definitions (He et al. 2015/2016, Xie et al. 2017, Zagoruyko &
Komodakis 2016, He et al. 2019) rather than from our layers, so that the test
compares two independent computations as well as the published figures.
"""

from __future__ import annotations


def conv(k: int, cin: int, cout: int, groups: int = 1, bias: bool = False) -> int:
    return k * k * (cin // groups) * cout + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c  # gamma and beta (moving statistics are not trainable)


def reference_count(spec: dict, in_channels: int = 3) -> int:
    block = spec.get("block", "bottleneck")
    depths = spec.get("stage_depths", (3, 4, 6, 3))
    widths = spec.get("stage_widths", (64, 128, 256, 512))
    stem = spec.get("stem", "imagenet")
    stem_width = spec.get("stem_width", 64)
    preact = spec.get("preact", False)
    kind = spec.get("shortcut", "projection")
    kind = {"A": "zero_pad", "B": "projection", "C": "projection_all", "D": "avg_down"}.get(
        kind, kind
    )
    groups = spec.get("groups", 1)
    base_width = spec.get("base_width", 64)
    bias = spec.get("use_bias", False)
    classes = spec.get("classes", 1000)
    downsample_last = spec.get("downsample_in", "first") == "last"

    total = 0
    if stem == "deep":
        half = stem_width // 2
        total += conv(3, in_channels, half, bias=bias) + bn(half)
        total += conv(3, half, half, bias=bias) + bn(half)
        total += conv(3, half, stem_width, bias=bias) + (0 if preact else bn(stem_width))
    else:
        k = 3 if stem == "cifar" else 7
        total += conv(k, in_channels, stem_width, bias=bias) + (0 if preact else bn(stem_width))

    c = stem_width
    for s, (n, w) in enumerate(zip(depths, widths)):
        out = w * (1 if block == "basic" else 4)
        for b in range(n):
            strided = (
                (b == n - 1 and s < len(depths) - 1) if downsample_last else (b == 0 and s > 0)
            )
            changes = c != out or strided
            if block == "basic":
                body = (
                    conv(3, c, w, groups, bias and not preact) + bn(w) + conv(3, w, out, bias=bias)
                )
                body += 0 if preact else bn(out)
            else:
                inner = int(w * base_width / 64) * groups
                body = conv(1, c, inner, bias=bias and not preact) + bn(inner)
                body += conv(3, inner, inner, groups, bias and not preact) + bn(inner)
                body += conv(1, inner, out, bias=bias) + (0 if preact else bn(out))
            if preact:
                body += bn(c)
            projection = conv(1, c, out, bias=bias) + (0 if preact else bn(out))
            if kind in (None, "zero_pad"):
                short = 0
            elif kind == "projection_all":
                short = projection
            elif downsample_last:  # keras ResNetV2: stride-only changes subsample x
                short = projection if c != out else 0
            else:  # projection (B), avg_down (D), highway: project where the shape changes
                short = projection if changes else 0
            if kind == "highway":
                short += conv(1, c, out, bias=True)  # the gate T(x)
            total += body + short
            c = out
    if preact:
        total += bn(c)
    features = c * 21 if spec.get("pooling") == "spp" else c  # SPP bins 1 + 4 + 16
    return total + features * classes + classes


def densenet_reference_count(spec: dict, in_channels: int = 3) -> int:
    """DenseNet / DenseNet-BC (Huang et al. 2017, Sec. 3 and Table 1), counted by hand.

    Stem conv (+ BN on ImageNet); each dense layer l sees c0 + k(l-1) channels:
    BN-ReLU-1x1 conv to 4k (bottleneck) - BN-ReLU-3x3 conv to k; each transition is
    BN-ReLU-1x1 conv to floor(theta m); final BN; linear classifier. No conv biases.
    """
    k = spec["growth_rate"]
    sizes = spec["block_sizes"]
    imagenet = spec.get("stem", "imagenet") == "imagenet"
    c = spec.get("stem_width", 64)
    width = spec.get("bottleneck_width", 4)
    theta = spec.get("compression", 0.5)
    total = conv(7 if imagenet else 3, in_channels, c) + (bn(c) if imagenet else 0)
    for i, n in enumerate(sizes):
        for _ in range(n):
            if width:
                total += bn(c) + conv(1, c, width * k) + bn(width * k) + conv(3, width * k, k)
            else:
                total += bn(c) + conv(3, c, k)
            c += k
        if i < len(sizes) - 1:
            out = int(theta * c)
            total += bn(c) + conv(1, c, out)
            c = out
    classes = spec.get("classes", 1000)
    return total + bn(c) + c * classes + classes
