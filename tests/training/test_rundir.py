"""The run folder: lock, crash safety (backup, finished training, exports), clean errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from conftest import REPO
from training_helpers import synthetic

from keras_resnet import training as T
from keras_resnet.cli import main
from keras_resnet.saving import save_keras_model
from keras_resnet.training.backup import BackupAndRestore
from keras_resnet.training.rundir import RunDir, RunFolderBusyError
from keras_resnet.utils.atomic import recover_replacements, write_json_atomic

ROOT = str(REPO)
TINY = T.get_recipe(
    "fast", epochs=2, batch_size=16, warmup_epochs=0, learning_rate=0.05, tensorboard=False
)
DEAD_PID = 999_999_999  # above any pid_max: never a live process


def _env() -> dict[str, str]:
    # the package, and tests/ for the scripts that import training_helpers
    path = os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3")


# --- lock ---------------------------------------------------------------------------

# Loads rundir.py alone (no TensorFlow import: the holder is up in a moment).
_HOLD = textwrap.dedent(
    """
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("rundir", sys.argv[2])
    rundir = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rundir)
    rundir.RunDir(sys.argv[1], {}).lock()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_second_run_in_the_same_folder_is_refused_and_a_dead_lock_taken_over(tmp_path):
    out = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, out, os.path.join(ROOT, "keras_resnet/training/rundir.py")],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["train", "--model", "_tiny", "--epochs", "1", "--output", out, "--quiet"]
        second = subprocess.run(
            [sys.executable, "-m", "keras_resnet", *argv],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"in use by another run (process {holder.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert sorted(os.listdir(out)) == [".lock"]  # nothing written by the refused run
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert os.path.isfile(os.path.join(out, ".lock"))  # left behind by the killed holder
    with RunDir(out, {}) as taken:  # the dead process's lock is taken over
        assert open(taken.file(".lock")).read().strip() == str(os.getpid())


def test_lock_is_released_and_exclusive_in_process(tmp_path):
    first = RunDir(tmp_path / "r", {}).lock()
    with pytest.raises(RunFolderBusyError, match=f"process {os.getpid()}"):
        RunDir(tmp_path / "r", {}).lock()  # a second open file: flock refuses it too
    first.unlock()
    assert not (tmp_path / "r" / ".lock").exists()
    with RunDir(tmp_path / "r", {}) as again:
        assert again.prepare() == "new"


# --- output folder checks and malformed files -----------------------------------------


def test_unusable_output_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    for output, message in [
        (str(tmp_path / "file" / "run"), "lies below a regular file"),
        (str(tmp_path / "file"), "is a regular file"),
        ("", "must be a non-empty path"),  # checked by the CLI first (check_path)
    ]:
        assert main(["train", "--model", "_tiny", "--output", output]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_read_only_parent_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="no write permission"):
        T.train("_tiny", synthetic(), TINY, output_dir=tmp_path / "ro" / "run")


def test_malformed_run_files_are_named(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        T.train("_tiny", synthetic(), TINY, output_dir=bad, verbose=0)
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        T.evaluate(bad)
    assert not (bad / ".lock").exists()  # released on the refusal
    cfg = tmp_path / "c.json"
    cfg.write_bytes(b'{"epochs": "\xff"}')
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "r")]) == 2
    assert f"{str(cfg)!r} is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_set_errors_are_usage_errors():
    script = os.path.join(ROOT, "benchmarks", "train_digits.py")
    proc = subprocess.run(
        [sys.executable, script, "--set", "use_ema=3", "--set", "nope=1"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Unknown field(s) of TrainConfig: nope" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- backup written atomically, damaged backup recovered ------------------------------


def _dense_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    return model


class _Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt  # after the backup of the second epoch


def _fit(model, backup, epochs=3, extra=()):
    x, y = np.ones((8, 2)), np.ones(8)
    return model.fit(x, y, epochs=epochs, callbacks=[backup, *extra], verbose=0).history


def test_backup_survives_a_failed_write_and_a_damaged_file(tmp_path):
    folder = str(tmp_path / "backup")
    model = _dense_model()
    with pytest.raises(KeyboardInterrupt):
        _fit(model, BackupAndRestore(folder, delete_checkpoint=False), extra=[_Stop()])
    state = json.load(open(os.path.join(folder, "current.json")))
    assert state["epoch"] == 2

    # a write that dies half way leaves the published state as it was
    class Broken(keras.Sequential):
        def save_weights(self, filepath, overwrite=True):
            with open(filepath, "wb") as f:
                f.write(b"\x89HDF half")
            raise OSError("disk full")

    backup = BackupAndRestore(folder, delete_checkpoint=False)
    backup.set_model(Broken([keras.Input((2,)), keras.layers.Dense(1)]))
    backup._current_epoch = 3
    with pytest.raises(OSError, match="disk full"):
        backup._save_model()
    assert json.load(open(os.path.join(folder, "current.json"))) == state
    # the current weights damaged (kill -9 mid-write with Keras' in-place writer):
    # the previous state is used, and training goes on from there
    with open(os.path.join(folder, state["weights"]), "r+b") as f:
        f.truncate(100)
    resumed_model = _dense_model()
    resumed = _fit(resumed_model, BackupAndRestore(folder, delete_checkpoint=False))
    assert len(resumed["loss"]) == 2  # restored after epoch 1, the previous state
    assert json.load(open(os.path.join(folder, "current.json")))["epoch"] == 3
    # restored with epoch 1's weights: epochs 2 and 3 repeat an uninterrupted run's
    straight_model = _dense_model()
    straight = _fit(straight_model, BackupAndRestore(str(tmp_path / "straight")))
    np.testing.assert_allclose(resumed["loss"], straight["loss"][1:], rtol=1e-6)
    for got, want in zip(resumed_model.get_weights(), straight_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_damaged_backup_falls_back_to_the_checkpoint(tmp_path, capsys):
    folder = str(tmp_path / "backup")
    model = _dense_model()
    with pytest.raises(KeyboardInterrupt):
        _fit(model, BackupAndRestore(folder, delete_checkpoint=False), extra=[_Stop()])
    model.save(str(tmp_path / "best.keras"))
    for name in os.listdir(folder):
        if name.endswith(".weights.h5"):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"garbage")
    fresh = _dense_model()
    backup = BackupAndRestore(folder, fallback=(str(tmp_path / "best.keras"), 2))
    assert len(_fit(fresh, backup)["loss"]) == 1
    assert "resuming from the last good checkpoint" in capsys.readouterr().out
    with pytest.raises(KeyboardInterrupt):  # and with no checkpoint: from the start
        _fit(_dense_model(), BackupAndRestore(folder, delete_checkpoint=False), extra=[_Stop()])
    for name in os.listdir(folder):
        if name.endswith(".json"):
            (tmp_path / "backup" / name).write_text("{")
    assert len(_fit(_dense_model(), BackupAndRestore(folder))["loss"]) == 3
    assert "training starts again from epoch 1" in capsys.readouterr().out


@pytest.mark.slow
def test_train_resumes_from_a_damaged_backup(tmp_path, capsys):
    out = tmp_path / "run"
    cfg = TINY.replace(epochs=3)
    with pytest.raises(KeyboardInterrupt):
        T.train("_tiny", synthetic(), cfg, output_dir=out, verbose=0, callbacks=[_Stop()])
    current = json.load(open(out / "backup" / "current.json"))
    (out / "backup" / current["weights"]).write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    result = T.train("_tiny", synthetic(), cfg, output_dir=out, verbose=0)
    assert "Resuming the run" in capsys.readouterr().out
    assert result.summary["epochs_completed"] == 3 and result.summary["epochs_this_call"] == 2
    assert not (out / "backup").exists() and not (out / ".lock").exists()


# kill -9 after the second epoch's history.csv row, before its backup (ModelCheckpoint
# runs between the two), then the CLI as the user runs it.
_KILL_BEFORE_BACKUP = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from keras_resnet.cli import main

    save = keras.callbacks.ModelCheckpoint.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        save(self, epoch, logs)

    keras.callbacks.ModelCheckpoint.on_epoch_end = on_epoch_end
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow  # fresh processes, 20-40 s
def test_kill_between_history_row_and_backup_keeps_one_row_per_epoch(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--model", "_tiny", "--epochs", "4", "--batch-size", "256"]
    argv += ["--quiet", "--no-export", "--output", str(out)]
    run = dict(env=_env(), capture_output=True, text=True, timeout=300)
    killed = subprocess.run([sys.executable, "-c", _KILL_BEFORE_BACKUP, *argv], **run)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert json.loads((out / "backup" / "current.json").read_text())["epoch"] == 1
    again = subprocess.run([sys.executable, "-m", "keras_resnet", *argv], **run)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = (out / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "0", "1", "2", "3"]
    trained = json.loads((out / "summary.json").read_text())["epochs_this_call"]
    assert f"after epoch {4 - trained} of 4." in again.stdout
    assert trained == 3


# --- a rerun after training ended only finishes the run -------------------------------

_FINISH = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    from keras_resnet import training as T
    from training_helpers import synthetic
    cfg = T.get_recipe("fast", epochs=2, batch_size=16, warmup_epochs=0, learning_rate=0.05,
                       tensorboard=False)
    T.train("_tiny", synthetic(), cfg, output_dir=sys.argv[1], verbose=0)
    """
)


@pytest.mark.parametrize(
    "crash_in", ["finish", pytest.param("mark_trained", marks=pytest.mark.slow)]
)
def test_rerun_after_training_ended_only_finishes(tmp_path, monkeypatch, crash_in):
    out = tmp_path / "run"

    def crash(self, *args):
        raise SystemExit("killed")  # stands for kill -9 at this instant

    monkeypatch.setattr(RunDir, crash_in, crash)
    with pytest.raises(SystemExit):
        T.train("_tiny", synthetic(), TINY, output_dir=out, verbose=0)
    monkeypatch.undo()
    assert not (out / "summary.json").exists()
    model_time = os.path.getmtime(out / "model.keras")
    history_text = (out / "history.csv").read_text()
    rerun = subprocess.run(
        [sys.executable, "-c", _FINISH.format(root=ROOT), str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    if crash_in == "finish":
        assert "already ended; finishing the run" in rerun.stdout
        assert os.path.getmtime(out / "model.keras") == model_time  # not replaced
    assert (out / "history.csv").read_text() == history_text  # no epoch trained again
    summary = json.load(open(out / "summary.json"))
    assert summary["epochs_completed"] == 2 and summary["trainable_params"] > 0
    assert summary["total_params"] > summary["trainable_params"]  # BN moving statistics
    assert "params" not in summary
    assert sorted(os.listdir(out)) == [
        "best.keras",
        "config.json",
        "curves.png",
        "data_info.json",
        "history.csv",
        "model.keras",
        "summary.json",
    ]


# --- interrupted exports are repaired -------------------------------------------------


def test_interrupted_replacement_is_restored_and_stale_temps_removed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    old = run / f".saved_model.old-{DEAD_PID}-0123abcd"  # killed between the two renames
    old.mkdir()
    (old / "saved_model.pb").write_text("the published export")
    stale = run / f".saved_model.tmp-{DEAD_PID}-89abcdef"
    stale.mkdir()
    live = run / f".model.tmp-{os.getppid()}-89abcdef.keras"  # a live process: kept
    live.write_text("in progress")
    write_json_atomic(run / "config.json", {"run": {"model": "_tiny"}})
    with RunDir(run, {"model": "_tiny"}) as rd:
        assert rd.prepare() == "resume"
    assert (run / "saved_model" / "saved_model.pb").read_text() == "the published export"
    assert sorted(p.name for p in run.iterdir()) == [live.name, "config.json", "saved_model"]
    # an export into a folder cleans its own stale leftovers first
    dead_keras = run / f".model.old-{DEAD_PID}-0123abcd.keras"
    dead_keras.write_text("older")
    (run / "model.keras").write_text("published")
    assert recover_replacements(run, "model") == []
    assert not dead_keras.exists() and live.exists()
    save_keras_model(_dense_model(), run / "other.keras")
    write_json_atomic(run / "x.json", {"a": 1})
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [live.name, "config.json", "saved_model", "model.keras", "other.keras", "x.json"]
    )


def test_stale_lock_file_does_not_block(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / ".lock").write_text(f"{DEAD_PID}\n")  # a killed run's lock file
    start = time.monotonic()
    with RunDir(tmp_path / "r", {}) as rd:
        assert rd.prepare() == "new"
    assert time.monotonic() - start < 5


def test_a_run_folder_from_before_a_new_config_field_is_the_same_run(tmp_path):
    # config.json written by an older version lacks the fields added since (here
    # TrainConfig.image_size); at their None default they describe the same run.
    out = tmp_path / "r"
    cfg = TINY.replace(epochs=1)
    first = T.train("_tiny", synthetic(), cfg, output_dir=out, verbose=0)
    path = out / "config.json"
    config = json.loads(path.read_text())
    del config["run"]["train_config"]["image_size"]
    path.write_text(json.dumps(config))
    again = T.train("_tiny", synthetic(), cfg, output_dir=out, verbose=0)
    assert again.summary == first.summary
    with pytest.raises(FileExistsError, match=r"train_config\.image_size: None -> \[8, 8\]"):
        T.train("_tiny", synthetic(), cfg.replace(image_size=8), output_dir=out, verbose=0)


def test_overwrite_keeps_a_users_files_inside_the_run_folders(tmp_path):
    run = tmp_path / "run"
    written = [
        "backup/current.json",
        "backup/epoch.weights.h5",
        "backup/.current.json.tmp-1",
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
        "saved_model/assets/labels.txt",
        "tensorboard/train/events.out.tfevents.1.v2",
    ]
    mine = ["backup/thesis.tex", "saved_model/notes/plan.json", "tensorboard/train/x/y.json"]
    for name in written + mine:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("x")
    write_json_atomic(str(run / "config.json"), {"run": {"model": "_tiny"}})
    with pytest.raises(FileExistsError) as refused:
        RunDir(run, {"model": "_tiny"}, overwrite=True).prepare()
    message = str(refused.value)
    assert all(name in message for name in ["backup/thesis.tex", "saved_model/notes", "train/x"])
    assert all((run / name).exists() for name in written + mine)  # nothing deleted
    for name in mine:
        (run / name).unlink()
    assert RunDir(run, {"model": "_tiny"}, overwrite=True).prepare() == "new"
    assert not any((run / name).exists() for name in ["backup", "saved_model", "tensorboard"])
