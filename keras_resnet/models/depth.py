"""Deep functional graphs and Python's recursion limit.

Keras builds a functional model, and rebuilds it when loading, with a recursive
depth-first walk of its graph (``keras.src.ops.function._build_map_helper``): one
Python frame per layer on the longest input-output path. ``resnet1202`` has about
4,200 layers on that path, more than Python's default limit of 1,000 frames, so
building or loading it ended in ``RecursionError``. :data:`MAX_BLOCKS` is the deepest
network the builder accepts. The builders raise the limit (never lower it) to what
the network they build needs, and :func:`keras_resnet.load_keras_model` to what the
deepest one needs before loading; ``import keras_resnet`` leaves it alone. On Python
3.11+ these are Python frames only (no C stack), so a limit of this size is safe.
"""

from __future__ import annotations

import sys

# Residual blocks in one network that the builder accepts (resnet1202 has 600). Keras
# builds about 10 layers per block per second on a 2-core CPU, so 1,000 blocks take
# minutes and deeper nets are refused up front (ResNetConfig).
MAX_BLOCKS = 1000
# Upper bound of layers on the longest path per block (pre-activation bottleneck with
# squeeze-excite, dropout and stochastic depth: about 16), plus stem, head and callers.
FRAMES_PER_BLOCK = 20
BASE_FRAMES = 1000


def frames_needed(num_blocks: int) -> int:
    """Recursion limit that building or loading a network of ``num_blocks`` needs.

    Example:
        >>> frames_needed(600)  # resnet1202
        13000
    """
    return BASE_FRAMES + FRAMES_PER_BLOCK * num_blocks


def ensure_recursion_limit(num_blocks: int = MAX_BLOCKS) -> int:
    """Raise Python's recursion limit to :func:`frames_needed` (never lowers it).

    Args:
        num_blocks: Residual blocks of the deepest network to build or load.

    Returns:
        The recursion limit now in force.

    Example:
        >>> ensure_recursion_limit(600) >= 13000
        True
    """
    sys.setrecursionlimit(max(sys.getrecursionlimit(), frames_needed(num_blocks)))
    return sys.getrecursionlimit()
