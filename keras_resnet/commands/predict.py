"""``python -m keras_resnet predict MODEL IMAGE... [--top-k K]``.

Print the top-k classes of each IMAGE (JPEG, PNG, BMP or GIF). MODEL is a SavedModel
folder from `export`, a .keras file, a training run folder or a .tflite file; for the
last three the mean/std and class names come from --data-info or a data_info.json
beside the model.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` command."""
    help = "classify image files with a SavedModel, .keras, run folder or .tflite"
    p = subparsers.add_parser("predict", help=help, description=__doc__)
    p.add_argument("model", metavar="MODEL", help="SavedModel folder, .keras, run folder, .tflite")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (5)")
    p.add_argument("--data-info", default=None, help="data_info.json (or its folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``predict``; returns the exit code (1 if some image could not be read).

    Images that cannot be decoded are named on stderr and skipped; the others are
    still classified and printed.
    """
    from keras_resnet.export.serving import predict_images

    results = predict_images(
        args.model, args.images, top_k=args.top_k, data_info=args.data_info, errors="skip"
    )
    failed = 0
    for result in results:
        if "error" in result:
            failed += 1
            print(f"error: skipped {result['image']!r}: {result['error']}", file=sys.stderr)
        if args.json:
            print(json.dumps(result))
        elif "error" not in result:
            print(result["image"])
            for rank, entry in enumerate(result["top_k"], 1):
                label = entry["name"] if entry["name"] is not None else str(entry["id"])
                print(f"  {rank}. {label:<20} id={entry['id']:<5} p={entry['probability']:.4f}")
    if failed:
        print(f"error: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
