"""DenseNet architecture configuration: a frozen dataclass validated before any layer is built.

Huang et al. 2017. Every architecture argument of
:func:`keras_resnet.models.densenet.builder.DenseNet` is a field of
:class:`DenseNetConfig`; the zoo stores variants as dicts of these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_resnet.models.densenet.blocks import transition_channels
from keras_resnet.models.ops import check_bn
from keras_resnet.utils.checks import check_choice, check_float, check_int, check_ints, check_rate
from keras_resnet.utils.config import Config

DENSENET_STEMS = ("imagenet", "cifar")


@dataclass(frozen=True)
class DenseNetConfig(Config):
    """Architecture of a DenseNet (everything except input, head and data).

    Args:
        growth_rate: ``k``, feature maps each dense layer adds (32 for the ImageNet
            DenseNet-121/169/201/264, 48 for DenseNet-161, 12/24/40 on CIFAR).
        block_sizes: Dense layers in each dense block, e.g. ``(6, 12, 24, 16)``; a
            transition follows every block but the last.
        stem: ``"imagenet"`` (7x7/2 conv - BN - ReLU - 3x3/2 max-pool) or
            ``"cifar"`` (one 3x3 conv).
        stem_width: Output channels of the stem (``2k`` in DenseNet-BC, 16 in the
            plain CIFAR DenseNet).
        bottleneck_width: The 1x1 bottleneck of each dense layer has
            ``bottleneck_width * growth_rate`` channels (4 in DenseNet-B); 0 leaves
            it out (BN-ReLU-3x3 layers, the plain DenseNet).
        compression: ``theta`` in (0, 1]: a transition outputs
            ``floor(theta * channels)`` (0.5 in DenseNet-C/BC, 1 otherwise).
        dropout: Dropout rate after each convolution but the stem's (the paper used
            0.2 on CIFAR without data augmentation).
        bn_epsilon: BatchNormalization epsilon (torchvision 1e-5; keras.applications
            1.001e-5).
        bn_momentum: BatchNormalization momentum (Keras convention; 0.9 equals
            PyTorch's 0.1).

    Example:
        >>> cfg = DenseNetConfig(block_sizes=(6, 12, 24, 16), growth_rate=32)
        >>> cfg.depth, cfg.num_features, cfg.total_stride
        (121, 1024, 32)
    """

    FIELD_KIND = "architecture argument"

    growth_rate: int = 32
    block_sizes: tuple[int, ...] = (6, 12, 24, 16)
    stem: str = "imagenet"
    stem_width: int = 64
    bottleneck_width: int = 4
    compression: float = 0.5
    dropout: float = 0.0
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        check_int("growth_rate", self.growth_rate, min_value=1)
        block_sizes = check_ints("block_sizes", self.block_sizes, min_value=1)
        object.__setattr__(self, "block_sizes", block_sizes)
        check_choice("stem", self.stem, DENSENET_STEMS)
        check_int("stem_width", self.stem_width, min_value=1)
        check_int("bottleneck_width", self.bottleneck_width, min_value=0)  # 0: no bottleneck
        check_float("compression", self.compression, min_value=0, max_value=1, min_open=True)
        check_rate("dropout", self.dropout)
        check_bn(self.bn_epsilon, self.bn_momentum)

    @property
    def depth(self) -> int:
        """``L`` as the paper counts it: convolutions and the classifier.

        Stem conv(s), two (or one, without bottleneck) per dense layer, one per
        transition, and the classifier: 121 for ``(6, 12, 24, 16)`` with bottlenecks.
        """
        per_layer = 2 if self.bottleneck_width else 1
        return 1 + per_layer * sum(self.block_sizes) + len(self.block_sizes) - 1 + 1

    @property
    def num_features(self) -> int:
        """Channels of the last feature map (the classifier's input)."""
        c = self.stem_width
        for i, n in enumerate(self.block_sizes):
            c += n * self.growth_rate
            if i < len(self.block_sizes) - 1:
                c = transition_channels(c, self.compression)
        return c

    @property
    def total_stride(self) -> int:
        """Overall downsampling factor from input to the last feature map."""
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.block_sizes) - 1)
