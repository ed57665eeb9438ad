"""Tests for keras_resnet.training: config, schedules, factories, callbacks, train()."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import REPO
from training_helpers import synthetic

from keras_resnet import training as T
from keras_resnet.optimizers import EpochStepDecay, WarmUp

ROOT = str(REPO)


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    # the package, and tests/ for the scripts that import training_helpers
    tests = os.path.join(ROOT, "tests")
    env["PYTHONPATH"] = os.pathsep.join([ROOT, tests, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


# --- config and recipes -------------------------------------------------------------


def test_recipes_match_the_papers():
    he = T.get_recipe("he2015_cifar")
    assert (he.optimizer, he.learning_rate, he.momentum, he.batch_size) == ("sgd", 0.1, 0.9, 128)
    assert he.weight_decay == 1e-4 and he.decay_at == (0.5, 0.75) and he.decay_factor == 0.1
    im = T.get_recipe("imagenet_step", batch_size=1024)
    assert im.peak_learning_rate == pytest.approx(0.4)
    assert im.warmup_epochs == 5 and im.epochs == 90
    assert [round(f * 90) for f in im.decay_at] == [30, 60, 80]
    cos = T.get_recipe("cosine", use_ema=True)
    assert cos.schedule == "cosine" and cos.label_smoothing == 0.1 and cos.use_ema
    # the Keras transfer-learning guide: the new head first, then the backbone at a lower rate
    ft = T.get_recipe("fine_tune")
    assert (ft.head_epochs, ft.unfreeze, ft.backbone_lr_scale) == (5, "all", 0.1)
    assert ft.schedule == "cosine" and ft.warmup_epochs == 1 and ft.head_epochs < ft.epochs
    recipes = {"he2015_cifar", "imagenet_step", "cosine", "fast", "digits", "fine_tune"}
    assert set(T.list_recipes()) == recipes


def test_digits_recipe_is_the_digits_default():
    fast, digits = T.get_recipe("fast"), T.get_recipe("digits")
    # same optimizer and schedule as fast; longer, at 16x16, with shifts, smoothing and EMA
    assert (digits.optimizer, digits.schedule, digits.batch_size) == ("sgdw", "cosine", 64)
    assert (digits.epochs, digits.augment, digits.label_smoothing, digits.use_ema) == (
        50,
        "mnist",
        0.1,
        True,
    )
    assert digits.image_size == (16, 16) and fast.image_size is None
    assert digits.validation_fraction == 0.0 and fast.validation_fraction == 0.1
    assert (fast.epochs, fast.augment, fast.use_ema) == (15, "auto", False)
    assert T.default_recipe("digits") == "digits"
    assert T.default_recipe("cifar10") == T.default_recipe(object()) == "fast"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "lamb"}, "optimizer='lamb'"),
        ({"precision": "fp8"}, "precision='fp8'"),
        ({"strategy": "horovod"}, "strategy='horovod'"),
        ({"schedule": "linear"}, "schedule='linear'"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": -8}, "batch_size=-8"),
        ({"learning_rate": 0}, "learning_rate=0"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
        ({"decay_at": (0.75, 0.5)}, "decay_at"),
        ({"warmup_epochs": 6, "epochs": 5}, "warmup_epochs"),
        ({"jit_compile": "yes"}, "jit_compile"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.TrainConfig(**kwargs)


def test_config_roundtrip_and_unknowns():
    cfg = T.get_recipe("fast", epochs=3)
    assert T.TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(TypeError, match="epochz"):
        cfg.replace(epochz=3)
    with pytest.raises(ValueError, match="recipe='fsat'.*did you mean 'fast'|did you mean 'fast'"):
        T.get_recipe("fsat")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        T.load_config_file("missing.json")


# --- schedules ----------------------------------------------------------------------


def test_step_schedule_by_epoch_fraction_and_warmup():
    cfg = T.TrainConfig(epochs=8, decay_at=(0.5, 0.75), warmup_epochs=1, learning_rate=0.2)
    lr = T.make_schedule(cfg, steps_per_epoch=10)
    values = [float(lr(s)) for s in (0, 4, 9, 39, 40, 59, 60, 79)]
    assert values == pytest.approx([0.02, 0.1, 0.2, 0.2, 0.02, 0.02, 0.002, 0.002], rel=1e-5)


def test_cosine_schedule_and_constant():
    cfg = T.TrainConfig(schedule="cosine", epochs=10, learning_rate=0.1)
    lr = T.make_schedule(cfg, steps_per_epoch=10)
    assert float(lr(0)) == pytest.approx(0.1)
    assert float(lr(50)) == pytest.approx(0.05, rel=1e-4)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-7)
    assert T.make_schedule(T.TrainConfig(schedule="constant"), 5) == 0.1
    with pytest.raises(ValueError, match="steps_per_epoch"):
        T.make_schedule(cfg, steps_per_epoch=0)


def test_schedules_serialize():
    lr = WarmUp(EpochStepDecay(0.1, [1.0, 2.0], steps_per_epoch=4), warmup_steps=3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lr))
    assert isinstance(restored, WarmUp) and isinstance(restored.after, EpochStepDecay)
    for step in (0, 2, 5, 9):
        assert float(restored(step)) == pytest.approx(float(lr(step)))
    with pytest.raises(ValueError, match="warmup_steps=-1"):
        WarmUp(0.1, warmup_steps=-1)


# --- factories ----------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "sgdw"])
def test_weight_decay_on_kernels_only(optimizer):
    inputs = keras.Input((3,))
    outputs = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(2, name="fc")(inputs))
    model = keras.Model(inputs, outputs)
    cfg = T.TrainConfig(
        optimizer=optimizer, schedule="constant", learning_rate=1.0, momentum=0.0, weight_decay=0.1
    )
    opt = T.make_optimizer(cfg, steps_per_epoch=1)
    variables = model.trainable_variables
    for v in variables:
        v.assign(np.ones(v.shape, "float32"))
    opt.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    after = {v.path: float(np.asarray(v).ravel()[0]) for v in variables}
    assert after["fc/kernel"] == pytest.approx(0.9)
    assert after["fc/bias"] == after["bn/gamma"] == after["bn/beta"] == 1.0


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_weight_decay_steps_like_pytorch(nesterov):
    """ "sgd" with weight decay takes torch.optim.SGD(weight_decay=...)'s steps; "sgdw"
    (Keras' decoupled decay) does not, with the same numbers."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype("float32")
    grads = rng.normal(size=(6, 4, 3)).astype("float32")
    cfg = T.TrainConfig(
        schedule="constant", learning_rate=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.05
    )

    def keras_steps(optimizer: str) -> np.ndarray:
        kernel = keras.Variable(start, name="kernel")
        opt = T.make_optimizer(cfg.replace(optimizer=optimizer), steps_per_epoch=1)
        for g in grads:
            opt.apply([g], [kernel])
        return np.asarray(kernel)

    weight = torch.nn.Parameter(torch.tensor(start))
    ref = torch.optim.SGD([weight], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.05)
    for g in grads:
        weight.grad = torch.tensor(g)
        ref.step()
    expected = weight.detach().numpy()
    np.testing.assert_allclose(keras_steps("sgd"), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(keras_steps("sgdw") - expected).max() > 1e-3


def test_l2sgd_survives_save_and_load_in_a_fresh_process(tmp_path):
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    T.compile_model(net, T.TrainConfig(weight_decay=3e-4, nesterov=True), steps_per_epoch=2)
    net.fit(np.ones((4, 3), "float32"), np.zeros(4, "int32"), epochs=1, verbose=0)
    net.save(tmp_path / "m.keras")
    code = textwrap.dedent(
        f"""
        import keras
        import keras_resnet  # registers the optimizer, as it does the layers
        opt = keras.saving.load_model({str(tmp_path / "m.keras")!r}).optimizer
        print(type(opt).__name__, opt.l2, opt.nesterov, int(opt.iterations))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["L2SGD", "0.0003", "True", "1"]


def test_loss_and_metrics():
    with pytest.raises(ValueError, match="one_hot"):
        T.make_loss(T.TrainConfig(label_smoothing=0.1))
    loss = T.make_loss(T.TrainConfig(label_smoothing=0.1), one_hot=True)
    assert loss.label_smoothing == 0.1
    assert [m.name for m in T.make_metrics(one_hot=True, top_k=5)] == ["accuracy", "top5"]
    assert isinstance(T.make_optimizer(T.get_recipe("cosine", use_ema=True), 3).use_ema, bool)


def test_make_callbacks(tmp_path):
    cfg = T.TrainConfig(early_stopping_patience=3)
    cbs = T.make_callbacks(cfg, tmp_path, initial_best=0.5)
    names = [type(c).__name__ for c in cbs]
    assert names == [
        "LearningRateLogger",
        "StopOnNaN",
        "EarlyStopping",
        "HistoryCSV",
        "ModelCheckpoint",
        "BackupAndRestore",
        "TensorBoard",
    ]
    early = cbs[2]
    assert early.restore_best_weights and early.patience == 3
    assert cbs[4].best == 0.5 and cbs[4].save_best_only


def test_read_history_dedupes_and_plot(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,2.0,NA\n1,1.5,1.4\n1,1.0,0.9\n")
    rows = T.read_history(path)
    assert [r["epoch"] for r in rows] == [0, 1] and rows[1]["loss"] == 1.0
    assert "val_loss" not in rows[0]
    png = T.plot_history(rows, tmp_path / "c.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="empty"):
        T.plot_history([], tmp_path / "d.png")


def test_plot_history_leaves_pyplot_backend_alone(tmp_path):
    # A notebook's inline backend must survive train(): plot_history must not switch the
    # process-wide backend (it used to call matplotlib.use("Agg")).
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # any non-Agg backend that works headless
    try:
        png = T.plot_history([{"epoch": 0, "loss": 1.0}], tmp_path / "c.png")
        assert matplotlib.get_backend() == "svg"
        assert open(png, "rb").read(4) == b"\x89PNG"
    finally:
        matplotlib.use(before)


# --- precision and strategy ---------------------------------------------------------


def test_precision_auto_and_scope():
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        assert T.resolve_precision("auto") == "float32"
        assert T.resolve_jit_compile("auto") is False
    before = keras.mixed_precision.dtype_policy().name
    with T.precision_scope("mixed_float16"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    assert keras.mixed_precision.dtype_policy().name == before
    assert model.layers[0].compute_dtype == "float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="precision='half'"):
        T.resolve_precision("half")


def test_strategy_names():
    assert T.get_strategy("none").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="strategy='gpus'"):
        T.get_strategy("gpus")
    os.environ.pop("TF_CONFIG", None)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        T.get_strategy("multi_worker")


# --- train() ------------------------------------------------------------------------

TINY = T.get_recipe("fast", epochs=2, batch_size=16, warmup_epochs=0, learning_rate=0.05)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run") / "run")
    result = T.train("_tiny", synthetic(), TINY, output_dir=out, verbose=0)
    return out, result


def test_export_run_writes_the_finished_runs_serving_model(finished_run, tmp_path):
    import shutil

    from keras_resnet.export import export_run

    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    path = export_run(run)
    assert path == str(run / "saved_model") and (run / "saved_model" / "saved_model.pb").is_file()
    meta = json.loads((run / "saved_model" / "keras_resnet_export.json").read_text())
    info = json.loads((run / "data_info.json").read_text())
    assert meta["mean"] == pytest.approx(info["mean"]) and meta["std"] == pytest.approx(info["std"])
    with pytest.raises(FileExistsError):
        export_run(run)


def test_train_writes_the_run_folder(finished_run):
    out, result = finished_run
    for name in (
        "config.json",
        "data_info.json",
        "history.csv",
        "tensorboard",
        "best.keras",
        "model.keras",
        "curves.png",
        "summary.json",
    ):
        assert os.path.exists(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "saved_model"))  # export_run writes it
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["epochs_completed"] == 2 and summary["precision"] == "float32"
    assert summary["test_accuracy"] == pytest.approx(result.summary["test_accuracy"])
    assert {"tensorflow", "keras", "python"} <= set(summary["versions"])
    assert summary["images_per_s"] > 0
    rows = T.read_history(os.path.join(out, "history.csv"))
    assert len(rows) == 2 and rows[0]["learning_rate"] == pytest.approx(0.025)  # cosine, half way
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["run"]["train_config"] == TINY.to_dict()
    # the final model (with its registered schedule) loads back and predicts the same
    loaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    x = next(iter(synthetic().test))[0]
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-5
    )


def test_finished_run_is_not_redone_and_different_run_refused(finished_run, capsys):
    out, _ = finished_run
    mtime = os.path.getmtime(os.path.join(out, "model.keras"))
    again = T.train("_tiny", synthetic(), TINY, output_dir=out, verbose=0)
    assert "already finished" in capsys.readouterr().out
    assert again.summary["epochs_completed"] == 2
    assert os.path.getmtime(os.path.join(out, "model.keras")) == mtime
    before = sorted(os.listdir(out))
    with pytest.raises(FileExistsError, match="different run.*epochs: 2 -> 3"):
        T.train("_tiny", synthetic(), TINY.replace(epochs=3), output_dir=out, verbose=0)
    assert sorted(os.listdir(out)) == before


def test_bad_inputs_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="Unknown model name"):
        T.train("resnet_nope", synthetic(), TINY, output_dir=tmp_path / "a")
    assert not (tmp_path / "a" / "config.json").exists()
    with pytest.raises(TypeError, match="config"):
        T.train("_tiny", synthetic(), {"epochs": 1})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.keras").write_text("mine")
    with pytest.raises(FileExistsError, match="no config.json"):
        T.train("_tiny", synthetic(), TINY, output_dir=tmp_path / "b")
    assert (tmp_path / "b" / "model.keras").read_text() == "mine"


def test_multi_worker_refuses_unsupported_before_the_cluster(tmp_path, monkeypatch):
    # Unreachable ports: reaching get_strategy would hang, so the refusals come first.
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    for name in ("multi_worker", "auto"):
        with pytest.raises(ValueError, match="BackupAndRestore needs keras `model.fit`"):
            T.train(
                "_tiny",
                synthetic(),
                TINY.replace(strategy=name),
                output_dir=tmp_path / "r",
                callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "b"))],
            )
    assert not (tmp_path / "r").exists()
    cfg = TINY.replace(strategy="multi_worker")
    run = {
        "model": "_tiny",
        "model_kwargs": {},
        "dataset": "Datasets:synthetic",
        "data_kwargs": {},
        "train_config": cfg.to_dict(),
    }
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "config.json").write_text(json.dumps({"run": run}))
    with pytest.raises(ValueError, match="cannot resume an unfinished run"):
        T.train("_tiny", synthetic(), cfg, output_dir=tmp_path / "u")  # worker 1: read only
    assert os.listdir(tmp_path / "u") == ["config.json"]


def test_is_chief(monkeypatch):
    from keras_resnet.training.distributed_loop import is_chief

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()
    workers = {"worker": ["a:1", "b:2"]}
    for task, chief in [
        ({"type": "worker", "index": 0}, True),
        ({"type": "worker", "index": 1}, False),
    ]:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers, "task": task}))
        assert is_chief() is chief
    with_chief = {"cluster": dict(workers, chief=["c:3"]), "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(with_chief))
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", "{oops")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        is_chief()


def test_custom_loop_matches_fit():
    """fit_distributed (the multi-worker loop) under the default strategy == model.fit."""
    import tensorflow as tf

    from keras_resnet.training.distributed_loop import evaluate_distributed, fit_distributed

    data = synthetic()
    results = []
    for use_loop in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(4, 3, use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=T.make_optimizer(TINY, 4), loss=T.make_loss(TINY), metrics=["accuracy"]
        )
        callbacks = [T.LearningRateLogger()]
        if use_loop:
            history = fit_distributed(
                model,
                data.train,
                epochs=2,
                validation_data=data.validation,
                callbacks=callbacks,
                verbose=0,
            )
            scores = evaluate_distributed(model, data.test, strategy=tf.distribute.get_strategy())
        else:
            fit = model.fit(
                data.train,
                validation_data=data.validation,
                epochs=2,
                callbacks=callbacks,
                verbose=0,
            ).history
            history = [{k: v[i] for k, v in fit.items()} for i in range(2)]
            scores = model.evaluate(data.test, verbose=0, return_dict=True)
        results.append((model.get_weights(), history, scores))
    (w_fit, h_fit, s_fit), (w_loop, h_loop, s_loop) = results
    for a, b in zip(w_fit, w_loop, strict=True):  # BN moving statistics included
        np.testing.assert_allclose(a, b, atol=1e-6)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose([h[key] for h in h_loop], [h[key] for h in h_fit], rtol=1e-5)
    assert s_loop["accuracy"] == pytest.approx(s_fit["accuracy"])
    assert s_loop["loss"] == pytest.approx(s_fit["loss"], rel=1e-5)


def test_custom_loop_rejects_bad_input(tmp_path):
    from keras_resnet.training.distributed_loop import fit_distributed

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    with pytest.raises(ValueError, match="uncompiled"):
        fit_distributed(model, synthetic().train, epochs=1)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="epochs=0"):
        fit_distributed(model, synthetic().train, epochs=0)
    stop = keras.callbacks.EarlyStopping(monitor="loss", min_delta=100.0, patience=0)
    history = fit_distributed(model, synthetic().train, epochs=5, callbacks=[stop], verbose=0)
    assert len(history) == 2  # the second epoch did not improve by min_delta
    with pytest.raises(ValueError, match="BackupAndRestore"):
        fit_distributed(
            model,
            synthetic().train,
            epochs=1,
            callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path))],
        )


def test_nan_loss_stops_with_epoch_and_step(tmp_path):
    # A learning rate of 1e30 overflows the weights in step 1, so step 2's loss is NaN.
    # (NaN *inputs* are no test of this on TF CPU: oneDNN's fused BatchNorm + ReLU maps
    # NaN to 0, so the loss stays finite; the data pipeline refuses NaN pixels anyway.)
    diverging = TINY.replace(learning_rate=1e30)
    with pytest.raises(T.NonFiniteLossError, match="epoch 1, step 2"):
        T.train("_tiny", synthetic(), diverging, output_dir=tmp_path / "r", verbose=0)
    assert not (tmp_path / "r" / "summary.json").exists()
    assert not (tmp_path / "r" / "model.keras").exists()


def test_evaluate_run_folder_and_model(finished_run):
    out, result = finished_run
    scores = T.evaluate(out, synthetic())
    assert scores["accuracy"] == pytest.approx(result.summary["test_accuracy"])
    assert scores["examples"] == 32
    with pytest.raises(FileNotFoundError, match="model.keras"):
        T.evaluate(os.path.join(out, "nope"), synthetic())
    with pytest.raises(ValueError, match="split='dev'"):
        T.evaluate(result.model, synthetic(), split="dev")


def test_a_recipe_image_size_must_match_prepared_datasets(tmp_path):
    with pytest.raises(ValueError, match=r"8x8 images.*image_size=\(16, 16\)"):
        T.train("_tiny", synthetic(), TINY.replace(image_size=16), output_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    result = T.train("_tiny", synthetic(), TINY.replace(epochs=1, image_size=8), verbose=0)
    assert len(result.history) == 1


def test_train_without_output_and_without_validation():
    result = T.train("_tiny", synthetic(validation=False), TINY.replace(epochs=1), verbose=0)
    assert result.output_dir is None and len(result.history) == 1
    assert "learning_rate" in result.history[0]


_RESUME_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path[:0] = [{root!r}]
    import keras
    from keras_resnet import training as T

    class Kill(keras.callbacks.Callback):  # SIGKILL after training step `kill_step`
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    # digits is shuffled and augmented anew every epoch (preset "mnist")
    cfg = T.get_recipe("fast", epochs=3, batch_size=128, warmup_epochs=0, tensorboard=False,
                       use_ema=sys.argv[3] == "ema", augment="mnist")
    T.train("_tiny", "digits", cfg, output_dir=sys.argv[1], verbose=0, callbacks=[Kill()])
    """
)


@pytest.mark.parametrize("ema", ["ema", "no_ema"])
def test_resume_after_kill_9_at_a_random_step(tmp_path, ema):
    # 3 epochs of 10 steps (digits: 1,293 training images, batch 128); the instant is
    # drawn anew each run and named in the messages.
    kill_step = random.randint(1, 29)
    out, straight = str(tmp_path / "run"), str(tmp_path / "straight")
    script = _RESUME_SCRIPT.format(root=ROOT)

    def run(folder, step):
        return subprocess.run(
            [sys.executable, "-c", script, folder, str(step), ema],
            env=_env(),
            timeout=240,
            capture_output=True,
            text=True,
        )

    first = run(out, kill_step)
    assert first.returncode == -9, (kill_step, first.stderr[-2000:])
    second, third = run(out, 0), run(straight, 0)
    assert second.returncode == 0 and third.returncode == 0, (kill_step, second.stderr[-2000:])
    # bit for bit: the weights, the history and the test accuracy of an uninterrupted run
    np.testing.assert_array_equal(
        _weights(os.path.join(out, "model.keras")),
        _weights(os.path.join(straight, "model.keras")),
        err_msg=f"killed after step {kill_step}",
    )
    rows, expected = (T.read_history(os.path.join(f, "history.csv")) for f in (out, straight))
    assert [r["loss"] for r in rows] == [r["loss"] for r in expected], kill_step
    summaries = [json.load(open(os.path.join(f, "summary.json"))) for f in (out, straight)]
    assert summaries[0]["test_accuracy"] == summaries[1]["test_accuracy"], kill_step
    assert summaries[0]["epochs_completed"] == 3


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_resnet import training as T
    from training_helpers import synthetic

    strategy = T.get_strategy("mirrored")
    try:
        T.check_batch_size(15, strategy)
        bad = None
    except ValueError as err:
        bad = str(err)
    cfg = T.get_recipe("fast", epochs=1, batch_size=16, strategy="mirrored", tensorboard=False)
    result = T.train("_tiny", synthetic(), cfg, verbose=0)
    print(json.dumps({{"replicas": strategy.num_replicas_in_sync, "bad": bad,
                      "trained": result.summary["replicas"],
                      "loss": result.history[0]["loss"]}}))
    """
)


def test_mirrored_strategy_on_two_logical_cpus():
    script = _MIRRORED_SCRIPT.format(root=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_env(), timeout=240, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["replicas"] == 2 and record["trained"] == 2
    assert "batch_size=15" in record["bad"] and "(2)" in record["bad"]
    assert np.isfinite(record["loss"])


_WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    import keras
    from keras_resnet import training as T
    from training_helpers import synthetic

    def net():
        # No BatchNormalization: its batch statistics are per replica (8 images on
        # each of two workers, 16 on one), so BN models legitimately differ.
        return keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax"),
        ])

    cfg = T.get_recipe("fast", epochs=2, batch_size=16, warmup_epochs=0, learning_rate=0.05,
                       strategy=sys.argv[1])
    T.get_strategy(cfg.strategy)  # before any tensor: TF configures collectives at startup
    result = T.train(net, synthetic(), cfg, output_dir=sys.argv[2], verbose=0)
    print(json.dumps({{"replicas": result.summary["replicas"],
                      "loss": [h["loss"] for h in result.history]}}))
    """
)


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _weights(path):
    return np.concatenate([w.ravel() for w in keras.saving.load_model(path).get_weights()])


def _run_workers(script: str, argv, n: int = 2) -> list[tuple[int, str, str]]:
    """Run ``script`` as ``n`` MultiWorkerMirroredStrategy workers on 127.0.0.1 (bounded).

    ``argv(index)`` gives each worker's arguments; returns (returncode, stdout, stderr)
    per worker. Workers still running after the timeout are killed.
    """
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(n)]}
    procs = []
    for index in range(n):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", script, *argv(index)],
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


