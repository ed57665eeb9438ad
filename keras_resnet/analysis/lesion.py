"""Lesion studies: delete residual blocks at test time and measure accuracy.

Veit et al. 2016 ("Residual Networks Behave Like Ensembles of Relatively Shallow
Networks") delete single blocks of a trained ResNet at test time: accuracy degrades
smoothly, while removing a single layer of a plain (VGG-style) network destroys it.

What "deleting block ``b``" means here, for a block with input ``x``:

- residual block with an identity shortcut (kind ``"identity"``): the residual branch
  is removed, so the block outputs ``relu(x + 0) = x`` (post-activation; ``x`` is
  already non-negative) or ``x`` (pre-activation). Exactly the identity.
- residual block whose shortcut is not the identity: kind ``"downsampling"`` where the
  block changes the shape (a 1x1 projection, zero-padding or pooling shortcut), kind
  ``"projection"`` for the shape-preserving blocks of ``shortcut="projection_all"``.
  The branch is removed and the shortcut kept, so the block outputs
  ``relu(shortcut(x))``. The network keeps its shapes, but this is not a clean
  deletion (the shortcut itself is a learned or subsampling layer), so these blocks
  are only lesioned when asked for.
- plain block (no shortcut, kind ``"plain"``): nothing carries the signal past a
  removed branch, so the whole block is skipped (its output is replaced by its input),
  which is how Veit et al. remove layers from VGG. Only possible when the block keeps
  the shape of its input; strided plain blocks cannot be deleted.

The models are rebuilt from their functional graph with ``keras.models.clone_model``
(a ``call_function`` that bypasses the deleted pieces) and the trained weights are
copied layer by layer, so the original model is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_resnet.models.naming import ADD, BLOCK_PREFIX, MERGES, SHORTCUT, part
from keras_resnet.utils.checks import check_int

BLOCK_SELECTIONS = ("identity", "all")


def _check_model(model: Any) -> None:
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
        raise TypeError(
            "`model` must be a functional keras.Model built by keras_resnet. "
            f"Received: model={type(model).__name__}"
        )


def _blocks(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    blocks: dict[str, list[keras.layers.Layer]] = {}
    for layer in model.layers:
        match = BLOCK_PREFIX.match(layer.name)
        if match:
            blocks.setdefault(match.group(1), []).append(layer)
    return blocks


def _describe(prefix: str, layers: list[keras.layers.Layer]) -> dict[str, Any]:
    names = {layer.name for layer in layers}
    merge = next((part(prefix, m) for m in MERGES if part(prefix, m) in names), None)
    has_shortcut_layers = any(n.startswith(part(prefix, SHORTCUT) + "_") for n in names)
    input_shape = tuple(layers[0].input.shape[1:])
    output_shape = tuple(layers[-1].output.shape[1:])
    if merge is None:
        kind = "plain"
    elif not has_shortcut_layers:
        kind = "identity"
    elif input_shape != output_shape:
        kind = "downsampling"
    else:
        kind = "projection"  # shortcut="projection_all": a 1x1 conv on every block
    return {
        "block": prefix,
        "kind": kind,
        # a residual block is reduced to its shortcut; a plain block only if it keeps its shape
        "deletable": merge is not None or input_shape == output_shape,
        "input_shape": input_shape,
        "output_shape": output_shape,
        "_merge": merge,
        "_first": layers[0].name,
        "_last": layers[-1].name,
    }


def list_blocks(model: keras.Model) -> list[dict[str, Any]]:
    """The residual (or plain) blocks of a keras_resnet model, in depth order.

    Args:
        model: A functional model built by :func:`keras_resnet.create_model` or
            :func:`keras_resnet.ResNet` (blocks are recognized by their layer names
            ``stage{s}_block{b}_...``).

    Returns:
        One dict per block: ``block`` (name prefix), ``kind`` (``"identity"``,
        ``"downsampling"``, ``"projection"`` or ``"plain"``, see the module
        docstring), ``deletable`` (whether :func:`delete_blocks` can remove it),
        ``input_shape`` and ``output_shape``.

    Example:
        >>> from keras_resnet import create_model
        >>> blocks = list_blocks(create_model("resnet20", input_shape=(8, 8, 1)))
        >>> [b["kind"] for b in blocks[:4]]
        ['identity', 'identity', 'identity', 'downsampling']
    """
    _check_model(model)
    return [
        {k: v for k, v in _describe(p, layers).items() if not k.startswith("_")}
        for p, layers in _blocks(model).items()
    ]


def delete_blocks(model: keras.Model, blocks: Sequence[str]) -> keras.Model:
    """A copy of ``model`` with the given blocks deleted (the original is unchanged).

    See the module docstring for what deleting means per block kind (identity,
    projection, plain). Weights are copied, so the copy predicts exactly like the
    original apart from the deleted blocks.

    Args:
        model: A functional keras_resnet model.
        blocks: Block names as listed by :func:`list_blocks`, e.g.
            ``["stage1_block2"]``; an empty list gives an exact copy.

    Returns:
        A new functional model.

    Raises:
        ValueError: For an unknown block name or a block that cannot be deleted (a
            plain block that changes the shape).

    Example:
        >>> from keras_resnet import create_model
        >>> model = create_model("resnet20", input_shape=(8, 8, 1))
        >>> lesioned = delete_blocks(model, ["stage1_block2"])
        >>> len(lesioned.layers) < len(model.layers)
        True
    """
    _check_model(model)
    selected = _named_blocks(model, blocks)
    merges = {b["_merge"]: b["block"] for b in selected if b["_merge"]}
    firsts = {b["_first"]: b["block"] for b in selected if not b["_merge"]}
    lasts = {b["_last"]: b["block"] for b in selected if not b["_merge"]}
    block_inputs: dict[str, Any] = {}

    def call_function(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if layer.name in merges:
            # Add([shortcut, branch]) or HighwayGate([gate, branch, shortcut]): keep
            # only the shortcut, i.e. remove the residual branch.
            return args[0][0] if layer.name.endswith(f"_{ADD}") else args[0][2]
        if layer.name in firsts:
            block_inputs[firsts[layer.name]] = args[0]
        if layer.name in lasts:
            return block_inputs[lasts[layer.name]]
        return layer(*args, **kwargs)

    # Fresh layers (the default clone_function), so the original model's layers gain
    # no extra graph nodes; weights are copied below by layer name.
    clone = keras.models.clone_model(model, call_function=call_function)
    for layer in clone.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def _named_blocks(model: keras.Model, blocks: Any) -> list[dict[str, Any]]:
    """The described blocks named in ``blocks``, checked to exist and to be deletable."""
    if isinstance(blocks, str) or not isinstance(blocks, Sequence):
        raise TypeError(f"`blocks` must be a list of block names. Received: blocks={blocks!r}")
    described = {p: _describe(p, layers) for p, layers in _blocks(model).items()}
    unknown = [n for n in blocks if n not in described]
    if unknown:
        raise ValueError(
            f"`blocks` contains unknown block names {unknown}; valid names: "
            f"{', '.join(described)}. Received: blocks={list(blocks)!r}"
        )
    for name in blocks:
        if not described[name]["deletable"]:
            raise ValueError(
                f"Block {name!r} is a plain block that changes the shape "
                f"{described[name]['input_shape']} -> {described[name]['output_shape']}; "
                f"nothing can stand in for it. Received: blocks={list(blocks)!r}"
            )
    return [described[n] for n in blocks]


def _select(model: keras.Model, blocks: str | Sequence[str]) -> list[dict[str, Any]]:
    if not isinstance(blocks, str):
        return _named_blocks(model, blocks)
    if blocks not in BLOCK_SELECTIONS:
        raise ValueError(
            "`blocks` must be 'identity', 'all' or a list of block names. "
            f"Received: blocks={blocks!r}"
        )
    described = list_blocks(model)
    if blocks == "identity":
        return [b for b in described if b["deletable"] and b["kind"] in ("identity", "plain")]
    return [b for b in described if b["deletable"]]


def _as_labels(y: Any) -> np.ndarray:
    labels = np.asarray(y)
    return labels.argmax(-1) if labels.ndim > 1 else labels


def _accuracy(model: keras.Model, x: Any, y: Any, batch_size: int) -> float:
    if y is None:  # an iterable of (images, labels) batches, e.g. a tf.data.Dataset
        batches = ((xb, _as_labels(yb)) for xb, yb in x)
    else:
        x, labels = np.asarray(x), _as_labels(y)
        batches = (
            (x[i : i + batch_size], labels[i : i + batch_size])
            for i in range(0, len(x), batch_size)
        )
    correct = total = 0
    for xb, yb in batches:
        # Eager calls instead of model.predict: predict traces a new tf.function for every
        # lesioned copy, which is slower for these small evaluations and floods the log
        # with retracing warnings.
        predicted = np.argmax(np.asarray(model(xb, training=False)), axis=-1)
        correct += int((predicted == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def _check_inputs(model: Any, x: Any, y: Any, batch_size: int) -> None:
    _check_model(model)
    check_int("batch_size", batch_size, min_value=1)
    if y is not None and len(x) != len(y):
        raise ValueError(
            f"`x` and `y` must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
        )


def lesion_study(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    blocks: str | Sequence[str] = "identity",
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Delete each block on its own and measure test accuracy (Veit et al. 2016).

    Args:
        model: A trained functional keras_resnet classifier.
        x: Images (array), or an iterable of ``(images, labels)`` batches such as a
            ``tf.data.Dataset`` when ``y`` is ``None``.
        y: Integer labels or one-hot rows; ``None`` when ``x`` yields batches.
        blocks: ``"identity"`` (default): every block that can be replaced by the
            identity (identity-shortcut residual blocks, shape-preserving plain
            blocks); ``"all"``: also residual blocks whose shortcut is not the
            identity (their branch is removed, their shortcut kept); or a list of
            block names.
        batch_size: Prediction batch size for array inputs.

    Returns:
        One dict per deleted block, in depth order: ``block``, ``kind``,
        ``accuracy`` (with that block deleted), ``baseline`` (nothing deleted) and
        ``drop`` (``baseline - accuracy``).

    Example:
        >>> import numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("resnet20", input_shape=(8, 8, 1))
        >>> x = np.random.rand(16, 8, 8, 1).astype("float32")
        >>> y = np.arange(16) % 10
        >>> rows = lesion_study(model, x, y)
        >>> len(rows), rows[0]["block"]
        (7, 'stage1_block1')
    """
    _check_inputs(model, x, y, batch_size)
    selected = _select(model, blocks)
    baseline = _accuracy(model, x, y, batch_size)
    rows = []
    for b in selected:
        acc = _accuracy(delete_blocks(model, [b["block"]]), x, y, batch_size)
        rows.append(
            {
                "block": b["block"],
                "kind": b["kind"],
                "accuracy": acc,
                "baseline": baseline,
                "drop": baseline - acc,
            }
        )
    return rows


