"""What one trial needs besides its model: data pipelines at its batch size, a time budget."""

from __future__ import annotations

import math
import time
from typing import Any

import keras

from keras_resnet.training import TrainConfig, make_callbacks

# Start of the FailedTrialError message of a trial skipped for its MACs; the results
# table reports such trials as SKIPPED.
SKIPPED = "over the MAC budget"


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``seconds`` have passed (checked after every batch).

    Keras has no time-limit callback. The epoch in progress ends early; its
    validation still runs, so the trial is scored on what it learned.

    Args:
        seconds: The limit; ``None`` disables it.

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> budget = TimeBudget(0.0)
        >>> history = model.fit(np.zeros((64, 2)), np.zeros(64), batch_size=8, epochs=3,
        ...                     callbacks=[budget], verbose=0)
        >>> budget.stopped, len(history.epoch)
        (True, 1)
    """

    def __init__(self, seconds: float | None) -> None:
        super().__init__()
        self.seconds = seconds
        self.stopped = False
        self._start = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.seconds is not None and time.perf_counter() - self._start >= self.seconds:
            self.stopped = True
            self.model.stop_training = True


def trial_data(
    x: Any,
    y: Any,
    validation_data: Any,
    config: TrainConfig,
    classes: int,
    *,
    searched: set[str] = frozenset(),
) -> tuple[Any, Any, int, bool]:
    """Training and validation pipelines of a trial, its steps per epoch and label kind.

    ``x`` is arrays (with labels ``y``), a batched ``tf.data.Dataset`` (re-batched to
    ``config.batch_size`` when ``"batch_size"`` is in ``searched``) or a callable
    ``data(batch_size=, augment=, one_hot=)`` returning ``Datasets`` or
    ``(train, validation)``; only a callable applies ``config.augment``. Labels
    become one-hot for label smoothing (softmax heads, ``classes`` > 2).

    Returns:
        ``(train, validation, steps_per_epoch, one_hot)``.

    Example:
        >>> import numpy as np
        >>> cfg = TrainConfig(batch_size=4, label_smoothing=0.1)
        >>> train, val, steps, one_hot = trial_data(
        ...     np.zeros((10, 8, 8, 1)), np.arange(10) % 3, None, cfg, 3)
        >>> steps, one_hot, tuple(train.element_spec[1].shape)
        (3, True, (None, 3))
    """
    import tensorflow as tf

    steps, smoothing = None, classes > 2 and config.label_smoothing > 0
    if callable(x) and not isinstance(x, tf.data.Dataset):
        data = x(batch_size=config.batch_size, augment=config.augment, one_hot=smoothing)
        x, info = data[0], getattr(data, "info", None)
        validation_data = data[1] if validation_data is None else validation_data
        if info is not None and int(x.cardinality()) < 1:  # e.g. filtered pipelines
            steps = math.ceil(info.num_examples["train"] / config.batch_size)
    elif "augment" in searched:
        import keras_tuner as kt

        raise kt.errors.FatalValueError(
            "The `augment` hyperparameter needs a data callable "
            "`data(batch_size=..., augment=..., one_hot=...)` as the training data. "
            f"Received: x of type {type(x).__name__}; fix or drop it with "
            "search_space={'augment': None}"
        )
    elif not isinstance(x, tf.data.Dataset):  # arrays
        x = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(config.batch_size)
    elif "batch_size" in searched:
        # Re-batching hides the cardinality: size the schedule from one batch.
        batches = int(x.cardinality())
        first = int(tf.shape(tf.nest.flatten(next(iter(x.take(1))))[0])[0])
        x = x.rebatch(config.batch_size)
        steps = math.ceil(batches * first / config.batch_size) if batches > 0 else None
    if isinstance(validation_data, tuple):
        validation_data = tf.data.Dataset.from_tensor_slices(validation_data)
        validation_data = validation_data.batch(config.batch_size)
    x = _one_hot(x, classes if smoothing else 0)
    one_hot = x.element_spec[1].shape.rank == 2
    validation_data = _one_hot(validation_data, classes if one_hot else 0)
    return x, validation_data, max(1, steps or int(x.cardinality())), one_hot


def trial_callbacks(config: TrainConfig, train: Any, validation: Any) -> list[Any]:
    """The standard callbacks of a trial (as ``train()`` adds them, without a run folder).

    The monitored metric drops its ``val_`` prefix without validation data; with
    ``config.use_ema`` the averaged weights are kept only where they score better on
    ``validation`` (else on the first training batches).

    Example:
        >>> import tensorflow as tf
        >>> data = tf.data.Dataset.from_tensor_slices(([[0.0]], [0])).batch(1)
        >>> cbs = trial_callbacks(TrainConfig(use_ema=True), data, None)
        >>> type(cbs[-1]).__name__, cbs[-1].selection_split
        ('ModelEMA', 'train')
    """
    from types import SimpleNamespace

    from keras_resnet.training.ema import selection_data

    check = selection_data(SimpleNamespace(train=train, validation=validation))
    return make_callbacks(config, None, monitor=config.monitor_for(validation), ema_check=check)


def _one_hot(data: Any, classes: int) -> Any:
    import tensorflow as tf

    if not classes or data is None or data.element_spec[1].shape.rank != 1:
        return data
    return data.map(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), classes)))
