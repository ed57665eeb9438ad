"""The model code is backend-neutral: build and train on JAX and PyTorch (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from backend_compare import require_backend

SCRIPT = """
import numpy as np, keras
from keras_resnet import create_model
assert keras.backend.backend() == {backend!r}
for kw in [dict(), dict(shortcut="highway"), dict(shortcut="zero_pad", preact=True),
           dict(pooling="spp", input_shape=(None, None, 3)),
           dict(drop_path_rate=0.2, se_ratio=0.25, groups=2)]:
    kw.setdefault("input_shape", (16, 16, 3))
    model = create_model("_tiny", **kw)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.rand(4, 16, 16, 3).astype("float32")
    loss = float(np.asarray(model.train_on_batch(x, np.array([0, 1, 2, 3]))))
    assert np.isfinite(loss), kw
    assert model.predict(x, verbose=0).shape == (4, 10)
print("ok")
"""


@pytest.mark.parametrize("backend, module", [("jax", "jax"), ("torch", "torch")])
def test_models_build_and_train_on_other_backends(backend, module):
    require_backend(backend)
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(backend=backend)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
