"""Callbacks for a training run, and the training-curves plot."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from typing import Any

import keras

from keras_resnet.data import set_train_epoch
from keras_resnet.training.backup import BackupAndRestore
from keras_resnet.training.config import TrainConfig
from keras_resnet.training.ema import ModelEMA
from keras_resnet.utils.atomic import write_text_atomic


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    Example:
        >>> issubclass(NonFiniteLossError, FloatingPointError)
        True
    """


class TrainEpochs(keras.callbacks.Callback):
    """Give each epoch's pass over a ``train`` pipeline the data of that epoch.

    At each epoch's start it calls :func:`keras_resnet.data.set_train_epoch`, so a
    resumed run sees in epoch k the order and augmentation an uninterrupted run saw,
    whatever extra passes ``fit`` makes (it may read a batch to build the model).

    Args:
        train: The ``train`` pipeline; one without an epoch counter is left alone.

    Example:
        >>> from keras_resnet.data import get_datasets
        >>> train = get_datasets("digits", batch_size=64, seed=0).train
        >>> first = next(iter(train))[1].numpy()  # epoch 0
        >>> TrainEpochs(train).on_epoch_begin(0)
        >>> bool((next(iter(train))[1].numpy() == first).all())
        True
    """

    def __init__(self, train: Any) -> None:
        super().__init__()
        self.train = train

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        set_train_epoch(self.train, epoch)


