"""Per-trial budgets: skip networks over a MAC limit, stop training over a time limit."""

from __future__ import annotations

import time

import keras

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
