"""A custom training loop for ``tf.distribute`` strategies where ``model.fit`` fails.

Keras 3 ``model.fit`` does not run under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585, open; tensorflow/tensorflow#72388: "PerReplica" conversion
error in the symbolic build and in the log reduction). Keras offers no other
multi-worker training entry point, so this module writes the loop by hand with the
TensorFlow primitives made for it: ``experimental_distribute_dataset``,
``strategy.run`` of a ``tf.function`` step, ``GradientTape``, the Keras optimizer's
own all-reduce of the gradients, and ``strategy.reduce`` of the epoch sums.

It reproduces what ``fit`` computes: the loss is the mean over the *global* batch
(each replica divides its per-example sum by the all-reduced global example count,
and the optimizer sums the replica gradients), ``loss``/``accuracy`` in the logs are
per-example means over the epoch, and ``learning_rate`` is added by the standard
:class:`~keras_resnet.training.callbacks.LearningRateLogger` callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_resnet.training.distribute import tf_config
from keras_resnet.utils.checks import check_int

# Callbacks that depend on ``model.fit`` internals and cannot run in this loop.
UNSUPPORTED_CALLBACKS: tuple[str, ...] = ("BackupAndRestore",)


def is_chief() -> bool:
    """Whether this process is the chief (writes the run files) of a ``TF_CONFIG`` cluster.

    The chief is task ``chief`` if the cluster has one, else ``worker`` 0; without
    ``TF_CONFIG`` the process is its own chief.

    Example:
        >>> import json, os
        >>> cluster = {"worker": ["a:1", "b:2"]}
        >>> os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"index": 1}})
        >>> is_chief()
        False
        >>> del os.environ["TF_CONFIG"]
        >>> is_chief()
        True
    """
    config = tf_config()
    task = config.get("task", {})
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and not config.get("cluster", {}).get("chief")


def _per_example_loss(loss: Any) -> Any:
    """The unreduced (one value per example) form of a compiled loss."""
    loss = keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss
    return loss.call if isinstance(loss, keras.losses.Loss) else loss


def check_callbacks(callbacks: Sequence[keras.callbacks.Callback]) -> None:
    """Refuse callbacks that need ``model.fit`` (the custom loop cannot run them).

    Example:
        >>> check_callbacks([keras.callbacks.History()])  # supported: no error
        >>> check_callbacks([keras.callbacks.BackupAndRestore("backup")])
        Traceback (most recent call last):
        ValueError: BackupAndRestore needs keras `model.fit` and is not supported ...
    """
    for cb in callbacks:
        if type(cb).__name__ in UNSUPPORTED_CALLBACKS:
            raise ValueError(
                f"{type(cb).__name__} needs keras `model.fit` and is not supported by the "
                f"custom (multi-worker) training loop. Received: callbacks=[..., {cb!r}, ...]"
            )


def _summed(strategy: Any, replica_fn: Any, jit_compile: bool | None) -> Any:
    """A ``tf.function`` running ``replica_fn`` on each replica and summing its outputs."""
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def step(batch):
        out = strategy.run(replica_fn, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in out]

    return step


def _scorer(model: keras.Model, data: Any) -> Any:
    """``fn(y, y_pred) -> (per-example losses, hits)`` for the labels of ``data``."""
    import tensorflow as tf

    per_example_loss, one_hot = _per_example_loss(model.loss), len(data.element_spec[1].shape) == 2

    def per_example(y, y_pred):
        losses = per_example_loss(y, tf.cast(y_pred, "float32"))
        hits = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        truth = tf.argmax(y, axis=-1, output_type=tf.int32) if one_hot else tf.cast(y, tf.int32)
        truth = tf.reshape(truth, tf.shape(hits))
        return tf.reshape(losses, [-1]), tf.cast(tf.equal(hits, truth), "float32")

    return per_example


def _eval_step(model: keras.Model, data: Any, strategy: Any, jit_compile: bool | None) -> Any:
    """The distributed eval step: the summed loss, hits and example count of a batch."""
    import tensorflow as tf

    per_example = _scorer(model, data)

    def replica_eval(x, y):
        losses, hits = per_example(y, model(x, training=False))
        return tf.reduce_sum(losses), tf.reduce_sum(hits), tf.cast(tf.shape(x)[0], "float32")

    return _summed(strategy, replica_eval, jit_compile)


def _make_steps(model: keras.Model, strategy: Any, data: Any, jit_compile: bool) -> tuple:
    """The distributed train and eval steps (each returning the summed loss, hits and
    example count) and the step that averages the replicas' float non-trainable
    variables (``None`` when there is nothing to average)."""
    import tensorflow as tf

    optimizer, per_example = model.optimizer, _scorer(model, data)
    with strategy.scope():
        # Build the optimizer variables here: inside strategy.run they would be
        # created in a replica context, which tf.distribute forbids.
        optimizer.build(model.trainable_variables)

    def replica_train(x, y):
        ctx = tf.distribute.get_replica_context()
        count = tf.cast(tf.shape(x)[0], "float32")
        global_count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            losses, hits = per_example(y, y_pred)
            # Mean over the global batch once the optimizer sums the replica gradients.
            loss = tf.reduce_sum(losses) / tf.maximum(global_count, 1.0)
            if model.losses:
                loss += tf.add_n(model.losses) / ctx.num_replicas_in_sync
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.reduce_sum(losses), tf.reduce_sum(hits), count

    train_step = _summed(strategy, replica_train, jit_compile)
    eval_step = _eval_step(model, data, strategy, jit_compile)
    # Keras 3 creates BatchNormalization moving statistics with aggregation="none", so
    # each replica updates its own copy from its own shard; average the float
    # non-trainable variables across replicas once per epoch (what the MEAN
    # aggregation of tf.keras 2 did at each step) so every worker holds the same model.
    floats = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]

    def replica_sync():
        ctx = tf.distribute.get_replica_context()
        means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in floats])
        for v, mean in zip(floats, means, strict=True):
            v.assign(mean)

    if not floats or strategy.num_replicas_in_sync <= 1:
        return train_step, eval_step, None
    return train_step, eval_step, tf.function(lambda: strategy.run(replica_sync))


def _means(totals: list[float]) -> dict[str, float]:
    """Per-example ``loss`` and ``accuracy`` from summed (loss, hits, examples)."""
    seen = max(totals[2], 1.0)
    return {"loss": totals[0] / seen, "accuracy": totals[1] / seen}


def _epoch(steps: tuple, dist_train: Any, dist_val: Any, cb_list: Any) -> dict[str, float]:
    """One epoch: the training pass (with the batch callbacks), the replica sync and
    the validation; the epoch's logs."""
    train_step, eval_step, sync_step = steps
    totals = [0.0, 0.0, 0.0]
    for step, batch in enumerate(dist_train):
        cb_list.on_train_batch_begin(step)
        values = [float(v) for v in train_step(batch)]
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        cb_list.on_train_batch_end(step, {"loss": values[0] / max(values[2], 1.0)})
    logs = _means(totals)
    if sync_step is not None:
        sync_step()
    if dist_val is not None:
        logs.update({f"val_{k}": v for k, v in _evaluate(eval_step, dist_val).items()})
    return logs


