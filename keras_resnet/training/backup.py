"""Keras' ``BackupAndRestore`` with crash-safe writes and recovery from a damaged backup.

Keras writes ``backup/latest.weights.h5`` in place, so a kill during the write leaves a
half-written HDF5 file that every later run fails to load. Keras has no atomic mode,
so this subclass writes each state to a new file, renames it into place, and only
then points ``current.json`` at it (an atomic JSON write); the state before stays as
``previous.json`` with its weights. On restore it tries the current state, then the
previous one, then (with a warning) a fallback checkpoint such as ``best.keras``.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import keras

from keras_resnet.training.messages import say
from keras_resnet.utils.atomic import read_json, write_json_atomic, write_text_atomic

logger = logging.getLogger("keras_resnet.training")


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose backup survives a kill at any instant.

    After ``on_train_begin``, ``epochs_restored`` is the number of epochs the restored
    state stands for (0 when nothing was restored): training goes on with that epoch.

    Args:
        backup_dir: The backup folder (used by this callback only).
        fallback: ``(checkpoint, epochs_done)``: weights to start from, and the epochs
            they stand for, when neither backed-up state loads; ``None`` to start anew.
        delete_checkpoint: Remove the backup when ``fit`` ends (Keras' default).
        restart: Called with the model when a damaged backup and no ``fallback`` make
            training start again from epoch 1 (a pretrained run built without its
            weights file, since the backup held the state, loads it there).

    Example:
        >>> import tempfile, numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> backup = BackupAndRestore(tempfile.mkdtemp(), delete_checkpoint=False)
        >>> _ = model.fit(np.ones((4, 2)), np.ones(4), epochs=2, callbacks=[backup], verbose=0)
        >>> sorted(f for f in os.listdir(backup.backup_dir) if f.endswith(".json"))
        ['current.json', 'previous.json']
    """

    def __init__(
        self,
        backup_dir: str,
        *,
        fallback: tuple[str, int] | None = None,
        delete_checkpoint: bool = True,
        restart: Callable[[keras.Model], None] | None = None,
    ) -> None:
        super().__init__(backup_dir, delete_checkpoint=delete_checkpoint)
        self.fallback = fallback
        self.restart = restart
        self._tmp: str | None = None  # the file being written and where it goes
        self._writing = ""
        self.epochs_restored = 0

    def _state_path(self, which: str) -> str:
        return os.path.join(self.backup_dir, f"{which}.json")

    def _save_model(self) -> None:
        try:
            self._write_state()
        except Exception as err:  # noqa: BLE001 - a full disk is told apart below
            if not is_disk_full(err):
                raise
            _remove(self._tmp)  # the state before (current.json and its weights) stays
            raise DiskFullError(self._writing) from None

    def _write_state(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch{self._current_epoch:05d}-batch{self._last_batch_seen:07d}.weights.h5"
        self._tmp = os.path.join(self.backup_dir, f"tmp-{os.getpid()}.weights.h5")
        self._writing = os.path.join(self.backup_dir, name)
        with hdf5_in_memory(self._tmp):  # a full disk fails in Python, not inside HDF5
            self.model.save_weights(self._tmp, overwrite=True)
        os.replace(self._tmp, self._writing)
        current = self._state_path("current")
        if os.path.isfile(current):
            # Copied as text: a damaged current.json is carried over, never fatal here.
            with open(current, encoding="utf-8", errors="replace") as f:
                self._writing = self._state_path("previous")
                write_text_atomic(self._writing, f.read())
        state = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}
        self._writing = current
        write_json_atomic(current, state)
        try:  # the weights previous.json names, unless it is damaged
            keep = {name, read_json(self._state_path("previous"))["weights"]}
        except (OSError, ValueError, KeyError, TypeError):
            keep = {name}
        for path in glob.glob(os.path.join(self.backup_dir, "*.weights.h5")):
            if os.path.basename(path) not in keep:
                os.remove(path)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epochs_restored = 0
        if not self.model.built:
            super().on_train_begin(logs)  # Keras' message for an unbuilt model
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        problems = []
        for which in ("current", "previous"):
            path = self._state_path(which)
            if not os.path.exists(path):
                continue
            try:
                state = read_json(path)
                self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))
            except Exception as err:  # noqa: BLE001 - any damage: try the next state
                problems.append(f"{which} ({type(err).__name__}: {err})")
                continue
            self.model._initial_epoch = self.epochs_restored = int(state["epoch"])
            if problems:
                logger.warning("Backup %s unusable; resumed from the previous state.", problems)
            # said once restored: the epoch the backup holds, not the rows of history.csv
            # (a kill between an epoch's row and its backup trains that epoch again)
            run = os.path.dirname(self.backup_dir)
            say(f"Resuming the run in {run} after epoch {self.epochs_restored} of "
                f"{self.params.get('epochs')}.")  # fmt: skip
            return
        if problems or glob.glob(os.path.join(self.backup_dir, "*.weights.h5")):
            self._restore_fallback(problems)

    def _restore_fallback(self, problems: list[str]) -> None:
        where = f"The backup in {self.backup_dir} is damaged ({'; '.join(problems) or 'no state'})"
        if self.fallback is None or not os.path.isfile(self.fallback[0]):
            logger.warning("%s and there is no checkpoint: training starts again.", where)
            say(f"{where}: training starts again from epoch 1.")
            if self.restart is not None:
                self.restart(self.model)
            return
        path, epochs = self.fallback
        self.model.load_weights(path)
        self.model._initial_epoch = self.epochs_restored = int(epochs)
        say(f"{where}: resuming from the last good checkpoint {path} (after epoch {epochs}).")


