"""``train``, ``evaluate`` and ``export`` under the JAX and PyTorch backends (fresh
processes: ``KERAS_BACKEND`` is fixed per process): "auto" compiles per backend, the run
folder resumes with its EMA, and what cannot work there is refused before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from backend_compare import require_backend
from conftest import REPO

SCRIPT = r"""
import json, os, sys, tempfile, time
import keras
from keras_resnet.training import TrainConfig, train
from keras_resnet.training.auto_choice import resolve_jit_compile

out = {"backend": keras.backend.backend(), "auto_jit": resolve_jit_compile("auto")}
folder = os.path.join(tempfile.mkdtemp(), "run")
cfg = TrainConfig(epochs=3, batch_size=64, use_ema=True, tensorboard=False, seed=0,
                  image_size=(8, 8))


class Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt  # after the backup of the second epoch


try:
    train("_tiny", "digits", cfg, output_dir=folder, verbose=0, callbacks=[Stop()])
except KeyboardInterrupt:
    out["interrupted"] = True
result = train("_tiny", "digits", cfg, output_dir=folder, verbose=0)
out["summary"] = {k: result.summary[k] for k in
                  ("epochs_completed", "epochs_this_call", "weights", "jit_compile")}
out["files"] = sorted(os.listdir(folder))

from keras_resnet.training.evaluation import evaluate
out["evaluate_accuracy"] = evaluate(folder)["accuracy"]

from keras_resnet.export import export_run, export_saved_model, export_tflite
from keras_resnet.saving import save_keras_model


def train_command():  # the train command exports the run unless --no-export
    import contextlib, io
    from keras_resnet.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", "--model", "_tiny", "--epochs", "1", "--output", folder + "2",
                     "--quiet"])
    if code:
        raise ValueError(err.getvalue())


out["keras_file"] = os.path.isfile(save_keras_model(result.model, folder + "/copy.keras"))
for name, call in [
    ("saved_model", lambda: export_saved_model(result.model, folder + "/sm")),
    ("tflite", lambda: export_tflite(result.model, folder + "/m.tflite")),
    ("export_run", lambda: export_run(folder)),
    ("train_export", train_command),
]:
    start = time.perf_counter()
    try:
        call()
        out[name] = "written"
    except ValueError as error:
        out[name] = str(error)
    out[name + "_s"] = time.perf_counter() - start
out["refused_train_left_no_folder"] = not os.path.exists(folder + "2")
print("RESULT " + json.dumps(out))
"""


def _run(backend: str) -> tuple[dict, str]:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600,
        cwd=str(REPO),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :]), proc.stdout


@pytest.mark.parametrize("backend, jit", [("jax", True), ("torch", False)])
def test_train_resume_ema_evaluate_and_export_on_other_backends(backend, jit):
    require_backend(backend)
    out, stdout = _run(backend)
    assert out["backend"] == backend
    # "auto": XLA for JAX (eager JAX ran ~8x slower), eager for TF on CPU and for torch
    assert out["auto_jit"] is jit and out["summary"]["jit_compile"] is jit
    assert out["interrupted"]
    assert out["summary"]["epochs_completed"] == 3
    assert out["summary"]["epochs_this_call"] == 1  # resumed after epoch 2
    assert "EMA: no saved average" not in stdout  # the average resumed with the weights
    assert out["summary"]["weights"] in ("ema", "raw")
    for name in ("model.keras", "best.keras", "history.csv", "summary.json", "config.json"):
        assert name in out["files"]
    assert 0.0 <= out["evaluate_accuracy"] <= 1.0
    assert out["keras_file"]
    for name in ("saved_model", "tflite", "export_run", "train_export"):
        message = out[name]
        assert backend in message and "tensorflow" in message and "keras" in message, message
        assert out[name + "_s"] < 5, name  # refused before any work
    assert out["refused_train_left_no_folder"]


EMA_SCRIPT = r"""
import numpy as np, keras
import keras_resnet.training.ema as E

def run(fast):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (np.arange(64) % 3).astype("int32")
    real_create, real_sync, syncs = E._JaxAverage.create, model.jax_state_sync, []
    if not fast:
        E._JaxAverage.create = classmethod(lambda cls, ema: None)
    model.jax_state_sync = lambda: syncs.append(1) or real_sync()
    ema = E.ModelEMA(0.9, verbose=0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[ema])
    E._JaxAverage.create = real_create
    return [np.asarray(a.value) for a in ema._average], ema._step, len(syncs)

fast, fast_step, fast_syncs = run(True)
slow, slow_step, slow_syncs = run(False)
diff = max(float(np.abs(a - b).max()) for a, b in zip(fast, slow))
print("RESULT", fast_step, slow_step, fast_syncs, slow_syncs, diff)
"""


def test_ema_on_jax_averages_the_trainer_state_without_a_sync_per_batch():
    require_backend("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", EMA_SCRIPT], env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1].split()[1:]
    fast_step, slow_step, fast_syncs, slow_syncs, diff = line
    assert fast_step == slow_step == "16"  # 2 epochs of 8 batches
    assert float(diff) < 1e-5  # the same average as the per-batch generic path
    # The generic path copies the weights back into the model after every batch (16);
    # the JAX path only at epoch boundaries.
    assert int(slow_syncs) >= 16 and int(fast_syncs) < 10
