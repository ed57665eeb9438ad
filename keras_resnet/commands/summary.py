"""``python -m keras_resnet summary MODEL``: per-stage shapes, parameters and MACs."""

from __future__ import annotations

import argparse
from collections.abc import Iterator


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


ZOO_HEADER = (
    "| model | block | stage depths | input | trainable params | MACs |\n"
    "| --- | --- | --- | --- | ---: | ---: |"
)


def zoo_row(name: str, input_size: int | None = None) -> str:
    """One markdown row of the zoo table: kind, depths, trainable params, MACs.

    Args:
        name: A registry name.
        input_size: Count at ``input_size x input_size``; defaults to the record's
            own input (224 for ImageNet nets, 32 for CIFAR nets).

    Example:
        >>> zoo_row("resnet20")
        '| `resnet20` | basic | 3-3-3 | 32 | 269,722 | 0.04 G |'
        >>> zoo_row("densenet40_k12")
        '| `densenet40_k12` | dense k=12 | 12-12-12 | 32 | 1,019,722 | 0.26 G |'
    """
    import keras

    from keras_resnet.analysis import model_table
    from keras_resnet.models.factory import create_model
    from keras_resnet.models.registry import get_record

    record = get_record(name)
    arch = record.arch
    shape = record.input_shape if input_size is None else (input_size, input_size, 3)
    total = model_table(create_model(name, input_shape=shape))[-1]
    keras.backend.clear_session()  # free the graph before the next variant
    if record.family == "densenet":
        plain = arch.get("bottleneck_width", 4) == 0 and arch.get("compression", 0.5) == 1
        block = f"dense{'' if plain else '-BC'} k={arch['growth_rate']}"
        depths = "-".join(str(d) for d in arch["block_sizes"])
    else:
        block = ("pre-act " if arch.get("preact") else "") + arch.get("block", "bottleneck")
        if arch.get("groups", 1) > 1:
            block += f" x{arch['groups']} groups"
        if "shortcut" in arch and arch["shortcut"] is None:
            block += ", no shortcut"
        depths = "-".join(str(d) for d in arch["stage_depths"])
    return (
        f"| `{name}` | {block} | {depths} | {shape[0]} | {total['trainable_params']:,} "
        f"| {total['macs'] / 1e9:.2f} G |"
    )


def zoo_markdown(input_size: int | None = None) -> Iterator[str]:
    """The markdown zoo table, line by line (each row is yielded once it is counted).

    Example:
        >>> lines = zoo_markdown()
        >>> next(lines).split(" | ")[:2]
        ['| model', 'block']
    """
    from keras_resnet.models.registry import records

    yield from ZOO_HEADER.splitlines()
    for record in records():  # registration (family) order
        yield zoo_row(record.name, input_size)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` command."""
    p = subparsers.add_parser("summary", help="print a model's per-stage parameters and MACs")
    p.add_argument("model", help="variant name (see --list)", nargs="?")
    p.add_argument("--input-shape", help="H,W,C (default: the variant's own input)")
    size = "with --zoo: count every variant at SIZExSIZE instead of its own input"
    p.add_argument("--input-size", type=int, help=size)
    p.add_argument("--classes", type=int, help="override the number of classes")
    p.add_argument("--layers", action="store_true", help="also print Keras' layer-by-layer summary")
    p.add_argument("--list", action="store_true", help="list the variant names")
    zoo = "print a markdown table of every variant (params, MACs at its usual input size)"
    p.add_argument("--zoo", action="store_true", help=zoo)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``summary``; returns the exit code."""
    from keras_resnet.analysis import format_table, model_table
    from keras_resnet.models.factory import create_model
    from keras_resnet.models.registry import get_record, list_models

    if args.zoo:
        if args.input_size is not None and args.input_size < 32:
            raise ValueError(
                f"`--input-size` must be at least 32. Received: --input-size={args.input_size}"
            )
        for line in zoo_markdown(args.input_size):
            print(line, flush=True)
        return 0
    if args.list or not args.model:
        print("\n".join(list_models()))
        return 0
    record = get_record(args.model)
    shape = record.input_shape if args.input_shape is None else parse_shape(args.input_shape)
    overrides = {"input_shape": shape}
    if args.classes is not None:
        overrides["classes"] = args.classes
    model = create_model(args.model, **overrides)
    if args.layers:
        model.summary()
    print(f"{model.name}  input {shape}")
    print(format_table(model_table(model)))
    return 0
