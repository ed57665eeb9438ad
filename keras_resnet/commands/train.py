"""``python -m keras_resnet train``: train a ResNet with a recipe into a run folder.

With no arguments: ``resnet20`` on the offline digits data with the ``digits`` recipe
(``fast`` at 16x16 for 50 epochs, small shifts, label smoothing, EMA, no validation
split: worst 99.17 %, median 99.72 % test accuracy over 20 seeds, docs/training.md;
others default to ``fast``), written to ``runs/resnet20-digits``. Precedence: recipe <
``--config`` file < flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from keras_resnet.commands import check_export_first, parse_image_size, run_flags

DEFAULT_MODEL = "resnet20"
DEFAULT_DATASET = "digits"

# The flags that set the TrainConfig field of the same name.
_FIELDS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "precision",
    "strategy",
    "seed",
    "augment",
    "image_size",
    "head_epochs",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command to ``subparsers`` (see :mod:`keras_resnet.cli`)."""
    p = subparsers.add_parser(
        "train", help="train a model with a recipe (default: digits)", description=__doc__,
        parents=[run_flags()], formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--model", default=None, help=f"zoo variant (default {DEFAULT_MODEL})")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--optimizer", default=None, help="sgd, adamw, adam or rmsprop")
    p.add_argument("--precision", default=None, help="auto, float32, mixed_float16, ...")
    p.add_argument("--strategy", default=None, help="auto, none, mirrored, multi_worker, tpu")
    p.add_argument("--augment", default=None, help="augmentation preset for get_datasets")
    size = "training resolution H[,W] (default: the recipe's, else the data set's)"
    p.add_argument("--image-size", type=parse_image_size, help=size)
    p.add_argument("--config", default=None, help="JSON file of TrainConfig fields (+ model, ...)")
    weights = "pretrained weights: .keras, run folder, .safetensors, timm/keras-hub folder, ..."
    p.add_argument("--weights", help=weights)
    p.add_argument("--head-epochs", type=int, default=None, help="fine-tuning: head-only epochs")
    p.add_argument("--unfreeze", default=None, help="fine-tuning phase 2: 'all' or N last stages")
    p.add_argument("--list-recipes", action="store_true", help="print the recipe names")
    p.set_defaults(func=run)


def resolve_run(args: argparse.Namespace) -> dict[str, Any]:
    """Merge recipe, ``--config`` file and flags into the arguments of ``train()``.

    Args:
        args: Parsed ``train`` arguments.

    Returns:
        A dict with ``model``, ``dataset``, ``config`` (a ``TrainConfig``),
        ``output_dir``, ``model_kwargs``, ``data_kwargs`` and ``weights``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> register(parser.add_subparsers())
        >>> run_args = resolve_run(parser.parse_args(["train", "--epochs", "3"]))
        >>> run_args["model"], run_args["config"].epochs
        ('resnet20', 3)
    """
    from keras_resnet.training import default_recipe, get_recipe, load_config_file
    from keras_resnet.utils.checks import check_path

    file: dict[str, Any] = load_config_file(args.config) if args.config else {}
    model = args.model or file.pop("model", None) or DEFAULT_MODEL
    dataset = args.dataset or file.pop("dataset", None) or DEFAULT_DATASET
    recipe = args.recipe or file.pop("recipe", None) or default_recipe(dataset)
    file.pop("model", None), file.pop("dataset", None)
    model_kwargs = file.pop("model_kwargs", {})
    data_kwargs = file.pop("data_kwargs", {})
    # `--output ''` is refused, not the default folder
    check_path("output", args.output, allow_none=True)
    output = file.pop("output", None) if args.output is None else args.output
    if output is None:
        output = f"runs/{model}-{dataset}"
    overrides = dict(file)
    for field in _FIELDS:
        if getattr(args, field) is not None:
            overrides[field] = getattr(args, field)
    if args.unfreeze is not None:
        overrides["unfreeze"] = int(args.unfreeze) if args.unfreeze.isdigit() else args.unfreeze
    if args.data_dir:
        data_kwargs["data_dir"] = args.data_dir
    weights = args.weights or file.pop("weights", None)
    overrides.pop("weights", None)
    config = get_recipe(recipe, **overrides)
    return {
        "model": model,
        "dataset": dataset,
        "config": config,
        "output_dir": output,
        "model_kwargs": model_kwargs,
        "data_kwargs": data_kwargs,
        "weights": weights,
    }


def fit_verbosity(quiet: bool, stream: Any = None) -> int | str:
    """``model.fit`` verbosity: progress bars on a terminal, one plain line per epoch
    when output goes to a file or a pipe (Keras ``verbose=2``), nothing when ``quiet``.

    Args:
        quiet: ``--quiet`` was given.
        stream: The output stream (default ``sys.stdout``).

    Example:
        >>> import io
        >>> fit_verbosity(False, io.StringIO()), fit_verbosity(True)
        (2, 0)
    """
    if quiet:
        return 0
    stream = sys.stdout if stream is None else stream
    return "auto" if getattr(stream, "isatty", lambda: False)() else 2


def run(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit code (1 if the loss became NaN).

    Args:
        args: Parsed ``train`` arguments.

    Example:
        >>> from keras_resnet.cli import main
        >>> main(["train", "--list-recipes"])  # doctest: +ELLIPSIS
        cosine
        ...
        0
    """
    from keras_resnet.training import NonFiniteLossError, list_recipes, train

    if args.list_recipes:
        print("\n".join(list_recipes()))
        return 0
    spec = resolve_run(args)
    check_export_first(not args.no_export)  # on JAX / PyTorch: refused before any work
    try:
        result = train(**spec, overwrite=args.overwrite, verbose=fit_verbosity(args.quiet))
    except NonFiniteLossError as err:
        print(f"error: {err}")
        return 1
    if not args.no_export:
        export_finished_run(result.output_dir)
    acc = result.summary.get("test_accuracy")
    shown = f"test accuracy {100 * acc:.2f} %" if acc is not None else "no test split"
    print(f"Run folder: {spec['output_dir']} ({shown})")
    return 0


def export_finished_run(run_dir: str | None) -> None:
    """Write the run's serving SavedModel unless the run folder has one.

    Example:
        >>> export_finished_run(None) is None  # no run folder: nothing to export
        True
    """
    if run_dir is None or os.path.isdir(os.path.join(run_dir, "saved_model")):
        return
    from keras_resnet.export import export_run

    export_run(run_dir)
