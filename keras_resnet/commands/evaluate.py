"""``python -m keras_resnet evaluate MODEL_OR_RUN``: accuracy of a saved model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command to ``subparsers`` (see :mod:`keras_resnet.cli`)."""
    p = subparsers.add_parser("evaluate", help="report the accuracy of a .keras model or run")
    p.add_argument("model", help="a .keras file or a run folder (uses its model.keras)")
    p.add_argument("--dataset", default=None, help="data set (default: the run's data set)")
    p.add_argument("--split", default="test", choices=("test", "validation", "train"))
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's own, else 256")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate`` on the parsed ``args``; returns the exit code."""
    import json

    from keras_resnet.training import evaluate

    data_kwargs = {"data_dir": args.data_dir} if args.data_dir else {}
    result = evaluate(
        args.model,
        args.dataset,
        batch_size=args.batch_size,
        split=args.split,
        data_kwargs=data_kwargs,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']} ({args.split}, {result['examples']} "
            f"images): accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f}"
        )
    return 0
