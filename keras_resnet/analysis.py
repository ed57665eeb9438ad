"""Model analysis: parameter and FLOP (multiply-add) tables per stage.

FLOPs are counted as multiply-accumulates (MACs) of convolutions and dense layers,
the convention of torchvision's metadata and the ResNet papers (ResNet-50 at 224 px:
~4.1 G MACs); normalization, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def _known_shape(model: keras.Model) -> bool:
    return all(d is not None for d in model.input_shape[1:])


def with_input_shape(model: keras.Model, input_shape: tuple[int, int, int]) -> keras.Model:
    """Rebuild a functional model with a concrete input shape (new, untrained weights).

    Args:
        model: A single-input functional model, e.g. one built with spatial ``None``.
        input_shape: ``(height, width, channels)``.

    Returns:
        A model of the same architecture with that input shape.

    Example:
        >>> from keras_resnet import create_model
        >>> m = with_input_shape(create_model("_tiny"), (16, 16, 3))
        >>> m.input_shape
        (None, 16, 16, 3)
    """
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"`input_shape` must have rank 3. Received: input_shape={input_shape!r}")
    config = model.get_config()
    input_layers = [layer for layer in config["layers"] if layer["class_name"] == "InputLayer"]
    if len(input_layers) != 1:
        raise ValueError(f"`model` must have exactly one input; it has {len(input_layers)}")
    input_layers[0]["config"]["batch_shape"] = (None, *tuple(input_shape))
    return model.__class__.from_config(config)


def _layer_macs(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.layers.Conv2D):
        out = layer.output.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1] // layer.groups
        return int(out[1] * out[2] * out[3] * kh * kw * cin)
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input.shape[-1] * layer.units)
    return 0


def _group(layer_name: str) -> str:
    head = layer_name.split("_")[0]
    return head if head == "stem" or head.startswith("stage") else "head"


def model_table(
    model: keras.Model | str,
    input_shape: tuple[int, int, int] | None = None,
) -> list[dict[str, Any]]:
    """Per-stage output shape, parameters and MACs of a model.

    Args:
        model: A keras_resnet model, or a variant name for
            :func:`keras_resnet.create_model`.
        input_shape: Concrete input shape to count with; needed when the model's input
            has unknown spatial sizes (default for names: ``(224, 224, 3)``).

    Returns:
        One dict per group (``stem``, ``stage1`` ..., ``head``) and a ``total`` row,
        each with ``name``, ``output_shape``, ``params`` (all weights),
        ``trainable_params`` and ``macs``.

    Example:
        >>> rows = model_table("_tiny", input_shape=(16, 16, 3))
        >>> [r["name"] for r in rows]
        ['stem', 'stage1', 'stage2', 'head', 'total']
    """
    if isinstance(model, str):
        from keras_resnet.zoo import create_model

        model = create_model(model, input_shape=tuple(input_shape or (224, 224, 3)))
    elif not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model or a variant name. Received: {type(model).__name__}"
        )
    elif input_shape is not None and tuple(model.input_shape[1:]) != tuple(input_shape):
        model = with_input_shape(model, input_shape)
    if not _known_shape(model):
        raise ValueError(
            "The model's input size is unknown; pass `input_shape`, e.g. (224, 224, 3). "
            f"Received: model.input_shape={model.input_shape}"
        )
    rows: dict[str, dict[str, Any]] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        row = rows.setdefault(
            _group(layer.name),
            {
                "name": _group(layer.name),
                "output_shape": None,
                "params": 0,
                "trainable_params": 0,
                "macs": 0,
            },
        )
        row["output_shape"] = tuple(layer.output.shape[1:])
        row["params"] += sum(int(np.prod(w.shape)) for w in layer.weights)
        row["trainable_params"] += sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        row["macs"] += _layer_macs(layer)
    result = list(rows.values())
    result.append(
        {
            "name": "total",
            "output_shape": tuple(model.output.shape[1:]),
            "params": sum(r["params"] for r in result),
            "trainable_params": sum(r["trainable_params"] for r in result),
            "macs": sum(r["macs"] for r in result),
        }
    )
    return result


def count_flops(model: keras.Model | str, input_shape: tuple[int, int, int] | None = None) -> int:
    """Multiply-accumulates of one forward pass for one image.

    Example:
        >>> count_flops("_tiny", input_shape=(16, 16, 3)) > 0
        True
    """
    return model_table(model, input_shape)[-1]["macs"]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Render :func:`model_table` rows as an aligned text table.

    Example:
        >>> table = format_table(model_table("_tiny", (16, 16, 3)))
        >>> table.splitlines()[0].split()
        ['group', 'output', 'shape', 'params', 'trainable', 'MACs']
    """
    header = ("group", "output shape", "params", "trainable", "MACs")
    lines = [header] + [
        (
            r["name"],
            "x".join(str(d) for d in r["output_shape"]),
            f"{r['params']:,}",
            f"{r['trainable_params']:,}",
            _human(r["macs"]),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "   ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
