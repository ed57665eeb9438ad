"""Initialization: every layer draws its own kernel, and a seed fixes the draws."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO

_BUILD = """
import hashlib, sys, keras, numpy as np
import keras_resnet
import keras_resnet.models.resnet.builder  # imported before the seed, as the CLI does
keras.utils.set_random_seed(int(sys.argv[1]))
model = keras_resnet.create_model("resnet20", input_shape=(32, 32, 3))
digest = hashlib.sha256()
for w in model.weights:
    digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
print(digest.hexdigest())
"""


def _weights_digest(seed: int) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _BUILD, str(seed)],
        capture_output=True, text=True, cwd=REPO, check=True, timeout=300,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow  # fresh processes, 20-40 s
def test_same_seed_gives_same_initial_weights_in_fresh_processes():
    first, second, other = _weights_digest(123), _weights_digest(123), _weights_digest(7)
    assert first == second
    assert first != other


def test_same_shaped_kernels_start_different():
    keras.utils.set_random_seed(0)
    import keras_resnet

    model = keras_resnet.create_model("resnet20", input_shape=(32, 32, 3))
    kernels = [
        layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    by_shape: dict[tuple, list[np.ndarray]] = {}
    for k in kernels:
        by_shape.setdefault(k.shape, []).append(k)
    for shape, group in by_shape.items():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                assert not np.array_equal(group[i], group[j]), f"identical {shape} kernels"