def fit_distributed(
    model: keras.Model,
    train_data: Any,
    *,
    epochs: int,
    strategy: Any = None,
    validation_data: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    jit_compile: bool = False,
    verbose: int = 1,
) -> list[dict[str, float]]:
    """Train a compiled model with a custom loop that works under any ``tf.distribute`` strategy.

    Args:
        model: A model compiled (optimizer and loss) in ``strategy.scope()``; the
            metrics are computed here as top-1 ``accuracy`` for sparse or one-hot labels.
        train_data: A ``tf.data.Dataset`` of ``(images, labels)`` batched with the
            global batch size.
        epochs: Number of epochs (> 0).
        strategy: The strategy the model was built in; ``None`` for the current one.
        validation_data: Optional dataset for ``val_loss`` / ``val_accuracy``.
        callbacks: Callbacks that use only the epoch/batch hooks and the logs
            (``CSVLogger``, ``ModelCheckpoint``, ``TensorBoard`` epoch logs,
            ``EarlyStopping``, :class:`LearningRateLogger`, :class:`StopOnNaN`); batch
            logs carry ``loss`` only. ``BackupAndRestore`` needs ``fit``: refused.
        jit_compile: Compile the step with XLA.
        verbose: Print one line per epoch (chief only) when > 0.

    Returns:
        One dict per epoch: ``epoch``, ``loss``, ``accuracy``, ``val_*`` and what the
        callbacks add to the logs (e.g. ``learning_rate``).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> model.compile(optimizer="sgd",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> data = tf.data.Dataset.from_tensor_slices(
        ...     (np.ones((8, 3), "float32"), np.zeros(8, "int32"))).batch(4)
        >>> history = fit_distributed(model, data, epochs=2, verbose=0)
        >>> [sorted(h) for h in history][0]
        ['accuracy', 'epoch', 'loss']
    """
    import tensorflow as tf

    check_int("epochs", epochs, min_value=1)
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ValueError(
            "`model` must be compiled with an optimizer and a loss. Received: an uncompiled model"
        )
    callbacks = list(callbacks)  # checked, then run: a generator must not be used up
    check_callbacks(callbacks)
    strategy = strategy or tf.distribute.get_strategy()
    steps = _make_steps(model, strategy, train_data, jit_compile)
    distribute = strategy.experimental_distribute_dataset
    dist_train = distribute(train_data)
    dist_val = distribute(validation_data) if validation_data is not None else None
    # Last, so that it records what the other callbacks added (e.g. learning_rate).
    recorder = keras.callbacks.History()
    cb_list = keras.callbacks.CallbackList([*callbacks, recorder], model=model, epochs=epochs)
    model.stop_training = False
    cb_list.on_train_begin()
    for epoch in range(epochs):
        cb_list.on_epoch_begin(epoch)
        logs = _epoch(steps, dist_train, dist_val, cb_list)
        cb_list.on_epoch_end(epoch, logs)
        if verbose and is_chief():
            shown = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} {shown}")
        if model.stop_training:
            break
    cb_list.on_train_end(logs)
    return [
        {"epoch": float(epoch), **{k: float(v[i]) for k, v in recorder.history.items()}}
        for i, epoch in enumerate(recorder.epoch)
    ]


