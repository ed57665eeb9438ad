"""``python -m keras_resnet evaluate MODEL``: accuracy and per-class accuracy of a model."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command to ``subparsers`` (see :mod:`keras_resnet.cli`)."""
    p = subparsers.add_parser("evaluate", help="report the accuracy of a model, run or checkpoint")
    p.add_argument(
        "model",
        help="a .keras file, a run folder (uses its model.keras), or an architecture name "
        "with --weights",
    )
    p.add_argument("--weights", default=None, help="checkpoint for the architecture MODEL names")
    p.add_argument("--dataset", default=None, help="data set (default: the run's data set)")
    p.add_argument("--split", default="test", choices=("test", "validation", "train"))
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's own, else 256")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--output", help="folder for evaluation.json and confusion_matrix.png")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.set_defaults(func=run)


def format_result(result: dict[str, Any]) -> str:
    """The human-readable report of an ``evaluate()`` result: summary, normalization, table.

    Example:
        >>> result = {"model": "m", "dataset": "d", "split": "test", "examples": 3,
        ...           "accuracy": 2 / 3, "loss": 0.5,
        ...           "normalization": {"mean": [0.5], "std": [0.25], "source": "weights"},
        ...           "per_class": [{"class": "a", "count": 2, "correct": 2, "accuracy": 1.0},
        ...                         {"class": "b", "count": 1, "correct": 0, "accuracy": 0.0}]}
        >>> print(format_result(result))
        m on d (test, 3 images): accuracy 66.67%, loss 0.5000
        normalization (weights): mean [0.5], std [0.25]
        class  images  accuracy
        a           2   100.00%
        b           1     0.00%
    """
    norm = result["normalization"]
    width = max([5] + [len(row["class"]) for row in result["per_class"]])
    lines = [
        f"{result['model']} on {result['dataset']} ({result['split']}, {result['examples']} "
        f"images): accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f}",
        f"normalization ({norm['source']}): mean {[round(m, 4) for m in norm['mean']]}, "
        f"std {[round(s, 4) for s in norm['std']]}",
        f"{'class':<{width}}  images  accuracy",
    ]
    for row in result["per_class"]:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        lines.append(f"{row['class']:<{width}}  {row['count']:>6}  {accuracy:>8}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate`` on the parsed ``args``; returns the exit code."""
    import json

    from keras_resnet.training import evaluate

    data_kwargs = {"data_dir": args.data_dir} if args.data_dir else {}
    result = evaluate(
        args.model,
        args.dataset,
        weights=args.weights,
        batch_size=args.batch_size,
        split=args.split,
        data_kwargs=data_kwargs,
        output_dir=args.output,
    )
    print(json.dumps(result) if args.json else format_result(result))
    if args.output and not args.json:
        print(f"wrote evaluation.json and confusion_matrix.png to {args.output}")
    return 0
