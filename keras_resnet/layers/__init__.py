"""The few layers Keras lacks, each registered serializable (safe to load).

Importing this package registers them all: shortcuts (option-A zero padding, highway
gates), spatial pyramid pooling, grouped convolution and fused batch normalization.
"""

from keras_resnet.layers.fused_batch_norm import FusedBatchNormalization
from keras_resnet.layers.grouped_conv import GroupedConv2D
from keras_resnet.layers.pooling import SpatialPyramidPooling
from keras_resnet.layers.shortcuts import HighwayGate, ZeroPadShortcut

__all__ = [
    "FusedBatchNormalization",
    "GroupedConv2D",
    "HighwayGate",
    "SpatialPyramidPooling",
    "ZeroPadShortcut",
]
