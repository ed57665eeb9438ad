"""Layer-name parts of keras_resnet models: part of the weight format, written once.

A block's layers are named ``{block}_{part}`` with ``block = "stage{s}_block{b}"``
(``stage2_block1_conv2``, ``stage2_block1_shortcut_conv``). The builders, the lesion
study, the weight loaders and the analysis tables use these constants instead of
bare strings.
"""

from __future__ import annotations

import re

STEM = "stem"
STAGE = "stage"
BLOCK = "block"
HEAD = "head"
# Parts of a block's layer names (numbered ones take the index: conv1, bn1, relu1).
CONV = "conv"
BN = "bn"
RELU = "relu"
PREACT = "preact"
PREACT_BN = f"{PREACT}_{BN}"
SHORTCUT = "shortcut"
SHORTCUT_CONV = f"{SHORTCUT}_conv"
SHORTCUT_BN = f"{SHORTCUT}_bn"
SHORTCUT_PAD = f"{SHORTCUT}_pad"
SHORTCUT_POOL = f"{SHORTCUT}_pool"
DROPOUT = "dropout"
DROP_PATH = "drop_path"
GATE = "gate"
ADD = "add"
HIGHWAY = "highway"
OUT = "out"
# Whole-model layers after the last stage.
POST = "post"
POST_BN = f"{POST}_{BN}"
PREDICTIONS = "predictions"
# The layer where a block's branch and shortcut meet, for each merge kind.
MERGES = (ADD, HIGHWAY)
BLOCK_PREFIX = re.compile(rf"^({STAGE}\d+_{BLOCK}\d+)_")


def block_name(stage: int, block: int) -> str:
    """Name prefix of block ``block`` of stage ``stage`` (both 1-based).

    Example:
        >>> block_name(2, 1)
        'stage2_block1'
    """
    return f"{STAGE}{stage}_{BLOCK}{block}"


def part(prefix: str, name: str, index: int | None = None) -> str:
    """The layer name ``{prefix}_{name}{index}``.

    Example:
        >>> part("stage2_block1", CONV, 2), part("stage2_block1", SHORTCUT_CONV)
        ('stage2_block1_conv2', 'stage2_block1_shortcut_conv')
    """
    return f"{prefix}_{name}{'' if index is None else index}"