def _evaluate(eval_step: Any, dist_data: Any) -> dict[str, float]:
    totals = [0.0, 0.0, 0.0]
    for batch in dist_data:
        totals = [t + float(v) for t, v in zip(totals, eval_step(batch), strict=True)]
    return _means(totals)


def evaluate_distributed(
    model: keras.Model, data: Any, *, strategy: Any = None
) -> dict[str, float]:
    """Loss and top-1 accuracy of a compiled model on ``data``, under any strategy.

    The evaluation counterpart of :func:`fit_distributed` (``model.evaluate`` fails
    under ``MultiWorkerMirroredStrategy`` for the same reason as ``fit``).

    Args:
        model: A model compiled with a loss.
        data: A batched ``tf.data.Dataset`` of ``(images, labels)``.
        strategy: The strategy the model was built in; ``None`` for the current one.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (per-example means).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> data = tf.data.Dataset.from_tensor_slices(
        ...     (np.ones((4, 3), "float32"), np.zeros(4, "int32"))).batch(2)
        >>> sorted(evaluate_distributed(model, data))
        ['accuracy', 'loss']
    """
    import tensorflow as tf

    if getattr(model, "loss", None) is None:
        raise ValueError("`model` must be compiled with a loss. Received: an uncompiled model")
    strategy = strategy or tf.distribute.get_strategy()
    eval_step = _eval_step(model, data, strategy, jit_compile=None)  # tf.function's default
    return _evaluate(eval_step, strategy.experimental_distribute_dataset(data))
