"""Shared test configuration: quiet TensorFlow, deterministic seeds, repo paths."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The real MNIST test set IDX files (t10k-images/labels-idx*-ubyte[.gz]), read through
# ``idx:PATH``; tests that need them skip when the folder is absent.
MNIST_ENV = "KERAS_RESNET_MNIST_T10K"
MNIST_DIR = Path(os.environ.get(MNIST_ENV) or REPO.parent / "shared" / "data" / "mnist-t10k")
HAVE_MNIST = any(MNIST_DIR.glob("t10k-labels-idx1-ubyte*"))
NO_MNIST = f"the MNIST t10k IDX files are absent from {MNIST_DIR} (set {MNIST_ENV}=FOLDER)"


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    policy = keras.mixed_precision.dtype_policy()
    yield
    keras.mixed_precision.set_dtype_policy(policy)
