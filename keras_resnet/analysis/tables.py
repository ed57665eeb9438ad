"""Model analysis: parameter and FLOP (multiply-add) tables per stage.

FLOPs are counted as multiply-accumulates (MACs) of convolutions and dense layers,
the convention of torchvision's metadata and the ResNet papers (ResNet-50 at 224 px:
~4.1 G MACs); normalization, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet.models.naming import HEAD, STAGE, STEM

# The summed columns of a model_table row.
_COUNTS = ("params", "trainable_params", "macs")


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
    first = layer_name.split("_")[0]
    return first if first == STEM or first.startswith(STAGE) else HEAD


def model_table(
    model: keras.Model | str, input_shape: tuple[int, int, int] | None = None
) -> list[dict[str, Any]]:
    """Per-stage output shape, parameters and MACs of a model.

    Args:
        model: A keras_resnet model, or a variant name for
            :func:`keras_resnet.create_model`.
        input_shape: Concrete input shape to count with; needed when the model's input
            has unknown spatial sizes (default for names: the record's
            ``input_shape``, e.g. ``(32, 32, 3)`` for ``resnet20``).

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
        from keras_resnet.models.factory import create_model
        from keras_resnet.models.registry import get_record

        shape = tuple(input_shape or get_record(model).input_shape)
        model = create_model(model, input_shape=shape)
    elif not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model or a variant name. Received: {type(model).__name__}"
        )
    elif input_shape is not None and tuple(model.input_shape[1:]) != tuple(input_shape):
        model = with_input_shape(model, input_shape)
    if None in model.input_shape[1:]:
        raise ValueError(
            "The model's input size is unknown; pass `input_shape`, e.g. (224, 224, 3). "
            f"Received: model.input_shape={model.input_shape}"
        )
    rows: dict[str, dict[str, Any]] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        group = _group(layer.name)
        row = rows.setdefault(
            group,
            {"name": group, "output_shape": None, "params": 0, "trainable_params": 0, "macs": 0},
        )
        row["output_shape"] = tuple(layer.output.shape[1:])
        row["params"] += sum(int(np.prod(w.shape)) for w in layer.weights)
        row["trainable_params"] += sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        row["macs"] += _layer_macs(layer)
    result = list(rows.values())
    sums = {key: sum(r[key] for r in result) for key in _COUNTS}
    result.append({"name": "total", "output_shape": tuple(model.output.shape[1:]), **sums})
    return result


def count_flops(model: keras.Model | str, input_shape: tuple[int, int, int] | None = None) -> int:
    """Multiply-accumulates of one forward pass for one image.

    Example:
        >>> count_flops("_tiny", input_shape=(16, 16, 3))
        579744
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


def published_params() -> dict[str, tuple[int, str]]:
    """Published trainable-parameter counts of the registry: name -> (count, source).

    Counts are for each record's default classes (1000 for ImageNet nets, 10 for
    CIFAR); the zoo reproduces every one exactly (tests/models/test_models.py).

    Example:
        >>> published_params()["resnet50"]
        (25557032, 'torchvision weight metadata')
    """
    from keras_resnet.models.registry import records

    return {r.name: (r.params, r.params_source) for r in records() if r.params is not None}


def zoo_table(
    names: list[str] | None = None, *, input_shape: tuple[int, int, int] | None = None
) -> list[dict[str, Any]]:
    """Parameters and MACs of zoo variants next to their published parameter counts.

    Args:
        names: Variant names from :func:`keras_resnet.list_models`; defaults to every
            variant with a published count (:func:`published_params`). Building the
            large ImageNet variants takes a few seconds each on a CPU.
        input_shape: Input to count MACs with; defaults to each record's
            ``input_shape`` (``(32, 32, 3)`` for CIFAR variants, ``(224, 224, 3)``).

    Returns:
        One dict per variant: ``name``, ``input_shape``, ``params`` (all weights,
        including BN moving statistics), ``trainable_params``, ``macs``,
        ``published_params`` and ``source`` (``None`` when no count is known) and
        ``matches`` (``trainable_params == published_params``, or ``None``).

    Example:
        >>> row = zoo_table(["resnet20"])[0]
        >>> row["trainable_params"], row["published_params"], row["matches"]
        (269722, 269722, True)
    """
    from keras_resnet.models.registry import get_record, list_models

    if names is None:
        names = list(published_params())
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"`names` must be a list of variant names. Received: names={names!r}")
    valid = set(list_models(include_private=True))
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(
            f"`names` contains unknown variants {unknown}; see keras_resnet.list_models(). "
            f"Received: names={list(names)!r}"
        )
    rows = []
    for name in names:
        record = get_record(name)
        shape = tuple(input_shape or record.input_shape)
        total = model_table(name, input_shape=shape)[-1]
        published = record.params
        rows.append(
            {
                "name": name,
                "input_shape": shape,
                **{key: total[key] for key in _COUNTS},
                "published_params": published,
                "source": record.params_source or None,
                "matches": None if published is None else total["trainable_params"] == published,
            }
        )
        keras.backend.clear_session()  # free the big graphs between variants
    return rows