class LearningRateLogger(keras.callbacks.Callback):
    """Add the optimizer's current learning rate to the epoch logs as ``learning_rate``.

    Keras' TensorBoard callback logs it only to TensorBoard; this puts it in the
    history and ``history.csv`` too. Place it before ``CSVLogger``.

    Example:
        >>> LearningRateLogger().__class__.__name__
        'LearningRateLogger'
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class StopOnNaN(keras.callbacks.Callback):
    """Stop at once, with the epoch and step, when the loss is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` (which lets the epoch end, so the
    backup and checkpoint callbacks would save the broken weights), this raises
    :class:`NonFiniteLossError` from the batch, so nothing already saved is replaced.

    Example:
        >>> StopOnNaN().__class__.__name__
        'StopOnNaN'
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"Training loss became {float(loss)} at epoch {self._epoch + 1}, step "
                f"{batch + 1}; training stopped. Saved files (backup, best checkpoint) "
                "hold the last good state: lower the learning rate or check the data."
            )


class HistoryCSV(keras.callbacks.CSVLogger):
    """``CSVLogger`` whose columns are the keys of the first epoch's logs, one row per epoch.

    Keras' ``CSVLogger`` adds a ``val_*`` column for every metric when the first
    epoch has no validation results (for ``validation_freq > 1``), so a run without
    a validation split got all-``NA`` ``val_*`` columns; runs here validate every
    epoch or never. Appending, the rows of the epochs that are trained again (a kill
    came after their row but before their backup) are dropped when the first epoch
    begins, so the file keeps one row per epoch, in order.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
        >>> log = HistoryCSV(path)
        >>> log.on_train_begin()
        >>> log.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75})
        >>> log.on_train_end()
        >>> open(path).read().splitlines()
        ['epoch,accuracy,loss', '0,0.75,0.5']
    """

    _trim = False  # set when appending: drop rows of epochs trained again

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self._trim = self.append

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._trim:
            return
        self._trim = False
        with open(self.filename, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        kept = [line for line in lines if _row_epoch(line, self.sep) < epoch]
        if len(kept) < len(lines):  # a rerun epoch: the file is rewritten without its row
            self.csv_file.close()
            write_text_atomic(self.filename, "".join(kept))
            self.csv_file = open(self.filename, "a", newline="", encoding="utf-8")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.keys is None:
            self.keys = sorted(logs or {})
        super().on_epoch_end(epoch, logs)


def _row_epoch(line: str, sep: str) -> float:
    """The epoch of a ``history.csv`` row; -inf for a header or anything else."""
    try:
        return int(line.split(sep, 1)[0])
    except ValueError:
        return -math.inf


def make_callbacks(
    config: TrainConfig,
    output_dir: str | os.PathLike | None = None,
    *,
    monitor: str | None = None,
    initial_best: float | None = None,
    backup_fallback: tuple[str, int] | None = None,
    backup_restart: Callable[[keras.Model], None] | None = None,
    ema_check: tuple[Any, str] | None = None,
    ema_evaluate: Callable[[keras.Model, Any], dict[str, float]] | None = None,
) -> list[keras.callbacks.Callback]:
    """The standard callbacks of a run.

    Always: :class:`LearningRateLogger`, :class:`StopOnNaN`, early stopping with best
    weights restored (when ``config.early_stopping_patience > 0``). With
    ``output_dir``: :class:`HistoryCSV` (``history.csv``, appending on resume),
    ``ModelCheckpoint`` (``best.keras``, raw weights), the crash-safe
    :class:`~keras_resnet.training.backup.BackupAndRestore` (``backup/``, kept after
    ``fit``: the run removes it once ``model.keras`` is saved) and ``TensorBoard``
    (``tensorboard/``). Last, with ``config.use_ema``:
    :class:`~keras_resnet.training.ema.ModelEMA` (its average saved as
    ``backup/ema.npz`` for resuming).

    Args:
        config: The training configuration.
        output_dir: Run folder; ``None`` for no files.
        monitor: Metric to monitor; defaults to ``config.monitor``.
        initial_best: Best monitored value of earlier (resumed) epochs, so that
            ``best.keras`` is only replaced by a better model.
        backup_fallback: ``(checkpoint, epochs_done)`` to resume from when the backup
            is damaged beyond its previous state.
        backup_restart: Called with the model when a damaged backup and no fallback
            make training start again from epoch 1 (see ``BackupAndRestore``).
        ema_check: ``(data, split name)`` on which ``ModelEMA`` compares the raw and
            averaged weights at the end (see
            :func:`~keras_resnet.training.ema.selection_data`); ``None``: keep raw.
        ema_evaluate: Evaluation function for that check (default ``model.evaluate``).

    Returns:
        A list of callbacks for ``model.fit``.

    Example:
        >>> [type(c).__name__ for c in make_callbacks(TrainConfig())]
        ['LearningRateLogger', 'StopOnNaN']
    """
    monitor = monitor or config.monitor
    mode = "min" if monitor.endswith("loss") else "max"
    callbacks: list[keras.callbacks.Callback] = [LearningRateLogger(), StopOnNaN()]
    if config.early_stopping_patience:
        patience = config.early_stopping_patience
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor, patience=patience, mode=mode, restore_best_weights=True, verbose=1
            )
        )
    out = os.fspath(output_dir) if output_dir is not None else None
    if out is not None:
        best = os.path.join(out, "best.keras")
        # CSV before the backup: after a kill between the two the epoch is trained again
        # and HistoryCSV drops its first row, instead of a row going missing.
        callbacks += [
            HistoryCSV(os.path.join(out, "history.csv"), append=True),
            keras.callbacks.ModelCheckpoint(
                best, monitor, mode=mode, save_best_only=True, initial_value_threshold=initial_best
            ),
            BackupAndRestore(
                os.path.join(out, "backup"),
                fallback=backup_fallback,
                delete_checkpoint=False,
                restart=backup_restart,
            ),
        ]
        if config.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "tensorboard")))
    if config.use_ema:
        # Last: its on_train_begin sees the weights BackupAndRestore restored, and its
        # on_train_end the best weights EarlyStopping put back.
        callbacks.append(_model_ema(config, out, monitor, ema_check, ema_evaluate))
    return callbacks


def _model_ema(
    config: TrainConfig,
    out: str | None,
    monitor: str,
    ema_check: tuple[Any, str] | None,
    ema_evaluate: Callable[[keras.Model, Any], dict[str, float]] | None,
) -> ModelEMA:
    data, split = ema_check if ema_check is not None else (None, "validation")
    return ModelEMA(
        config.ema_momentum,
        selection_data=data,
        selection_split=split,
        monitor=monitor,
        state_path=os.path.join(out, "backup", "ema.npz") if out else None,
        evaluate_fn=ema_evaluate,
    )


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``history.csv``, one per epoch (a repeated epoch keeps its last row).

    Args:
        path: The CSV written by ``keras.callbacks.CSVLogger``.

    Returns:
        A list of dicts sorted by ``epoch``; empty if the file does not exist.

    Example:
        >>> read_history("/nonexistent/history.csv")
        []
    """
    if not os.path.isfile(path):
        return []
    rows: dict[int, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                values = {k: float(v) for k, v in row.items() if k and v not in (None, "", "NA")}
            except ValueError:
                continue  # a header repeated by an appending writer
            if "epoch" in values:
                rows[int(values["epoch"])] = values
    return [rows[k] for k in sorted(rows)]


def plot_history(history: list[dict[str, float]], path: str | os.PathLike) -> str:
    """Save loss, accuracy and learning-rate curves as a PNG (matplotlib, Agg canvas).

    Draws on a ``matplotlib.figure.Figure`` with its own ``FigureCanvasAgg``: no pyplot
    and no ``matplotlib.use``, so the process-wide backend (e.g. inline plots in a
    notebook) is left as it was.

    Args:
        history: Rows as returned by :func:`read_history`.
        path: Output ``.png`` path (written atomically).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, os
        >>> rows = [{"epoch": 0, "loss": 1.0, "accuracy": 0.5}, {"epoch": 1, "loss": 0.5,
        ...         "accuracy": 0.8}]
        >>> os.path.isfile(plot_history(rows, os.path.join(tempfile.mkdtemp(), "c.png")))
        True
    """
    if not history:
        raise ValueError("`history` is empty: nothing to plot. Received: history=[]")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [int(r["epoch"]) + 1 for r in history]
    panels = [("loss", "loss"), ("accuracy", "accuracy"), ("learning_rate", "learning rate")]
    panels = [p for p in panels if any(p[0] in r for r in history)]
    fig = Figure(figsize=(4 * len(panels), 3.2))
    FigureCanvasAgg(fig)  # attaches itself to fig: renders without pyplot's global backend
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for prefix, label in (("", "train"), ("val_", "validation")):
            ys = [r.get(prefix + key) for r in history]
            if key != "learning_rate" and any(y is not None for y in ys):
                ax.plot(epochs, ys, marker=".", label=label)
            elif key == "learning_rate" and prefix == "":
                ax.plot(epochs, ys, marker=".")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if key == "learning_rate" and all((r.get(key) or 0) > 0 for r in history):
            ax.set_yscale("log")
        elif ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    tmp = os.fspath(path) + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return os.fspath(path)
