"""Saved work survives code changes: golden files written once load with today's code.

``tests/data/golden/`` holds files written by ``tests/data/golden/make_golden.py``: a
``.keras`` model with every custom layer, learning-rate schedule and the ``L2SGD``
optimizer, a ``model.weights.h5`` of a registry model, and a finished run folder's
``config.json`` and ``summary.json``. Each check runs in a fresh Python process that
imports only ``keras_resnet``, as a user who opens old files meets it. The registered
names of every serializable class are pinned too: they are written into every
``.keras`` file, so renaming one breaks loading.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"

# The name Keras writes into saved files for each class we register, and our class name.
REGISTERED = {
    "keras_resnet>EpochStepDecay": "EpochStepDecay",
    "keras_resnet>FusedBatchNormalization": "FusedBatchNormalization",
    "keras_resnet>GroupedConv2D": "GroupedConv2D",
    "keras_resnet>HighwayGate": "HighwayGate",
    "keras_resnet>L2SGD": "L2SGD",
    "keras_resnet>SpatialPyramidPooling": "SpatialPyramidPooling",
    "keras_resnet>TwoPhase": "TwoPhase",
    "keras_resnet>WarmUp": "WarmUp",
    "keras_resnet>ZeroPadShortcut": "ZeroPadShortcut",
}
SCHEDULES_AND_OPTIMIZER = {"EpochStepDecay", "L2SGD", "TwoPhase", "WarmUp"}


def _fresh(code: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=GOLDEN, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_serializable_class_keeps_its_registered_name():
    import keras_resnet  # noqa: F401 - importing the package registers the classes

    ours = {
        name: cls
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith("keras_resnet>")
    }
    assert {name: cls.__name__ for name, cls in ours.items()} == REGISTERED
    for name, cls in ours.items():
        assert keras.saving.get_registered_name(cls) == name
        assert keras.saving.get_registered_object(name) is cls


def test_every_layer_keras_file_loads_with_plain_keras_in_a_fresh_process():
    code = (
        "import json, keras, keras_resnet, numpy as np\n"
        "model = keras.saving.load_model('every_layer.keras', safe_mode=True)\n"
        "np.testing.assert_allclose(model.predict(np.load('every_layer_x.npy'), verbose=0),\n"
        "                           np.load('every_layer_y.npy'), rtol=1e-5, atol=1e-6)\n"
        "names = {keras.saving.get_registered_name(type(layer)) for layer in model.layers}\n"
        "opt = model.optimizer\n"
        "schedule = keras.optimizers.schedules.deserialize(opt.get_config()['learning_rate'])\n"
        "expected = json.load(open('every_layer.json'))\n"
        "assert int(opt.iterations.numpy()) == expected['iterations']\n"
        "rates = [float(schedule(s)) for s in expected['schedule_steps']]\n"
        "np.testing.assert_allclose(rates, expected['learning_rates'], rtol=1e-6)\n"
        "print(keras.saving.get_registered_name(type(opt)), type(schedule).__name__,\n"
        "      type(schedule.first).__name__, type(schedule.first.after).__name__)\n"
        "print(sorted(n for n in names if n.startswith('keras_resnet>')))\n"
    )
    lines = _fresh(code).splitlines()
    assert lines[-2] == "keras_resnet>L2SGD TwoPhase WarmUp EpochStepDecay"
    layers = [name for name in REGISTERED if name.split(">")[1] not in SCHEDULES_AND_OPTIMIZER]
    assert lines[-1] == str(sorted(layers))


def test_weights_file_loads_into_the_registry_model_in_a_fresh_process():
    code = (
        "import json, keras_resnet, numpy as np\n"
        "kwargs = json.load(open('weights_model.json'))\n"
        "kwargs['input_shape'] = tuple(kwargs['input_shape'])\n"
        "model = keras_resnet.create_model(kwargs.pop('name'), **kwargs)\n"
        "model.load_weights('model.weights.h5')\n"
        "np.testing.assert_allclose(model.predict(np.load('weights_x.npy'), verbose=0),\n"
        "                           np.load('weights_y.npy'), rtol=1e-5, atol=1e-6)\n"
        "print('weights loaded')\n"
    )
    assert _fresh(code).splitlines()[-1] == "weights loaded"


def test_finished_run_folder_reads_back_in_a_fresh_process():
    code = (
        "import json, keras_resnet\n"
        "run = json.load(open('run/config.json'))['run']\n"
        "config = keras_resnet.TrainConfig.from_dict(run['train_config'])\n"
        "assert config.to_dict() == run['train_config'], config.to_dict()\n"
        "data = keras_resnet.DataConfig.from_dict(run['data'])\n"
        "assert data.to_dict() == run['data'], data.to_dict()\n"
        "keras_resnet.get_record(run['model'])\n"
        "summary = json.load(open('run/summary.json'))\n"
        "assert summary['epochs_completed'] == config.epochs\n"
        "print(run['model'], run['dataset'], summary['trainable_params'])\n"
    )
    assert _fresh(code).splitlines()[-1] == "_tiny digits 4962"
