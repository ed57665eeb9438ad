"""Architecture configuration: a frozen dataclass validated before any layer is built.

Every architecture argument of :func:`keras_resnet.models.resnet.builder.ResNet` is a field of
:class:`ResNetConfig`; the zoo stores variants as dicts of these fields and the
KerasTuner HyperModel maps hyperparameters onto the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_resnet.models.depth import MAX_BLOCKS
from keras_resnet.models.ops import check_bn
from keras_resnet.utils.checks import check_bool, check_choice, check_int, check_ints, check_rate
from keras_resnet.utils.config import Config

BLOCKS = ("basic", "bottleneck")
STEMS = ("imagenet", "cifar", "deep")
STRIDE_IN = ("3x3", "1x1")
DOWNSAMPLE_IN = ("first", "last")
STEM_POOL_PADDING = ("ignore", "zeros")
# Shortcut kinds (He et al. 2015 options A/B/C, Bag-of-Tricks ResNet-D, highway, plain).
SHORTCUTS = ("projection", "projection_all", "zero_pad", "avg_down", "highway", None)
SHORTCUT_ALIASES = {"A": "zero_pad", "B": "projection", "C": "projection_all", "D": "avg_down"}
EXPANSION = {"basic": 1, "bottleneck": 4}


@dataclass(frozen=True)
class ResNetConfig(Config):
    """Architecture of a residual network (everything except input, head and data).

    Args:
        block: ``"basic"`` (two 3x3 convs, expansion 1) or ``"bottleneck"``
            (1x1 -> 3x3 -> 1x1, expansion 4); He et al. 2015.
        stage_depths: Number of blocks in each stage, e.g. ``(3, 4, 6, 3)``.
        stage_widths: Base width of each stage; a stage outputs
            ``width * expansion`` channels.
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool), ``"cifar"`` (one 3x3
            conv) or ``"deep"`` (three 3x3 convs + max-pool, ResNet-C).
        stem_width: Output channels of the stem (the deep stem uses
            ``stem_width // 2`` for its first two convs).
        preact: Pre-activation blocks (BN -> ReLU -> conv; He et al. 2016) with a
            final BN-ReLU before the head.
        shortcut: Kind used where a block changes shape (identity otherwise):
            ``"projection"`` (1x1 conv + BN, option B), ``"projection_all"``
            (projection in every block, option C), ``"zero_pad"`` (parameter-free
            subsampling + zero channels, option A), ``"avg_down"`` (average pool then
            1x1 conv + BN, ResNet-D), ``"highway"`` (gated, y = T*F + (1-T)*x) or
            ``None`` (plain network, no shortcut at all). Letters "A"-"D" are aliases.
        stride_in: Where a bottleneck downsamples: ``"3x3"`` (ResNet v1.5, default)
            or ``"1x1"`` (original v1 / keras.applications).
        downsample_in: Which block of a stage downsamples: ``"first"`` (standard) or
            ``"last"`` (keras.applications ResNetV2 layout, subsampling shortcut).
        stem_pool_padding: How the 3x3/2 stem max-pool treats its one-pixel border:
            ``"ignore"`` (padding never wins the max, as PyTorch / timm / keras-hub pad
            with -inf) or ``"zeros"`` (keras.applications: zero padding, which changes
            the border of pre-activation stems, whose values can be negative).
        groups: Cardinality of the 3x3 convolution (ResNeXt when > 1).
        base_width: Bottleneck width per group for 64 base channels; the inner
            width is ``int(width * base_width / 64) * groups`` (timm's rule).
        drop_path_rate: Stochastic depth: drop probability of the last block,
            ``1 - p_L``; block ``l`` of ``L`` drops with ``rate * l / L``.
        dropout: Dropout rate between the convolutions of a block (Wide ResNet).
        se_ratio: Squeeze-and-excitation reduction ratio (0 disables SE).
        zero_init_last_bn: Zero-initialize the last BN gamma of each residual branch
            (the last conv kernel in pre-activation blocks).
        use_bias: Conv biases as in keras.applications: on every conv of
            post-activation nets; on the convs not directly followed by BN in
            pre-activation nets.
        bn_epsilon: BatchNormalization epsilon.
        bn_momentum: BatchNormalization momentum (Keras convention; 0.9 equals
            PyTorch's 0.1).

    Example:
        >>> cfg = ResNetConfig(block="basic", stage_depths=(2, 2, 2, 2))
        >>> cfg.expansion, cfg.num_blocks, cfg.total_stride
        (1, 8, 32)
    """

    FIELD_KIND = "architecture argument"

    block: str = "bottleneck"
    stage_depths: tuple[int, ...] = (3, 4, 6, 3)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: str = "imagenet"
    stem_width: int = 64
    preact: bool = False
    shortcut: str | None = "projection"
    stride_in: str = "3x3"
    downsample_in: str = "first"
    stem_pool_padding: str = "ignore"
    groups: int = 1
    base_width: int = 64
    drop_path_rate: float = 0.0
    dropout: float = 0.0
    se_ratio: float = 0.0
    zero_init_last_bn: bool = False
    use_bias: bool = False
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        check_choice("block", self.block, BLOCKS)
        for arg in ("stage_depths", "stage_widths"):
            object.__setattr__(self, arg, check_ints(arg, getattr(self, arg), min_value=1))
        if sum(self.stage_depths) > MAX_BLOCKS:
            raise ValueError(
                f"`stage_depths` must add up to at most {MAX_BLOCKS} blocks (Keras builds and "
                f"loads a functional graph recursively, one frame per layer; "
                f"resnet1202 has 600 blocks). Received: stage_depths={self.stage_depths}"
            )
        if len(self.stage_depths) != len(self.stage_widths):
            raise ValueError(
                "`stage_depths` and `stage_widths` must have the same length. Received: "
                f"stage_depths={self.stage_depths}, stage_widths={self.stage_widths}"
            )
        check_choice("stem", self.stem, STEMS)
        check_int("stem_width", self.stem_width, min_value=1)
        if self.stem == "deep" and self.stem_width < 2:
            raise ValueError(
                "`stem_width` must be at least 2 for stem='deep'. "
                f"Received: stem_width={self.stem_width}"
            )
        shortcut = SHORTCUT_ALIASES.get(self.shortcut, self.shortcut)
        check_choice("shortcut", shortcut, SHORTCUTS + tuple(SHORTCUT_ALIASES))
        object.__setattr__(self, "shortcut", shortcut)
        check_choice("stride_in", self.stride_in, STRIDE_IN)
        check_choice("downsample_in", self.downsample_in, DOWNSAMPLE_IN)
        check_choice("stem_pool_padding", self.stem_pool_padding, STEM_POOL_PADDING)
        check_int("groups", self.groups, min_value=1)
        check_int("base_width", self.base_width, min_value=1)
        for stage, width in enumerate(self.stage_widths, start=1):
            inner = self.inner_width(width)
            if inner < 1 or inner % self.groups:
                raise ValueError(
                    f"`groups` must divide the 3x3 width of every stage (stage {stage} has "
                    f"width {inner}). Received: groups={self.groups}"
                )
        if self.shortcut == "zero_pad":
            channels = [self.stem_width] + [w * self.expansion for w in self.stage_widths]
            if any(b < a for a, b in zip(channels, channels[1:])):
                raise ValueError(
                    "`shortcut='zero_pad'` (option A) can only add channels, but the channel "
                    f"counts stem -> stages are {channels}. Use a projection shortcut or "
                    "non-decreasing widths. Received: shortcut='zero_pad'"
                )
        check_rate("drop_path_rate", self.drop_path_rate)
        if self.drop_path_rate > 0 and self.shortcut is None:
            raise ValueError(
                "`drop_path_rate` > 0 needs residual shortcuts: dropping a branch of a plain "
                f"network removes the layer. Received: drop_path_rate={self.drop_path_rate}, "
                "shortcut=None"
            )
        check_rate("dropout", self.dropout)
        check_rate("se_ratio", self.se_ratio, include_one=True)
        for flag in ("preact", "zero_init_last_bn", "use_bias"):
            check_bool(flag, getattr(self, flag))
        check_bn(self.bn_epsilon, self.bn_momentum)

    @property
    def expansion(self) -> int:
        """Output channels per base width: 1 for basic, 4 for bottleneck blocks."""
        return EXPANSION[self.block]

    @property
    def num_blocks(self) -> int:
        """Total number of residual blocks."""
        return sum(self.stage_depths)

    @property
    def total_stride(self) -> int:
        """Overall downsampling factor from input to the last feature map."""
        stem_stride = 1 if self.stem == "cifar" else 4
        return stem_stride * 2 ** (len(self.stage_depths) - 1)

    def inner_width(self, width: int) -> int:
        """Channels of the 3x3 convolution(s) in a stage of base width ``width``."""
        if self.block == "basic":
            return width
        return int(width * self.base_width / 64) * self.groups
