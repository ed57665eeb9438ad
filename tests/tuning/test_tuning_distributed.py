"""Distributed search: a KerasTuner chief and two workers share one search on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

ROOT = REPO
# Tiny and fast: the _tiny baseline, one epoch, most knobs fixed.
SPACE = {
    "batch_size": 128,
    "head_dropout": None,
    "dropout": None,
    "se_ratio": None,
    "augment": "none",
    "block": "basic",
    "preact": [False, True],
    "learning_rate": [0.05, 0.1],
}
TIMEOUT_S = 900  # generous: three TensorFlow processes on a small, shared machine


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(output: Path, trials: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "keras_resnet",
        "tune",
        "--dataset",
        "digits",
        "--baseline",
        "_tiny",
        "--tuner",
        "random",
        "--max-trials",
        str(trials),
        "--epochs",
        "1",
        "--output",
        str(output),
        "--search-space",
        json.dumps(SPACE),
        "--no-retrain",
        "--quiet",
    ]


@pytest.mark.slow
def test_chief_and_two_workers_share_a_search(tmp_path):
    port = _free_port()
    base = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        TF_CPP_MIN_LOG_LEVEL="2",
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(port),
    )
    procs = {}
    logs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w")  # noqa: SIM115
            procs[tuner_id] = subprocess.Popen(
                _command(tmp_path / "search", trials=4),
                env=dict(base, KERASTUNER_TUNER_ID=tuner_id),
                stdout=logs[tuner_id],
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
            if tuner_id == "chief":
                time.sleep(2)  # workers also wait for the server, this just orders the logs
        deadline = time.monotonic() + TIMEOUT_S
        codes = {}
        for tuner_id, proc in procs.items():
            codes[tuner_id] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for f in logs.values():
            f.close()
    outputs = {k: (tmp_path / f"{k}.log").read_text() for k in procs}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, outputs
    for worker in ("tuner0", "tuner1"):
        assert f"Worker {worker} finished." in outputs[worker]
    results = json.loads((tmp_path / "search" / "results.json").read_text())
    done = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert len(done) == 4, outputs["chief"]
    assert len({t["trial"] for t in done}) == 4
    assert "trial  score" in outputs["chief"]
