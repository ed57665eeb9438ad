"""``python -m keras_resnet export RUN_OR_MODEL --format ... --output PATH``.

Export RUN_OR_MODEL (a training run folder with model.keras and data_info.json, or a
.keras file) for serving. The preprocessing (mean/std) and class names come from the
run's data_info.json (for a .keras file: --data-info, or a data_info.json beside it).
The SavedModel carries them inside; a .keras or .tflite file gets a copy of that
data_info.json beside it, where `predict` looks. Writes all or nothing; an existing
output (and a different data_info.json beside it) is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from keras_resnet.commands import parse_image_size
from keras_resnet.utils.atomic import check_destination, read_json, write_json_atomic

FORMATS = ("saved_model", "keras", "tflite")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    help = "export a run or .keras model as a SavedModel, .keras or TFLite file"
    p = subparsers.add_parser("export", help=help, description=__doc__)
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder or .keras file")
    p.add_argument("--format", choices=FORMATS, default="saved_model", help="default saved_model")
    p.add_argument("--output", required=True, help="destination folder or file")
    quantize = "TFLite only: dynamic-range (int8 weights) or float16 quantization"
    p.add_argument("--quantize", choices=("dynamic", "float16"), help=quantize)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--top-k", type=int, default=5, help="SavedModel: classes returned (5)")
    p.add_argument("--image-size", default=None, help="H[,W] for models of any input size")
    p.add_argument("--data-info", default=None, help="data_info.json for a .keras file")
    p.add_argument("--best", action="store_true", help="run folder: export best.keras")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns the exit code."""
    from keras_resnet import export
    from keras_resnet.export import serving
    from keras_resnet.saving import load_keras_model, save_keras_model

    if args.quantize is not None and args.format != "tflite":
        raise ValueError(
            f"`--quantize` applies to --format tflite only. Received: --format {args.format}"
        )
    if args.format != "keras":  # before any work: SavedModel and TFLite need TensorFlow
        from keras_resnet.export.common import check_export_backend

        check_export_backend({"saved_model": "A SavedModel"}.get(args.format, "A TFLite file"))
    image_size = parse_image_size(args.image_size) if args.image_size else None
    kind, path = serving.resolve_model_path(args.model)
    if kind not in ("run", "keras"):
        raise ValueError(
            f"RUN_OR_MODEL must be a run folder or a .keras file. Received: {args.model!r} "
            f"(a {kind})"
        )
    info = args.data_info
    if kind == "run":
        model_file = path / ("best.keras" if args.best else "model.keras")
        info = info or path
    else:
        model_file = path
        if info is None and (path.parent / serving.DATA_INFO_FILE).is_file():
            info = path.parent
    prep = serving.load_run_preprocessing(info) if info is not None else {}
    # Check the destination before loading the model (fast failure, nothing touched).
    suffix = {"keras": ".keras", "tflite": ".tflite"}.get(args.format)
    check_destination(args.output, "--output", args.overwrite, suffix)
    beside = _info_beside(args, info) if suffix and info is not None else None

    model = load_keras_model(model_file)
    # what the SavedModel and TFLite writers share
    shared = {"mean": prep.get("mean"), "std": prep.get("std"), "image_size": image_size}
    if args.format == "saved_model":
        if not prep:
            print("note: no data_info.json; the SavedModel only scales pixels to [0, 1]")
        out = export.export_saved_model(
            model,
            args.output,
            class_names=prep.get("class_names"),
            top_k=args.top_k,
            overwrite=args.overwrite,
            **shared,
        )
    elif args.format == "keras":
        out = save_keras_model(model, args.output, overwrite=args.overwrite)
    else:
        out = export.export_tflite(
            model, args.output, quantize=args.quantize, overwrite=args.overwrite, **shared
        )
    if beside is not None:
        write_json_atomic(*beside)
        print(f"wrote {beside[0]}")
    print(f"wrote {out}")
    return 0


def _info_beside(args: argparse.Namespace, info: str | Path) -> tuple[Path, Any] | None:
    """``(path, content)`` of the data_info.json to write beside a file export, or None
    when the same one is there already; a different one is replaced only with --overwrite."""
    from keras_resnet.export.serving import DATA_INFO_FILE

    source = Path(info) / DATA_INFO_FILE if Path(info).is_dir() else Path(info)
    dest = Path(args.output).parent / DATA_INFO_FILE
    content = read_json(source)
    if (dest.exists() or dest.is_symlink()) and not args.overwrite:
        if dest.is_file() and read_json(dest) == content:
            return None
        raise FileExistsError(
            f"{dest} exists and differs from {source}, which the export needs beside "
            f"{args.output}; pass --overwrite to replace it, or export to another folder."
        )
    return dest, content
