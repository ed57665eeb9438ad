"""Saved models load in a fresh process after ``import keras_resnet``.

Each check runs in a new Python process as the first thing it does, as a user meets
it: the process that saved the model has registered the custom layers, a new one has
only what ``import keras_resnet`` registers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_resnet import create_model, train
from keras_resnet.training import TrainConfig

# _tiny models with every custom layer: option-A zero-pad shortcuts (stage 2), the
# spatial-pyramid head, highway gates and grouped convolutions.
ALL_LAYERS = {"shortcut": "zero_pad", "pooling": "spp"}


def _fresh(code_or_args: str | list[str], cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_every_custom_layer_loads_with_plain_keras_in_a_fresh_process(tmp_path):
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype="float32")
    zero_pad = create_model("_tiny", input_shape=(16, 16, 3), **ALL_LAYERS)
    highway = create_model("_tiny", input_shape=(16, 16, 3), shortcut="highway", groups=2)
    classes = {type(layer).__name__ for m in (zero_pad, highway) for layer in m.layers}
    custom = {"ZeroPadShortcut", "HighwayGate", "SpatialPyramidPooling", "GroupedConv2D"}
    assert custom <= classes
    # every layer class of keras_resnet.layers is in one of the two models
    import keras_resnet.layers as ours

    assert len(ours.__all__) == 5 and set(ours.__all__) <= classes
    for model in (zero_pad, highway):
        model.save(tmp_path / f"{model.name}_{len(model.layers)}.keras")
        np.save(tmp_path / f"{model.name}_{len(model.layers)}.npy", model.predict(x, verbose=0))
    np.save(tmp_path / "x.npy", x)
    code = (
        "import glob, sys, keras_resnet, keras, numpy as np\n"
        "assert not {'keras_resnet.training', 'keras_resnet.data'} & set(sys.modules)\n"
        "x = np.load('x.npy')\n"
        "for path in sorted(glob.glob('*.keras')):\n"
        "    model = keras.saving.load_model(path, safe_mode=True)\n"
        "    np.testing.assert_array_equal(model.predict(x, verbose=0),"
        " np.load(path[:-6] + '.npy'))\n"
        "    print('loaded', path)\n"
    )
    assert _fresh(code, tmp_path).stdout.count("loaded") == 2


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run folder: one short epoch of _tiny with zero-pad shortcuts on digits,
    upsampled to 16x16 as the ``digits`` recipe does."""
    out = tmp_path_factory.mktemp("loading") / "run"
    config = TrainConfig(epochs=1, batch_size=256, use_ema=False, image_size=16)
    train(
        "_tiny", "digits", config, output_dir=out, model_kwargs={"shortcut": "zero_pad"}, verbose=0
    )
    assert isinstance(keras.saving.load_model(out / "model.keras"), keras.Model)
    return out


def test_evaluate_run_folder_is_the_first_thing_a_process_does(run_dir):
    result = _fresh(
        [sys.executable, "-m", "keras_resnet", "evaluate", str(run_dir), "--json"], run_dir
    )
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert scores["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)


def test_evaluate_keras_file_is_the_first_thing_a_process_does(run_dir):
    # The model takes 16x16 images; the 8x8 digits are resized to the model's input.
    argv = [sys.executable, "-m", "keras_resnet", "evaluate", "model.keras", "--dataset", "digits"]
    scores = json.loads(_fresh(argv + ["--json"], run_dir).stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert scores["examples"] == 360
    assert scores["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_resnet1202_saves_and_loads_in_a_fresh_process(tmp_path):
    # About 4,200 layers on the longest path: Keras' recursive graph walk needs the
    # recursion limit that building it and keras_resnet.load_keras_model set
    # (keras_resnet.models.depth); import keras_resnet leaves the limit alone.
    model = create_model("resnet1202", input_shape=(32, 32, 3), classes=3)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32")
    model.save(tmp_path / "deep.keras")
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    np.save(tmp_path / "x.npy", x)
    code = (
        "import keras_resnet, keras, numpy as np\n"
        "m = keras_resnet.load_keras_model('deep.keras')\n"
        "np.testing.assert_array_equal(m.predict(np.load('x.npy'), verbose=0), np.load('y.npy'))\n"
        "print(len(m.layers))\n"
    )
    assert int(_fresh(code, tmp_path, timeout=1800).stdout.split()[-1]) == len(model.layers)
