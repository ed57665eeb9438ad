"""``train`` at its limits, through the CLI in fresh subprocesses: resuming a pretrained
run without its weights file, image sizes beyond the data's memory, a full disk.

One runner script starts the command line as ``python -m keras_resnet`` does (the quiet
start-up, then ``keras_resnet.cli.main``) with an optional fault: a kill -9 after the
first backup, a backup write that fails with ENOSPC, or a fixed amount of available
memory. It prints nothing of its own, so stdout and stderr are the user's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

ROOT = str(REPO)

_RUNNER = textwrap.dedent(
    """
    import errno, os, signal, sys
    sys.path.insert(0, {root!r})
    fault, arg, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    # what python -m keras_resnet sees (sys.orig_argv): its quiet start-up
    sys.orig_argv = [sys.executable, "-m", "keras_resnet", *argv]
    sys.argv = ["-m", *argv]
    import keras_resnet
    if fault in ("kill", "enospc"):
        import h5py
        from keras_resnet.training import backup

        if fault == "enospc":
            # The disk fills up while the Nth backup's weights are written: past 4 KiB,
            # every write to a regular file of backup/ fails with ENOSPC, whether HDF5
            # writes the file itself or Python writes what HDF5 built.
            import builtins, io, stat

            class FullDisk(io.FileIO):
                def write(self, data):
                    on_disk = stat.S_ISREG(os.fstat(self.fileno()).st_mode)
                    if on_disk and self.tell() + len(data) > 4096:
                        raise OSError(errno.ENOSPC, "No space left on device", self.name)
                    return super().write(data)

            opened = []

            def full(path, mode):
                path = os.fspath(path) if isinstance(path, os.PathLike) else path
                if not (isinstance(path, str) and "w" in mode):
                    return False
                if os.path.basename(os.path.dirname(path)) != "backup":
                    return False
                if path.endswith(".weights.h5"):
                    opened.append(path)
                return len(opened) == int(arg)

            class File(h5py.File):
                def __init__(self, name, mode="r", *a, **k):
                    if full(name, mode):
                        name = FullDisk(os.fspath(name), "w+")
                    super().__init__(name, mode, *a, **k)

            h5py.File = File
            plain_open = builtins.open

            def open_(file, mode="r", *a, **k):
                if full(file, mode) and "b" in mode:
                    return FullDisk(os.fspath(file), "w")
                return plain_open(file, mode, *a, **k)

            builtins.open = open_
        else:
            save_state = backup.BackupAndRestore._save_model

            def save_model(self):
                save_state(self)
                os.kill(os.getpid(), signal.SIGKILL)

            backup.BackupAndRestore._save_model = save_model
    elif fault == "memory":
        from keras_resnet.training import memory

        memory.available_memory = lambda: int(arg)
    from keras_resnet.cli import main

    sys.exit(main(argv))
    """
)

_TRAIN = ["train", "--model", "_tiny", "--batch-size", "256", "--no-export", "--quiet"]


def _cli(*argv: str, fault: str = "none", arg: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    runner = _RUNNER.format(root=ROOT)
    return subprocess.run(
        [sys.executable, "-c", runner, fault, arg, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _epochs_done(out) -> int:
    return json.loads((out / "summary.json").read_text())["epochs_completed"]


def _tree(folder) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(folder)
        for f in files
    }


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A ``.keras`` file of ``_tiny`` trained one epoch on digits."""
    out = tmp_path_factory.mktemp("pretrained") / "run"
    proc = _cli(*_TRAIN, "--epochs", "1", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "model.keras"


@pytest.mark.slow  # fresh processes, 20-40 s
def test_resumed_pretrained_run_needs_only_its_backup(pretrained, tmp_path):
    weights = tmp_path / "weights.keras"
    shutil.copy(pretrained, weights)
    out = tmp_path / "run"
    argv = [*_TRAIN, "--epochs", "2", "--weights", str(weights), "--output", str(out)]
    killed = _cli(*argv, fault="kill")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (out / "backup" / "current.json").is_file()
    weights.rename(tmp_path / "moved.keras")  # the backup holds the whole state
    resumed = _cli(*argv)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "after epoch 1 of 2" in resumed.stdout and _epochs_done(out) == 2
    # a fresh start still needs the file, and is refused before anything is written
    fresh = _cli(*argv[:-1], str(tmp_path / "fresh"))
    assert fresh.returncode == 2 and str(weights) in fresh.stderr, fresh.stderr[-2000:]
    assert len(fresh.stderr.strip().splitlines()) == 1, fresh.stderr
    assert not (tmp_path / "fresh").exists()


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[0]


def test_an_image_size_beyond_the_sanity_limit_is_refused_at_once(tmp_path):
    out = tmp_path / "run"
    line = _one_error_line(_cli(*_TRAIN, "--image-size", "100000", "--output", str(out)))
    assert "image_size" in line and "100000" in line and "1 to 4096 pixels" in line, line
    assert not out.exists()


@pytest.mark.parametrize(
    "size, available",
    [
        ("2000", None),  # this machine's memory: a step of _tiny needs ~150 GB
        ("32", 20 * 1024**2),  # a size that trains, on a machine with 20 MB free
    ],
)
def test_an_image_size_beyond_memory_is_refused_before_anything_is_written(
    tmp_path, size, available
):
    out = tmp_path / "run"
    argv = [*_TRAIN, "--image-size", size, "--output", str(out)]
    if available is None:
        proc = _cli(*argv)
    else:
        proc = _cli(*argv, fault="memory", arg=str(available))
    line = _one_error_line(proc)
    assert f"`image_size` ({size}, {size}) needs at least" in line, line
    assert "GB of memory" in line and "batch_size=256" in line, line
    # what is allowed: a size whose estimate fits (smaller than the one asked for)
    allowed = int(line.split("at most ")[1].split("x")[0])
    assert 1 <= allowed < int(size), line
    assert not out.exists()


@pytest.mark.slow  # fresh processes, 20-40 s
def test_a_full_disk_during_the_backup_stops_in_one_line_and_the_rerun_recovers(tmp_path):
    out = tmp_path / "run"
    argv = [*_TRAIN, "--epochs", "3", "--output", str(out)]
    full = _cli(*argv, fault="enospc", arg="2")  # the second epoch's backup
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 1 and len(lines) == 1, full.stderr[-3000:]
    assert lines[0].startswith("error: no space left on device while writing "), lines[0]
    assert str(out / "backup") in lines[0], lines[0]
    # the first epoch's backup is intact, and nothing half-written is left beside it
    state = json.loads((out / "backup" / "current.json").read_text())
    assert state["epoch"] == 1, state
    names = {p.name for p in (out / "backup").iterdir()}
    assert names - {"ema.npz"} == {"current.json", state["weights"]}, names
    rerun = _cli(*argv)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "after epoch 1 of 3" in rerun.stdout, rerun.stdout
    assert _epochs_done(out) == 3


def test_a_refused_overwrite_leaves_the_finished_run_byte_identical(pretrained, tmp_path):
    # refused at the last check before the old run would be cleared (the model is built)
    run = tmp_path / "run"
    shutil.copytree(pretrained.parent, run)
    (run / "notes.txt").write_text("lr 0.1 was too high")
    before = _tree(run)
    argv = [*_TRAIN, "--image-size", "32", "--output", str(run), "--overwrite"]
    line = _one_error_line(_cli(*argv, fault="memory", arg=str(20 * 1024**2)))
    assert "needs at least" in line, line
    assert _tree(run) == before
