"""EMA of the weights: warm-up, BN statistics, keep-the-better check, resume."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
from training_helpers import synthetic

from keras_resnet import training as T
from keras_resnet.training.ema import ModelEMA, ema_decay, selection_data, weights_report


class _RawTestAccuracy(keras.callbacks.Callback):
    """Test accuracy of the raw weights after the last epoch (before any EMA swap)."""

    def __init__(self, data, epochs):
        super().__init__()
        self.data, self.epochs, self.accuracy = data, epochs, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.accuracy = self.model.evaluate(self.data, verbose=0, return_dict=True)["accuracy"]


def test_short_ema_run_is_not_worse_than_raw(tmp_path):
    # 8 optimizer steps: Keras' optimizer EMA (fixed 0.99, no BN statistics) gave
    # 0.56 test accuracy here while the raw weights reached 1.0.
    data = synthetic(validation=False)
    cfg = T.get_recipe(
        "fast", epochs=2, batch_size=16, warmup_epochs=0, learning_rate=0.05, use_ema=True,
        tensorboard=False,
    )  # fmt: skip
    raw = _RawTestAccuracy(data.test, cfg.epochs)
    out = str(tmp_path / "run")
    result = T.train("_tiny", data, cfg, output_dir=out, verbose=0, callbacks=[raw])
    assert raw.accuracy >= 0.9
    assert result.summary["test_accuracy"] >= raw.accuracy - 1 / 32
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["weights"] in ("ema", "raw")
    check = summary["weights_check"]
    assert check["split"] == "train" and check["metric"] == "accuracy"
    kept, other = check[summary["weights"]], check["ema" if summary["weights"] == "raw" else "raw"]
    assert (kept["accuracy"], -kept["loss"]) >= (other["accuracy"], -other["loss"])
    # the saved model is the one that was kept and evaluated
    loaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    for a, b in zip(loaded.weights, result.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # no validation split: no all-NA val_* columns in history.csv
    with open(os.path.join(out, "history.csv")) as f:
        header = f.readline().strip().split(",")
    assert header and not [c for c in header if c.startswith("val_")], header
    assert not os.path.exists(os.path.join(out, "backup"))  # ema.npz went with the backup


def test_decay_warms_up():
    assert ema_decay(0.99, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.99, 100) == pytest.approx(101 / 110)
    assert ema_decay(0.99, 10_000) == 0.99 == ema_decay(0.99, 1, warmup=False)
    with pytest.raises(ValueError, match="decay=1.5"):
        ema_decay(1.5, 1)
    with pytest.raises(ValueError, match="monitor='top5'"):
        ModelEMA(monitor="top5")


class _Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([keras.ops.convert_to_numpy(w).copy() for w in self.model.weights])


def _bn_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_average_follows_the_warm_up_rule_and_includes_bn_statistics():
    model = _bn_model()
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32") + 3.0
    y = (x[:, 0] > 3).astype("int32")
    start = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    record, ema = _Record(), ModelEMA(0.9, verbose=0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[record, ema])
    expected = start
    for step, weights in enumerate(record.steps, start=1):
        d = ema_decay(0.9, step)
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights, strict=True)]
    names = [w.path for w in model.weights]
    assert any("moving_mean" in n for n in names) and any("moving_variance" in n for n in names)
    for name, want, got in zip(names, expected, ema._average, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-5, err_msg=name)
    # no data to check the average on: the raw weights stay
    assert ema.report == {"weights": "raw", "weights_check": None}
    for w, raw in zip(model.weights, record.steps[-1], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), raw)


@pytest.mark.parametrize("raw_accuracy, kept", [(0.9, "raw"), (0.5, "ema"), (0.7, "ema")])
def test_keeps_the_weights_that_validate_better(raw_accuracy, kept):
    model = _bn_model()
    x = np.random.default_rng(2).normal(size=(8, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    seen = []

    def evaluate(net, data):  # first call: raw weights, second: the average
        seen.append([keras.ops.convert_to_numpy(w).copy() for w in net.weights])
        return {"accuracy": raw_accuracy if len(seen) == 1 else 0.7, "loss": 1.0}

    ema = ModelEMA(0.9, warmup=False, selection_data=(x, y), evaluate_fn=evaluate, verbose=0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[ema])
    assert ema.report["weights"] == kept
    assert weights_report([ema])["weights_check"]["raw"]["accuracy"] == raw_accuracy
    final = [keras.ops.convert_to_numpy(w) for w in model.weights]
    for w, want in zip(final, seen[0 if kept == "raw" else 1], strict=True):
        np.testing.assert_array_equal(w, want)
    assert not np.array_equal(seen[0][0], seen[1][0])  # the average differs from raw


def test_a_broken_average_is_not_kept():
    # No warm-up and a slow decay: the average is still almost the initial weights.
    data = synthetic(validation=False)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )  # fmt: skip
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(1)
    check, split = selection_data(data)
    ema = ModelEMA(0.999, warmup=False, selection_data=check, selection_split=split, verbose=0)
    model.fit(data.train, epochs=3, verbose=0, callbacks=[ema])
    report = ema.report["weights_check"]
    assert split == "train" and ema.report["weights"] == "raw"
    assert report["raw"]["accuracy"] > report["ema"]["accuracy"]
    assert model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"] == 1.0


def test_average_is_saved_each_epoch_and_restored_on_resume(tmp_path, capsys):
    path = str(tmp_path / "backup" / "ema.npz")
    model = _bn_model()
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    first = ModelEMA(0.9, state_path=path, verbose=0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[first])
    with np.load(path) as saved:
        assert int(saved["epochs"]) == 2 and int(saved["step"]) == 4
        average = [saved[f"v{i}"] for i in range(len(model.weights))]
    for want, got in zip(average, first._average, strict=True):
        np.testing.assert_array_equal(want, keras.ops.convert_to_numpy(got))
    # a resumed run (BackupAndRestore restored the weights and optimizer step 4)
    # continues the same average, even when no epoch is left to run
    second = ModelEMA(0.9, state_path=path, verbose=1)
    second.set_model(model)
    second.on_train_begin()
    for want, got in zip(average, second._average, strict=True):
        np.testing.assert_array_equal(want, keras.ops.convert_to_numpy(got))
    assert second._step == 4 and capsys.readouterr().out == ""
    # weights from another step (e.g. the backup's previous state): restart from them
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    third = ModelEMA(0.9, state_path=path, verbose=1)
    third.set_model(model)
    third.on_train_begin()
    assert "no saved average for step 6; restarting" in capsys.readouterr().out
    for w, got in zip(model.weights, third._average, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(w), keras.ops.convert_to_numpy(got)
        )


def test_make_callbacks_adds_the_average_last(tmp_path):
    cfg = T.TrainConfig(use_ema=True, tensorboard=False)
    cbs = T.make_callbacks(cfg, tmp_path, ema_check=("data", "validation"))
    assert isinstance(cbs[-1], ModelEMA) and cbs[-1].selection_data == "data"
    assert cbs[-1].state_path == os.path.join(str(tmp_path), "backup", "ema.npz")
    assert not any(isinstance(c, ModelEMA) for c in T.make_callbacks(T.TrainConfig()))
    assert not T.make_optimizer(cfg, 1).use_ema  # Keras' fixed-momentum EMA stays off


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt  # after the backup and the average of the second epoch


def test_interrupted_ema_run_resumes_to_the_uninterrupted_result(tmp_path):
    """A real resume: train() stopped after epoch 2 and run again ends with the average,
    the check and the kept weights of an uninterrupted run."""
    cfg = T.get_recipe(
        "fast", epochs=3, batch_size=16, warmup_epochs=0, tensorboard=False, use_ema=True
    )
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        T.train("_tiny", synthetic(), cfg, output_dir=run, verbose=0,
                callbacks=[_Interrupt()])  # fmt: skip
    assert (run / "backup" / "ema.npz").is_file()
    resumed = T.train("_tiny", synthetic(), cfg, output_dir=run, verbose=0)
    straight = T.train("_tiny", synthetic(), cfg, output_dir=tmp_path / "straight", verbose=0)
    assert resumed.summary["epochs_this_call"] == 1
    assert resumed.summary["weights"] == straight.summary["weights"]
    checks = resumed.summary["weights_check"], straight.summary["weights_check"]
    for which in ("raw", "ema"):
        got, want = checks[0][which], checks[1][which]
        assert got["accuracy"] == want["accuracy"], which
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5, err_msg=which)
    for got, want in zip(resumed.model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
