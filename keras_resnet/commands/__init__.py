"""One module per command line command; here, the flags several commands share.

Each command module exposes ``register(subparsers)`` and its ``run(args)``
(:mod:`keras_resnet.cli`); command modules never import each other, only this
package's shared flags.
"""

from __future__ import annotations

import argparse
from typing import Any


def run_flags(**defaults: Any) -> argparse.ArgumentParser:
    """The flags ``train`` and ``tune`` share (data, recipe, output), as a parent parser.

    Args:
        **defaults: The command's defaults (``train`` leaves them ``None``: they are
            resolved with the ``--config`` file).

    Example:
        >>> args = run_flags(epochs=5).parse_args(["--seed", "1"])
        >>> args.epochs, args.seed, args.dataset
        (5, 1, None)
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--dataset", help="data set name")
    p.add_argument("--recipe", help="training recipe")
    p.add_argument("--epochs", type=int, help="epochs (tune: per trial; Hyperband: maximum)")
    p.add_argument("--seed", type=int, help="seed of the weights, data and search")
    p.add_argument("--output", help="folder (default runs/MODEL-DATASET; tune: runs/tune-DATASET)")
    p.add_argument("--overwrite", action="store_true", help="replace what --output holds")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    p.add_argument("--data-dir", help="data folder for TFDS / files")
    p.add_argument("--quiet", action="store_true", help="no per-epoch (tune: per-trial) output")
    p.set_defaults(**defaults)
    return p


def check_export_first(export: bool) -> None:
    """Refuse, before any training, a SavedModel export this Keras backend cannot write.

    ``train`` and ``tune`` export the finished run unless ``--no-export``; off the
    TensorFlow backend that export would fail only after training, so it fails first.

    Args:
        export: Whether the command will export (``not args.no_export``).

    Example:
        >>> check_export_first(False)  # --no-export: nothing to check
        >>> check_export_first(True) is None  # on TensorFlow the export can be written
        True
    """
    if export:
        from keras_resnet.export.common import check_export_backend

        check_export_backend("The SavedModel export after training", "--no-export")


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse ``"224"`` or ``"224,192"`` into ``(height, width)``.

    Args:
        text (str): One size for square images, or ``height,width``.

    Returns:
        The ``(height, width)`` tuple.

    Example:
        >>> parse_image_size("32")
        (32, 32)
    """
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(
            f"`--image-size` must look like 224 or 224,224. Received: {text!r}"
        ) from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise ValueError(f"`--image-size` must be one or two positive integers. Received: {text!r}")
    return parts
