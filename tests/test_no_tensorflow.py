"""Without TensorFlow (a GPU machine with Keras + JAX): ``import keras_resnet`` and
``create_model`` work, and ``benchmarks/gpu.py --quick`` runs end to end (fresh
processes in which a ``sitecustomize`` makes ``tensorflow`` unimportable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from backend_compare import require_backend
from conftest import REPO

BLOCKER = """
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow' (made unimportable by the test)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
"""

SCRIPT = """
import sys
try:
    import tensorflow
    raise SystemExit("tensorflow was importable")
except ImportError:
    pass
import numpy as np
import keras_resnet
from keras_resnet import create_model
model = create_model("_tiny", input_shape=(16, 16, 3), classes=4)
assert model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0).shape == (2, 4)
assert "tensorflow" not in sys.modules
print("ok")
"""


def _env(tmp_path) -> dict:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    path = os.pathsep.join([str(tmp_path), str(REPO)])
    return dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3")


def test_import_and_create_model_without_tensorflow(tmp_path):
    require_backend("jax")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=_env(tmp_path), capture_output=True, text=True,
        timeout=300, cwd=str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.slow  # ResNet-50 and ResNet-20 steps in three precisions: minutes on a CPU
def test_gpu_benchmark_quick_runs_without_tensorflow(tmp_path):
    require_backend("jax")
    script = str(REPO / "benchmarks" / "gpu.py")
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--backends", "tensorflow,jax"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    # tensorflow is not importable, so only JAX ran, and found no GPU on this machine
    assert {r["backend"] for r in rows} == {"jax"} and rows[0]["gpus"] == []
    timed = [r for r in rows if "model" in r]
    assert {r["precision"] for r in timed} == {"float32", "mixed_float16", "mixed_bfloat16"}
    assert all(r["images_per_s"] > 0 for r in timed), timed
    checks = {r["precision"]: r for r in rows if r.get("check") == "digits"}
    assert set(checks) == {"float32", "mixed_float16", "mixed_bfloat16"}
    assert all(c["finite"] and c["logits_dtype"] == "float32" for c in checks.values())
    assert checks["mixed_float16"]["loss_scale"] > 0  # Keras' LossScaleOptimizer
    assert "images/s" in proc.stdout and "soundness" in proc.stdout  # the table
