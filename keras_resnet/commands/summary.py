"""``python -m keras_resnet summary MODEL``: per-stage shapes, parameters and MACs."""

from __future__ import annotations

import argparse


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse ``"224,224,3"`` into ``(224, 224, 3)``.

    Example:
        >>> parse_shape("32,32,3")
        (32, 32, 3)
    """
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"`--input-shape` must look like 224,224,3. Received: {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"`--input-shape` must be three positive integers. Received: {text!r}")
    return shape


def zoo_markdown() -> str:
    """A markdown table of every variant: kind, depths, trainable params, MACs.

    MACs are counted at 224x224x3 for ImageNet-style stems and 32x32x3 for CIFAR nets.

    Example:
        >>> zoo_markdown().splitlines()[0]  # doctest: +SKIP
        '| model | block | stage depths | input | trainable params | MACs |'
    """
    from keras_resnet.analysis import model_table
    from keras_resnet.zoo import SPECS, create_model, model_spec

    lines = [
        "| model | block | stage depths | input | trainable params | MACs |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for name in [n for n in SPECS if not n.startswith("_")]:  # family order
        spec = model_spec(name)
        size = 32 if spec.get("stem") == "cifar" else 224
        total = model_table(create_model(name, input_shape=(size, size, 3)))[-1]
        block = ("pre-act " if spec.get("preact") else "") + spec.get("block", "bottleneck")
        if spec.get("groups", 1) > 1:
            block += f" x{spec['groups']} groups"
        if spec.get("shortcut", "projection") is None:
            block += ", no shortcut"
        depths = "-".join(str(d) for d in spec["stage_depths"])
        lines.append(
            f"| `{name}` | {block} | {depths} | {size} | {total['trainable_params']:,} "
            f"| {total['macs'] / 1e9:.2f} G |"
        )
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` command."""
    p = subparsers.add_parser("summary", help="print a model's per-stage parameters and MACs")
    p.add_argument("model", help="variant name (see --list)", nargs="?")
    p.add_argument("--input-shape", default="224,224,3", type=str, help="H,W,C (default 224,224,3)")
    p.add_argument("--classes", type=int, default=None, help="override the number of classes")
    p.add_argument("--layers", action="store_true", help="also print Keras' layer-by-layer summary")
    p.add_argument("--list", action="store_true", help="list the variant names")
    p.add_argument(
        "--zoo",
        action="store_true",
        help="print a markdown table of every variant (params, MACs at its usual input size)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``summary``; returns the exit code."""
    from keras_resnet.analysis import format_table, model_table
    from keras_resnet.zoo import create_model, list_models

    if args.zoo:
        print(zoo_markdown())
        return 0
    if args.list or not args.model:
        print("\n".join(list_models()))
        return 0
    overrides = {"input_shape": parse_shape(args.input_shape)}
    if args.classes is not None:
        overrides["classes"] = args.classes
    model = create_model(args.model, **overrides)
    if args.layers:
        model.summary()
    print(f"{model.name}  input {overrides['input_shape']}")
    print(format_table(model_table(model)))
    return 0