def lesion_curve(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    num_deleted: Sequence[int] = (0, 1, 2, 4),
    trials: int = 3,
    blocks: str | Sequence[str] = "identity",
    seed: int = 0,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Accuracy after deleting ``k`` randomly chosen blocks at once (Veit et al. Fig. 5).

    Args:
        model: A trained functional keras_resnet classifier.
        x: Images, or an iterable of ``(images, labels)`` batches when ``y`` is None.
        y: Labels, or ``None``.
        num_deleted: The numbers of blocks ``k`` to delete together.
        trials: Random subsets evaluated per ``k`` (one for ``k = 0``).
        blocks: The candidate blocks, as in :func:`lesion_study`.
        seed: Seed of the subset sampling.
        batch_size: Prediction batch size for array inputs.

    Returns:
        One dict per ``k``: ``deleted`` (k), ``accuracy`` (mean over trials),
        ``accuracy_std`` and ``accuracies`` (all trials).

    Example:
        >>> import numpy as np
        >>> from keras_resnet import create_model
        >>> model = create_model("resnet20", input_shape=(8, 8, 1))
        >>> x, y = np.random.rand(8, 8, 8, 1).astype("float32"), np.arange(8)
        >>> [r["deleted"] for r in lesion_curve(model, x, y, num_deleted=(0, 2), trials=1)]
        [0, 2]
    """
    _check_inputs(model, x, y, batch_size)
    check_int("trials", trials, min_value=1)
    candidates = [b["block"] for b in _select(model, blocks)]
    counts = list(num_deleted)
    for k in counts:  # at most the number of candidate blocks
        check_int("num_deleted", k, min_value=0, max_value=len(candidates))
    rng = np.random.default_rng(seed)
    rows = []
    for k in counts:
        accs = []
        for _ in range(1 if k == 0 else trials):
            chosen = sorted(rng.choice(len(candidates), size=k, replace=False).tolist())
            lesioned = model if k == 0 else delete_blocks(model, [candidates[i] for i in chosen])
            accs.append(_accuracy(lesioned, x, y, batch_size))
        rows.append(
            {
                "deleted": k,
                "accuracy": float(np.mean(accs)),
                "accuracy_std": float(np.std(accs)),
                "accuracies": accs,
            }
        )
    return rows
