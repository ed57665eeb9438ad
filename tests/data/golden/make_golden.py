"""Write the golden saved files of ``tests/test_golden_files.py``.

The files in this folder were written once by this script and are committed; the test
loads them with the code as it is now, so a change that breaks saved work (a renamed
registered class, a renamed layer, a changed run-folder format) fails there. Run it
again only when such a break is intended: ``python tests/data/golden/make_golden.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_resnet  # noqa: E402
from keras_resnet.layers import (  # noqa: E402
    FusedBatchNormalization,
    GroupedConv2D,
    HighwayGate,
    SpatialPyramidPooling,
    ZeroPadShortcut,
)
from keras_resnet.optimizers import (  # noqa: E402
    L2SGD,  # noqa: E402
    EpochStepDecay,
    TwoPhase,
    WarmUp,
)

HERE = Path(__file__).resolve().parent
SCHEDULE_STEPS = list(range(10))
# create_model arguments of the weights file: highway shortcuts, grouped convolutions
# and the spatial-pyramid head, so every custom layer's weights are named by the builder.
WEIGHTS_MODEL = {"name": "_tiny", "input_shape": [16, 16, 3], "classes": 5,
                 "shortcut": "highway", "groups": 2, "pooling": "spp"}  # fmt: skip


def every_layer_model() -> keras.Model:
    """A small functional model with every custom layer, compiled with every schedule."""
    inputs = keras.Input((8, 8, 4), name="images")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem_conv")(inputs)
    x = FusedBatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = GroupedConv2D(8, 3, groups=2, padding="same", name="grouped_conv")(x)
    carry = ZeroPadShortcut(filters=16, strides=2, name="zero_pad")(x)
    transform = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="transform")(x)
    gate = keras.layers.Conv2D(16, 1, activation="sigmoid", name="gate")(x[:, ::2, ::2, :])
    x = HighwayGate(name="highway")([gate, transform, carry])
    x = SpatialPyramidPooling((1, 2), name="spp")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs, name="every_layer")
    steps = EpochStepDecay(0.1, boundaries=[1, 2], steps_per_epoch=2, factor=0.5)
    schedule = TwoPhase(WarmUp(steps, warmup_steps=2), 0.01, switch_step=6)
    model.compile(
        optimizer=L2SGD(l2=1e-4, learning_rate=schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 4), dtype="float32")
    model = every_layer_model()
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, batch_size=2, verbose=0)  # optimizer state
    model.save(HERE / "every_layer.keras")
    np.save(HERE / "every_layer_x.npy", x)
    np.save(HERE / "every_layer_y.npy", model.predict(x, verbose=0))
    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    expected = {
        "iterations": int(model.optimizer.iterations.numpy()),
        "learning_rates": [float(schedule(s)) for s in SCHEDULE_STEPS],
        "schedule_steps": SCHEDULE_STEPS,
    }
    (HERE / "every_layer.json").write_text(json.dumps(expected, indent=1) + "\n")

    keras.utils.set_random_seed(1)
    kwargs = dict(WEIGHTS_MODEL)
    tiny = keras_resnet.create_model(kwargs.pop("name"), **kwargs)
    tiny.save_weights(HERE / "model.weights.h5")
    images = rng.random((2, *WEIGHTS_MODEL["input_shape"]), dtype="float32")
    np.save(HERE / "weights_x.npy", images)
    np.save(HERE / "weights_y.npy", tiny.predict(images, verbose=0))
    (HERE / "weights_model.json").write_text(json.dumps(WEIGHTS_MODEL, indent=1) + "\n")

    # A finished run: one short epoch of _tiny on digits; config.json and summary.json kept.
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        config = keras_resnet.TrainConfig(epochs=1, batch_size=256, use_ema=False, image_size=16)
        model_kwargs = {"shortcut": "zero_pad"}
        keras_resnet.train(
            "_tiny", "digits", config, output_dir=out, model_kwargs=model_kwargs,
            verbose=0,
        )  # fmt: skip
        (HERE / "run").mkdir(exist_ok=True)
        for name in ("config.json", "summary.json"):
            shutil.copy(out / name, HERE / "run" / name)
    print("written to", HERE, file=sys.stderr)


if __name__ == "__main__":
    main()