class DiskFullError(OSError):
    """The disk filled up (ENOSPC) while the backup was written; the state before is intact.

    Args:
        path: The file being written.

    Example:
        >>> err = DiskFullError("runs/r/backup/current.json")
        >>> str(err), err.errno == errno.ENOSPC
        ('no space left on device while writing runs/r/backup/current.json', True)
    """

    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOSPC, "no space left on device", path)

    def __str__(self) -> str:
        return f"no space left on device while writing {self.filename}"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` reports a full disk: ``ENOSPC``, as Python or HDF5 (h5py) word it.

    Args:
        err: An exception.

    Example:
        >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
        True
        >>> is_disk_full(RuntimeError("Can't decrement id ref count (file write failed: "
        ...                           "errno = 28, error message = 'No space left on device')"))
        True
        >>> is_disk_full(OSError(errno.EACCES, "Permission denied"))
        False
    """
    while err is not None:
        if getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def hdf5_in_memory(path: str | os.PathLike) -> Iterator[None]:
    """While inside, an HDF5 file opened for writing at ``path`` is built in memory and
    written to ``path`` in one Python write when h5py closes it.

    HDF5 that fails to write its file (a full disk) keeps it open, retries the write
    whenever the file's objects are released, prints each failure, and can crash the
    process when it retries at exit. Built in memory, the HDF5 file is always complete
    and closed; a full disk is then an ordinary ``OSError`` (``ENOSPC``) of the one
    write, and the caller removes the partial file.

    Args:
        path: The file (e.g. the ``.weights.h5`` that ``model.save_weights`` writes).

    Example:
        >>> import tempfile, numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> path = os.path.join(tempfile.mkdtemp(), "m.weights.h5")
        >>> with hdf5_in_memory(path):
        ...     model.save_weights(path)
        >>> model.load_weights(path)
        >>> os.path.getsize(path) > 0
        True
    """
    import h5py

    target = os.path.abspath(os.fspath(path))
    original = h5py.File

    class File(original):  # type: ignore[misc, valid-type]
        def __init__(self, name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
            spill = None
            if mode == "w" and isinstance(name, (str, os.PathLike)):
                if os.path.abspath(os.fspath(name)) == target:
                    spill, name = target, io.BytesIO()
            super().__init__(name, mode, *args, **kwargs)
            self._keras_resnet_spill = (spill, name) if spill else None

        def close(self) -> None:
            super().close()
            spill, self._keras_resnet_spill = self._keras_resnet_spill, None
            if spill is not None:
                with open(spill[0], "wb") as f:
                    f.write(spill[1].getbuffer())

    h5py.File = File
    try:
        yield
    finally:
        h5py.File = original


def _remove(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)


def holds_state(backup_dir: str | os.PathLike) -> bool:
    """Whether ``backup_dir`` holds a saved state (``current.json`` or ``previous.json``).

    A run resumed from such a backup restores every weight from it (or, when both
    states are damaged, from its fallback), so what the model was built with is
    overwritten: a pretrained run need not read its weights file again.

    Args:
        backup_dir: The ``backup/`` folder of a run.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> holds_state(folder)
        False
        >>> _ = write_json_atomic(os.path.join(folder, "current.json"), {"epoch": 1})
        >>> holds_state(folder)
        True
    """
    states = (os.path.join(backup_dir, f"{which}.json") for which in ("current", "previous"))
    return any(os.path.isfile(path) for path in states)


def resume_kwargs(
    model_kwargs: dict[str, Any], backup_dir: str | os.PathLike
) -> tuple[dict[str, Any], str | None]:
    """The builder arguments of a resumed run, and the pretrained weights it need not read.

    A backup that holds a state restores every weight (or, both states damaged, its
    fallback does, or :func:`pretrained_restart` reads the file then), so the model of a
    resumed pretrained run is built without ``weights``.

    Args:
        model_kwargs: The run's builder arguments (``weights`` among them, or not).
        backup_dir: The run's ``backup/`` folder.

    Returns:
        ``(model_kwargs without weights, weights)``, or ``(model_kwargs, None)`` when the
        backup holds no state yet or the run has no pretrained weights.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> resume_kwargs({"weights": "w.keras", "se_ratio": 0.25}, folder)
        ({'weights': 'w.keras', 'se_ratio': 0.25}, None)
        >>> _ = write_json_atomic(os.path.join(folder, "current.json"), {"epoch": 1})
        >>> resume_kwargs({"weights": "w.keras", "se_ratio": 0.25}, folder)
        ({'se_ratio': 0.25}, 'w.keras')
    """
    if "weights" not in model_kwargs or not holds_state(backup_dir):
        return model_kwargs, None
    return {k: v for k, v in model_kwargs.items() if k != "weights"}, model_kwargs["weights"]


def pretrained_restart(weights: str) -> Callable[[keras.Model], None]:
    """A ``restart`` for :class:`BackupAndRestore` that loads pretrained ``weights``.

    Args:
        weights: What ``load_weights`` reads (see :func:`keras_resnet.weights.load_weights`).

    Example:
        >>> restart = pretrained_restart("/nowhere/weights.keras")
        >>> restart(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        Traceback (most recent call last):
        ValueError: The backup cannot be restored and training must start again from the pretrained weights, but the file is gone. Received: weights='/nowhere/weights.keras'
    """  # noqa: E501

    def restart(net: keras.Model) -> None:
        from keras_resnet.weights import load_weights

        if not os.path.exists(weights) and os.path.splitext(weights)[1]:
            raise ValueError(
                "The backup cannot be restored and training must start again from the "
                f"pretrained weights, but the file is gone. Received: weights={weights!r}"
            )
        load_weights(net, weights)

    return restart


def best_checkpoint_epoch(history: list[dict[str, float]], monitor: str) -> int | None:
    """How many epochs ``best.keras`` stands for: 1 + the epoch of the best ``monitor``.

    Args:
        history: Rows of ``history.csv``.
        monitor: The metric ``ModelCheckpoint`` monitored (``*loss`` is minimised).

    Example:
        >>> best_checkpoint_epoch([{"epoch": 0, "val_loss": 2.0}, {"epoch": 1, "val_loss": 1.0},
        ...                        {"epoch": 2, "val_loss": 1.5}], "val_loss")
        2
    """
    rows = [r for r in history if monitor in r]
    if not rows:
        return None
    pick: Any = min if monitor.endswith("loss") else max
    return int(pick(rows, key=lambda r: r[monitor])["epoch"]) + 1
