"""benchmarks/gpu.py says clearly that no GPU is visible (this machine has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow  # fresh processes, 20-40 s
def test_gpu_benchmark_without_gpu_prints_error_line_and_exits_3():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["error"] == "no GPU visible" and line["exit_status"] == 3
