"""A run killed with SIGKILL and resumed ends with the weights of an uninterrupted run.

Through the CLI, in fresh processes, on the digits data with shuffling and the
standard augmentation on: the kill comes once the backup of an epoch is written,
while the next epoch trains.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from training_helpers import pretrained_tiny, subprocess_env

from keras_resnet import training as T
from keras_resnet.saving import load_keras_model

COMMON = ["--model", "_tiny", "--dataset", "digits", "--batch-size", "32", "--seed", "3",
          "--augment", "mnist", "--no-export", "--quiet"]  # fmt: skip
TRAIN = [*COMMON, "--recipe", "fast", "--epochs", "4"]
FINE_TUNE = [*COMMON, "--recipe", "fine_tune", "--epochs", "4", "--head-epochs", "2"]


def _backup_epoch(out: str) -> int:
    try:
        with open(os.path.join(out, "backup", "current.json"), encoding="utf-8") as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _start(out: str, args: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "keras_resnet", "train", *args, "--output", out]
    return subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen, timeout: float = 300) -> None:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, (stdout + stderr)[-3000:]


def _kill_after(process: subprocess.Popen, out: str, epochs: int, timeout: float = 300) -> None:
    """SIGKILL ``process`` as soon as the backup holds ``epochs`` epochs."""
    deadline = time.monotonic() + timeout
    while _backup_epoch(out) < epochs:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no backup in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(out, "summary.json"))  # killed mid-run


def _weights(out: str) -> list[np.ndarray]:
    model = load_keras_model(os.path.join(out, "model.keras"))
    return [w.numpy() for w in model.weights]


def _assert_same_run(killed: str, straight: str) -> None:
    for a, b in zip(_weights(killed), _weights(straight), strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit


def _killed_and_straight(tmp_path, args: list[str], kills: list[int]) -> None:
    """Train ``args`` straight and, beside it, killed after each of ``kills`` epochs."""
    straight = str(tmp_path / "straight")
    runs = {kill: str(tmp_path / f"killed{kill}") for kill in kills}
    processes = {kill: _start(out, args) for kill, out in runs.items()}
    reference = _start(straight, args)
    for kill, process in processes.items():
        _kill_after(process, runs[kill], kill)
    resumed = [_start(out, args) for out in runs.values()]
    for process in [reference, *resumed]:
        _finish(process)
    for out in runs.values():
        _assert_same_run(out, straight)


class _Interrupted(Exception):
    pass


class _Interrupt(keras.callbacks.Callback):
    """Stop training in the middle of the second epoch (after the backup of the first)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 1 and batch == 5:
            raise _Interrupted


def test_train_resumes_exactly_after_an_interruption_mid_epoch(tmp_path):
    # in one process (fast); each train() call builds its pipeline anew, as a resumed
    # process does, and the Keras MixUp layer runs in the pipeline too
    cfg = T.get_recipe("fast", epochs=3, batch_size=64, augment="mnist", seed=3,
                       warmup_epochs=0, tensorboard=False)  # fmt: skip
    run = dict(data_kwargs={"mixup": 0.2}, verbose=0)
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    T.train("_tiny", "digits", cfg, output_dir=straight, **run)
    with pytest.raises(_Interrupted):
        T.train("_tiny", "digits", cfg, output_dir=killed, callbacks=[_Interrupt()], **run)
    assert _backup_epoch(killed) == 1
    T.train("_tiny", "digits", cfg, output_dir=killed, **run)
    _assert_same_run(killed, straight)


@pytest.mark.slow
def test_training_resumes_exactly_after_kill_9(tmp_path):
    _killed_and_straight(tmp_path, TRAIN, [2])


@pytest.mark.slow
def test_fine_tuning_resumes_exactly_after_kill_9_in_either_phase(tmp_path):
    _, weights = pretrained_tiny(tmp_path, classes=10)
    _killed_and_straight(tmp_path, [*FINE_TUNE, "--weights", weights], [1, 3])
