"""Model analysis: parameter and FLOP (multiply-add) tables per stage.

FLOPs are counted as multiply-accumulates (MACs) of convolutions and dense layers,
the convention of torchvision's metadata and the ResNet papers (ResNet-50 at 224 px:
~4.1 G MACs); normalization, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet.checks import check_int
from keras_resnet.naming import HEAD, STAGE, STEM


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
    model: keras.Model | str,
    input_shape: tuple[int, int, int] | None = None,
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
        from keras_resnet.registry import create_model, get_record

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
    sums = {key: sum(r[key] for r in result) for key in ("params", "trainable_params", "macs")}
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
    CIFAR); the zoo reproduces every one exactly (tests/test_models.py).

    Example:
        >>> published_params()["resnet50"]
        (25557032, 'torchvision weight metadata')
    """
    from keras_resnet.registry import records

    return {r.name: (r.params, r.params_source) for r in records() if r.params is not None}


def __getattr__(name: str) -> Any:
    if name == "PUBLISHED_PARAMS":  # the earlier constant, now read from the registry
        return published_params()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def zoo_table(
    names: list[str] | None = None,
    *,
    input_shape: tuple[int, int, int] | None = None,
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
    from keras_resnet.registry import get_record, list_models

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
        published, source = record.params, record.params_source or None
        rows.append(
            {
                "name": name,
                "input_shape": shape,
                "params": total["params"],
                "trainable_params": total["trainable_params"],
                "macs": total["macs"],
                "published_params": published,
                "source": source,
                "matches": None if published is None else total["trainable_params"] == published,
            }
        )
        keras.backend.clear_session()  # free the big graphs between variants
    return rows


def gradient_norms(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    loss: keras.losses.Loss | None = None,
    training: bool = True,
) -> list[dict[str, Any]]:
    """L2 norm of the loss gradient for every kernel, in forward (depth) order.

    Shows how the training signal reaches each layer: in deep plain networks the
    gradient norms change strongly with depth, in residual networks the identity
    path keeps them comparable (He et al. 2015/2016). The model's state (BN moving
    statistics, dropout seeds) is restored afterwards, so measuring does not train.
    Needs the TensorFlow backend (Keras 3 has no backend-neutral gradient API).

    Args:
        model: A Keras model (any model; layers with a ``kernel`` are reported).
        x: One batch of inputs.
        y: Integer labels (sparse cross-entropy) or one-hot rows (cross-entropy).
        loss: A Keras loss to use instead; it must match the model's output (the
            default cross-entropies expect probabilities, i.e. a softmax head).
        training: Run BN and dropout in training mode, as during ``fit``.

    Returns:
        One dict per layer with a kernel: ``depth`` (1-based position), ``layer``,
        ``grad_norm``, ``weight_norm`` and ``ratio`` (grad / weight norm).

    Example:
        >>> import numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(8, 8, 1))
        >>> x, y = np.random.rand(4, 8, 8, 1).astype("float32"), np.arange(4)
        >>> rows = gradient_norms(model, x, y)
        >>> rows[0]["layer"], rows[0]["grad_norm"] > 0
        ('stem_conv', True)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "gradient_norms needs the TensorFlow backend. "
            f"Received: keras.backend.backend()={keras.backend.backend()!r}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"`x` and `y` must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    import tensorflow as tf

    labels = np.asarray(y)
    if loss is None:
        loss = (
            keras.losses.CategoricalCrossentropy()
            if labels.ndim > 1
            else keras.losses.SparseCategoricalCrossentropy()
        )
    weighted = [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]
    kernels = [layer.kernel for layer in weighted]
    state = [v.numpy() for v in model.non_trainable_variables]
    try:
        with tf.GradientTape() as tape:
            value = loss(labels, model(np.asarray(x), training=training))
        grads = tape.gradient(value, kernels)
    finally:  # measuring must not train: restore BN moving statistics and seeds
        for var, saved in zip(model.non_trainable_variables, state, strict=True):
            var.assign(saved)
    rows = []
    for depth, (layer, kernel, grad) in enumerate(zip(weighted, kernels, grads, strict=True), 1):
        g = 0.0 if grad is None else float(tf.norm(tf.cast(grad, "float32")))
        w = float(np.linalg.norm(np.asarray(kernel, dtype="float32")))
        ratio = g / w if w else float("nan")
        rows.append(dict(depth=depth, layer=layer.name, grad_norm=g, weight_norm=w, ratio=ratio))
    return rows


class GradientNormHistory(keras.callbacks.Callback):
    """Record :func:`gradient_norms` on a fixed batch before and during ``fit``.

    Args:
        x: A fixed batch of inputs (keep it small: one extra forward and backward
            pass per recording).
        y: Its labels.
        every: Record after every ``every`` epochs (and once before training).
        loss: Passed to :func:`gradient_norms`.

    Attributes:
        history: Rows of :func:`gradient_norms`, each with an ``epoch`` key (0 is
            before training).

    Example:
        >>> import numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(8, 8, 1))
        >>> model.compile("sgd", "sparse_categorical_crossentropy")
        >>> x, y = np.random.rand(8, 8, 8, 1).astype("float32"), np.arange(8)
        >>> cb = GradientNormHistory(x, y)
        >>> _ = model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
        >>> sorted({r["epoch"] for r in cb.history})
        [0, 1]
    """

    def __init__(
        self, x: Any, y: Any, *, every: int = 1, loss: keras.losses.Loss | None = None
    ) -> None:
        super().__init__()
        self.every = check_int("every", every, min_value=1)
        self.x, self.y, self.loss = x, y, loss
        self.history: list[dict[str, Any]] = []

    def _record(self, epoch: int) -> None:
        rows = gradient_norms(self.model, self.x, self.y, loss=self.loss)
        self.history.extend({"epoch": epoch, **row} for row in rows)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._record(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            self._record(epoch + 1)
