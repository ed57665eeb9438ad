"""Fit and evaluate with ``model.fit`` or, under multi-worker strategies, the custom loop.

Keras 3 ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),
so there :func:`~keras_resnet.training.distributed_loop.fit_distributed` runs instead.
Callers see one function either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keras


def fit_model(
    model: keras.Model,
    train_data: Any,
    *,
    epochs: int,
    validation_data: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: Any = None,
    multi_worker: bool = False,
    verbose: int | str = "auto",
) -> tuple[list[dict[str, float]], float]:
    """Train a compiled model; the per-epoch logs of this call and the seconds it took.

    Args:
        model: A compiled model (built in ``strategy``'s scope).
        train_data: The training ``tf.data.Dataset`` (it shuffles itself).
        epochs: The last epoch (a restored backup starts after its epoch).
        validation_data: Optional validation dataset.
        callbacks: Callbacks; ``BackupAndRestore`` is dropped in the custom loop.
        strategy: The ``tf.distribute`` strategy (custom loop only).
        multi_worker: Use the custom loop (``MultiWorkerMirroredStrategy``).
        verbose: ``model.fit`` verbosity; the custom loop prints one line per epoch
            unless ``verbose=0``.

    Returns:
        ``(history, seconds)``: one dict of logs per epoch run in this call.

    Example:
        >>> import numpy as np
        >>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> net.compile("sgd", "mse")
        >>> history, seconds = fit_model(net, (np.ones((4, 2)), np.ones(4)), epochs=2, verbose=0)
        >>> len(history), sorted(history[0])
        (2, ['loss'])
    """
    start = time.perf_counter()
    if multi_worker:
        from keras_resnet.training.distributed_loop import fit_distributed

        # No backup: BackupAndRestore needs model.fit internals.
        kept = [c for c in callbacks if not isinstance(c, keras.callbacks.BackupAndRestore)]
        history = fit_distributed(
            model,
            train_data,
            epochs=epochs,
            strategy=strategy,
            validation_data=validation_data,
            callbacks=kept,
            jit_compile=bool(model.jit_compile),
            verbose=0 if verbose == 0 else 1,
        )
        history = [{k: v for k, v in h.items() if k != "epoch"} for h in history]
    else:
        args = train_data if isinstance(train_data, tuple) else (train_data,)  # (x, y) arrays
        logs = model.fit(
            *args,
            validation_data=validation_data,
            epochs=epochs,
            callbacks=list(callbacks),
            verbose=verbose,
            shuffle=False,  # the train pipeline shuffles itself
        ).history
        runs = len(logs.get("loss", []))
        history = [{k: float(v[i]) for k, v in logs.items()} for i in range(runs)]
    return history, time.perf_counter() - start


def evaluate_model(
    model: keras.Model, data: Any, *, strategy: Any = None, multi_worker: bool = False
) -> dict[str, float]:
    """``loss`` and metrics of a compiled model on ``data``, with the matching loop.

    Example:
        >>> import numpy as np
        >>> dense = keras.layers.Dense(1, kernel_initializer="ones")
        >>> net = keras.Sequential([keras.Input((2,)), dense])
        >>> net.compile("sgd", "mse")
        >>> evaluate_model(net, (np.ones((4, 2)), np.full(4, 3.0)))
        {'loss': 1.0}
    """
    if multi_worker:
        from keras_resnet.training.distributed_loop import evaluate_distributed

        return evaluate_distributed(model, data, strategy=strategy)
    args = data if isinstance(data, tuple) else (data,)
    scores = model.evaluate(*args, verbose=0, return_dict=True)
    return {k: float(v) for k, v in scores.items()}