@pytest.mark.slow
def test_multi_worker_matches_one_worker(tmp_path):
    """Two MultiWorkerMirroredStrategy workers on localhost == model.fit on one worker."""
    script = _WORKER_SCRIPT.format(root=ROOT)
    run_dir = str(tmp_path / "mw")
    workers = _run_workers(script, lambda index: ["multi_worker", run_dir])
    single = subprocess.run(
        [sys.executable, "-c", script, "none", str(tmp_path / "one")],
        env=_env(),
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    reports = []
    for returncode, stdout, stderr in workers:
        assert returncode == 0, stderr[-3000:]
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    one = json.loads(single.stdout.strip().splitlines()[-1])
    assert one["replicas"] == 1 and [r["replicas"] for r in reports] == [2, 2]
    # Float32 sums in another order (two half-batch gradients all-reduced instead of
    # one full-batch gradient) differ by a few ulps per step: measured <= 2e-7 here.
    for report in reports:
        np.testing.assert_allclose(report["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(
        _weights(os.path.join(run_dir, "model.keras")),
        _weights(str(tmp_path / "one" / "model.keras")),
        atol=1e-5,
    )
    # Only the chief wrote the run folder, with the usual files except backup/.
    history = T.read_history(os.path.join(run_dir, "history.csv"))
    np.testing.assert_allclose([h["loss"] for h in history], one["loss"], rtol=1e-5)
    assert all("learning_rate" in h and "val_accuracy" in h for h in history)
    names = set(os.listdir(run_dir))
    assert {"config.json", "model.keras", "best.keras", "summary.json"} <= names
    assert "backup" not in names
    summary = json.loads(open(os.path.join(run_dir, "summary.json")).read())
    # tf.distribute.MultiWorkerMirroredStrategy is the class CollectiveAllReduceStrategy.
    assert summary["strategy"] == "CollectiveAllReduceStrategy" and summary["replicas"] == 2


_BN_WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {root!r} + "/tests"]
    import keras
    import numpy as np
    from keras_resnet import training as T
    from keras_resnet import create_model
    from training_helpers import synthetic

    strategy = T.get_strategy("multi_worker")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
        model.compile(optimizer=T.make_optimizer(T.TrainConfig(epochs=2), 4),
                      loss=T.make_loss(T.TrainConfig()))
    T.fit_distributed(model, synthetic().train, epochs=2, strategy=strategy, verbose=0)
    np.save(sys.argv[1], np.concatenate([w.ravel() for w in model.get_weights()]))
    """
)


@pytest.mark.slow
def test_multi_worker_batchnorm_statistics_agree(tmp_path):
    """BN moving statistics (aggregation "none" in Keras 3) are averaged across workers."""
    script = _BN_WORKER_SCRIPT.format(root=ROOT)
    workers = _run_workers(script, lambda index: [str(tmp_path / f"w{index}.npy")])
    for returncode, _, stderr in workers:
        assert returncode == 0, stderr[-3000:]
    # Without the per-epoch average the moving statistics differ by ~0.09 (measured).
    np.testing.assert_array_equal(np.load(tmp_path / "w0.npy"), np.load(tmp_path / "w1.npy"))


def test_pretrained_preprocessing_reaches_the_data_and_the_run_folder(tmp_path, monkeypatch):
    """train(weights=run folder) normalizes with the checkpoint's mean/std
    (data_info.json of the source run) and records the DataConfig in config.json."""
    from keras_resnet import create_model
    from keras_resnet.data.sources import load_digits_source
    from keras_resnet.saving import save_keras_model
    from keras_resnet.training import run as run_module

    built = []  # every Datasets the run builds; the last one is the one it trains on

    def recording(*args, **kwargs):
        built.append(get_datasets(*args, **kwargs))
        return built[-1]

    get_datasets = run_module.get_datasets
    monkeypatch.setattr(run_module, "get_datasets", recording)

    source = tmp_path / "source"
    source.mkdir()
    save_keras_model(create_model("_tiny", input_shape=(8, 8, 1)), source / "model.keras")
    info = {"name": "src", "num_classes": 10, "image_shape": [8, 8, 1], "num_examples": {}}
    (source / "data_info.json").write_text(json.dumps(dict(info, mean=[0.3], std=[0.2])))
    recipe = T.get_recipe("fast", epochs=1, batch_size=64, validation_fraction=0.0)
    out = tmp_path / "run"
    T.train("_tiny", "digits", recipe, output_dir=out, weights=str(source), verbose=0)
    data_info = json.loads((out / "data_info.json").read_text())
    assert (data_info["mean"], data_info["std"]) == ([0.3], [0.2])
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["data"]["batch_size"] == 64 and run["data"]["mean"] is None
    # the images the model saw: (pixel / 255 - 0.3) / 0.2, not the digits' own statistics
    assert built and (built[-1].info.mean, built[-1].info.std) == ((0.3,), (0.2,))
    x_test = load_digits_source().test.arrays[0].astype("float32")
    images, _ = next(iter(built[-1].test))
    np.testing.assert_allclose(
        images.numpy(), (x_test[: len(images)] / 255.0 - 0.3) / 0.2, rtol=1e-5, atol=1e-5
    )
