"""Command line interface: ``python -m keras_resnet COMMAND ...``.

Each command lives in its own module under :mod:`keras_resnet.commands` and exposes
``register(subparsers)``, which adds an ``argparse`` sub-parser whose ``func`` default
runs the command and returns an exit code. Heavy imports (TensorFlow) happen inside
the command functions. Started as ``python -m keras_resnet`` or ``keras-resnet``, the
process loads TensorFlow without its start-up notices (``--verbose`` shows them; see
:mod:`keras_resnet._startup`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from collections.abc import Sequence

# Order is the order shown in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "keras_resnet.commands.train",
    "keras_resnet.commands.evaluate",
    "keras_resnet.commands.tune",
    "keras_resnet.commands.summary",
    "keras_resnet.commands.export",
    "keras_resnet.commands.predict",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every registered command.

    Returns:
        The ``argparse.ArgumentParser`` for ``python -m keras_resnet``.

    Example:
        >>> parser = build_parser()
        >>> parser.parse_args(["summary", "resnet20"]).model
        'resnet20'
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_resnet",
        description="Residual networks for Keras 3: build, train, tune, export.",
    )
    verbose_help = "show TensorFlow's start-up and C++ log messages (hidden by default)"
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for sub in subparsers.choices.values():
        # also after the command; SUPPRESS keeps a top-level --verbose from being reset
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                         help=verbose_help)  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The process exit code (0 on success, 2 for bad arguments, 1 when the disk is
        full: ``error: no space left on device while writing PATH``).

    Example:
        >>> main(["summary", "_tiny", "--input-shape", "16,16,3"])
        tiny  input (16, 16, 3)
        ...
        0
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        # a full disk: what was being written, not a traceback (what came before is kept)
        where = f"while writing {err.filename}" if err.filename else f"({err})"
        print(f"error: no space left on device {where}", file=sys.stderr)
        return 1
