"""Gradient norms per layer: how the training signal reaches each depth (TensorFlow backend).

He et al. 2015/2016: in deep plain networks the gradient norms change strongly with
depth; in residual networks the identity path keeps them comparable.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_resnet.utils.checks import check_int


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
