"""What the command line prints, in fresh processes as a user meets it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import REPO

from keras_resnet._startup import is_startup_noise

# TensorFlow's start-up notices on a CPU-only machine
NOISE = re.compile(r"cuInit|oneDNN|cpu_feature_guard|absl::InitializeLog|cuda drivers")


def _cli(*argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "keras_resnet", *argv],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout,
    )  # fmt: skip


def test_commands_are_quiet_unless_verbose():
    argv = ("summary", "_tiny", "--input-shape", "16,16,3")
    quiet = _cli(*argv)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "total" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if NOISE.search(line)], quiet.stderr
    verbose = _cli(*argv, "--verbose")
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert any(is_startup_noise(line) for line in verbose.stderr.splitlines()), verbose.stderr


def test_filtered_stderr_passes_real_errors_on():
    script = (
        "import os\n"
        "from keras_resnet._startup import filtered_stderr\n"
        "os.write(2, b'--start--\\n')\n"  # importing keras_resnet may load TensorFlow
        "with filtered_stderr():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called"
        " are written to STDERR\\n')\n"
        "    os.write(2, b'I0000 00:00:1796034377.474135    9497 port.cc:153] oneDNN custom"
        " operations are on.\\n')\n"
        "    os.write(2, b'E0000 00:00:1796034384.108854    9497 cuda_platform.cc:52] failed"
        " call to cuInit: UNKNOWN ERROR (303)\\n')\n"
        "    os.write(2, b'F0000 00:00:1.2   1 something.cc:1] a real failure\\n')\n"
        "    print('python error', file=__import__('sys').stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split("--start--\n")[-1].splitlines() == [
        "F0000 00:00:1.2   1 something.cc:1] a real failure",
        "python error",
    ]


def test_a_crash_while_stderr_is_held_is_still_reported():
    script = (
        "import ctypes\n"
        "from keras_resnet._startup import filtered_stderr\n"
        "with filtered_stderr():\n"
        "    ctypes.string_at(0)\n"  # a segmentation fault while fd 2 is held
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode != 0
    assert "Segmentation fault" in proc.stderr and "<string>" in proc.stderr, proc.stderr


def test_command_line_start_up_leaves_tensorflow_alone_on_other_backends():
    # `python -m keras_resnet` imports the package with sys.argv[0] == "-m"
    script = (
        "import sys; sys.argv = ['-m', 'summary']\n"
        "import keras_resnet\n"
        "print('tensorflow' in sys.modules)\n"
    )
    for backend, loaded in (("jax", "False"), ("tensorflow", "True")):
        env = dict(os.environ, KERAS_BACKEND=backend)
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
            env=env, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == [loaded], (backend, proc.stdout)


def test_train_into_a_pipe_prints_one_plain_line_per_epoch(tmp_path):
    out = str(tmp_path / "run")
    argv = ("train", "--model", "_tiny", "--epochs", "2", "--batch-size", "256")
    proc = _cli(*argv, "--output", out, "--no-export")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\x1b[" not in proc.stdout and "\r" not in proc.stdout
    epoch_lines = [line for line in proc.stdout.splitlines() if " - loss: " in line]
    assert len(epoch_lines) == 2, proc.stdout
    assert not [line for line in proc.stderr.splitlines() if NOISE.search(line)], proc.stderr
    # the digits recipe's EMA says which weights it kept, in the output and summary.json
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["weights"] in ("ema", "raw")
    assert summary["weights_check"]["split"] == "train"
    assert re.search(r"EMA: kept the (averaged \(EMA\)|raw) weights \(train accuracy", proc.stdout)
