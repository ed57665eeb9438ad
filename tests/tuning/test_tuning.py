"""ResNetHyperModel: the search space maps onto the builder; searches run with every tuner."""

from __future__ import annotations

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner as kt
import pytest

from keras_resnet import create_model
from keras_resnet.tuning import ResNetHyperModel, hyperparameter_names, trial_results

SHAPE = (8, 8, 1)
# A small, fast space: _tiny baseline, everything that costs time fixed or dropped.
FAST = {"batch_size": 64, "head_dropout": None, "dropout": None, "se_ratio": None}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[..., None] / 16.0).astype("float32")
    y = d.target.astype("int32")
    return (x[:256], y[:256]), (x[256:384], y[256:384])


def _hp(**values):
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def _layer_types(model):
    return {type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("baseline", ["_tiny", "resnet20", "plain20", "wrn16_8"])
def test_defaults_reproduce_baseline(baseline):
    hm = ResNetHyperModel(SHAPE, 10, baseline=baseline)
    model = hm.build(kt.HyperParameters())
    reference = create_model(baseline, input_shape=SHAPE, classes=10)
    assert model.count_params() == reference.count_params()
    assert [layer.name for layer in model.layers[1:]] == [
        layer.name for layer in reference.layers[1:]
    ]


def test_defaults_reproduce_resnext_baseline():
    hm = ResNetHyperModel((32, 32, 3), 10, baseline="resnext29_8x64d")
    assert hm.space["groups"].default == 8
    model = hm.build(kt.HyperParameters())
    reference = create_model("resnext29_8x64d", input_shape=(32, 32, 3), classes=10)
    assert model.count_params() == reference.count_params()


@pytest.mark.parametrize(
    "values, expect",
    [
        ({"block": "basic", "preact": False}, {"stage1_block1_conv2"}),
        ({"block": "bottleneck", "groups": 1}, {"stage1_block1_conv3"}),
        ({"block": "bottleneck", "groups": 4, "base_width": 16}, {"stage1_block1_conv3"}),
        ({"block": "basic", "preact": True}, {"post_bn"}),
        ({"block": "bottleneck", "preact": True}, {"post_bn", "stage1_block1_conv3"}),
    ],
)
def test_every_block_kind_builds(values, expect):
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny")
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.values[name] = value
    model = hm.build(hp)
    names = {layer.name for layer in model.layers}
    assert expect <= names
    arch = hm.architecture(hp)
    assert arch["block"] == values["block"]
    if values.get("groups", 1) > 1:
        conv = model.get_layer("stage1_block1_conv2")
        assert conv.groups == values["groups"]
        # timm's rule: int(width * base_width / 64) * groups channels in the 3x3 conv
        assert conv.filters == int(8 * values["base_width"] / 64) * values["groups"]


def test_architecture_knobs_reach_the_builder():
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space={"se_ratio": [0.0, 0.25]})
    hp = kt.HyperParameters()
    hp.values.update(
        stage1_depth=2,
        width_multiplier=2.0,
        shortcut="projection",
        drop_path_rate=0.1,
        dropout=0.2,
        se_ratio=0.25,
        head_dropout=0.1,
    )
    arch = hm.architecture(hp)
    assert arch["stage_depths"] == (2, 1)
    assert arch["stage_widths"] == (16, 32)
    assert (arch["shortcut"], arch["drop_path_rate"], arch["dropout"]) == ("projection", 0.1, 0.2)
    model = hm.build(hp)
    names = {layer.name for layer in model.layers}
    assert "stage1_block2_conv1" in names and "head_dropout" in names
    assert any("se" in name for name in names)
    assert model.get_layer("stage1_block1_conv1").filters == 16


def test_depth_family_and_plain_shortcut():
    hm = ResNetHyperModel(
        SHAPE,
        10,
        baseline="resnet20",
        search_space={"stage_depths": [(1, 1, 1), (2, 2, 2)], "shortcut": ["zero_pad", None]},
    )
    assert "stage1_depth" not in hm.space
    (cond,) = hm.space["drop_path_rate"].conditions
    assert (cond.name, list(cond.values)) == ("shortcut", ["zero_pad"])
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values.update(stage_depths="1-1-1", shortcut="none")
    arch = hm.architecture(hp)
    assert arch["stage_depths"] == (1, 1, 1) and arch["shortcut"] is None
    assert arch["drop_path_rate"] == 0.0  # inactive for plain networks


def test_overrides_fix_narrow_and_drop():
    hm = ResNetHyperModel(
        SHAPE,
        10,
        baseline="_tiny",
        search_space={
            "block": "bottleneck",
            "groups": [2, 4],
            "learning_rate": (0.01, 0.1, "log"),
            "stage1_depth": (1, 3, 1),
            "dropout": None,
            "stem_width": [8, 16],
        },
    )
    space = hm.space
    assert type(space["block"]).__name__ == "Fixed" and space["block"].value == "bottleneck"
    assert space["groups"].values == [2, 4] and space["groups"].default == 2
    assert type(space["learning_rate"]).__name__ == "Float"
    assert space["learning_rate"].sampling == "log"
    assert type(space["stage1_depth"]).__name__ == "Int"
    assert "dropout" not in space
    assert space["stem_width"].values == [8, 16]
    hp = kt.HyperParameters()
    model = hm.build(hp)
    assert hp.get("block") == "bottleneck" and "dropout" not in hp.values
    assert model.get_layer("stage1_block1_conv2").groups == 2
    names = hyperparameter_names(hm)
    assert "dropout" not in names and "stem_width" in names


@pytest.mark.parametrize(
    "space, match",
    [
        ({"blocks": ["basic"]}, "Unknown hyperparameter name"),
        ({"block": []}, "at least one choice"),
        ({"dropout": (0.3, 0.1)}, "min < max"),
        ({"learning_rate": (0.0, 0.1, "log")}, "log sampling needs min > 0"),
        ({"learning_rate": (0.001, 0.1, "cubic")}, "sampling must be one of"),
        ({"dropout": (0.0, 0.5, -0.1)}, "step must be positive"),
        ({"block": ["basic", 3]}, "one type"),
        ({"block": ["basic", "basic"]}, "duplicate"),
        ({"block": ["basic", "dense"]}, "`block` must be one of"),
        ({"shortcut": "E"}, "`shortcut` must be one of"),
        ({"dropout": [0.0, 1.5]}, r"`dropout` must be a finite number in \[0, 1\)"),
        ({"se_ratio": 2.0}, "se_ratio"),
        ({"stage1_depth": (0, 3)}, "sequence of ints >= 1"),
        ({"width_multiplier": [0.0, 1.0]}, "`width_multiplier` must be a finite number > 0"),
        ({"batch_size": [0, 32]}, "`batch_size` must be an int >= 1"),
        ({"schedule": ["cosine", "linear"]}, "schedule"),
        ({"optimizer": "lamb"}, "optimizer"),
        ({"groups": {"a": 1}}, "fixed value, a list of choices"),
        ({"stage_depths": [(2, 2, 2)]}, "same length"),
    ],
)
def test_bad_search_space_raises_before_search(space, match):
    with pytest.raises(ValueError, match=match):
        ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space=space)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Unknown model name"):
        ResNetHyperModel(SHAPE, 10, baseline="resnet21")
    with pytest.raises(ValueError, match="classes"):
        ResNetHyperModel(SHAPE, 0)
    with pytest.raises(TypeError, match="search_space"):
        ResNetHyperModel(SHAPE, 10, search_space=[("block", "basic")])
    with pytest.raises(ValueError, match="too small"):
        ResNetHyperModel((16, 16, 3), 10, baseline="resnet50")


@pytest.mark.parametrize("classes", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_binary_head(classes, digits):
    (x, y), (vx, vy) = digits
    y, vy = (y % 2).astype("float32"), (vy % 2).astype("float32")
    hm = ResNetHyperModel(SHAPE, classes, baseline="_tiny", search_space={"batch_size": 64})
    hp = _hp(label_smoothing=0.1)
    model = hm.build(hp)
    assert tuple(model.output.shape) == (None, 1) and hm.binary
    history = hm.fit(hp, model, x, y, validation_data=(vx, vy), epochs=1, verbose=0)
    assert 0.0 <= history.history["val_accuracy"][-1] <= 1.0
    assert history.history["fit_seconds"][-1] > 0


def test_fit_applies_recipe_and_label_smoothing(digits):
    (x, y), (vx, vy) = digits
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space=FAST)
    hp = _hp(label_smoothing=0.1, schedule="cosine", learning_rate=0.05, optimizer="sgd")
    model = hm.build(hp)
    history = hm.fit(hp, model, x, y, validation_data=(vx, vy), epochs=1, verbose=0)
    assert len(history.history["val_accuracy"]) == 1
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    lr = model.optimizer.learning_rate
    assert float(lr) < 0.05  # cosine decayed from the peak by the end of training


def test_fit_tf_data_rebatches(digits):
    import tensorflow as tf

    (x, y), (vx, vy) = digits
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(64)
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space={"batch_size": [64, 128]})
    hp = kt.HyperParameters()
    model = hm.build(hp)
    hp.values["batch_size"] = 64
    steps = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: steps.append(b))
    hm.fit(hp, model, train, validation_data=val, epochs=1, callbacks=[cb], verbose=0)
    assert len(steps) == 256 // 64


def test_augment_needs_a_data_callable(digits):
    (x, y), _ = digits
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space={"augment": ["none", "mnist"]})
    hp = kt.HyperParameters()
    with pytest.raises(kt.errors.FatalValueError, match="augment"):
        hm.fit(hp, hm.build(hp), x, y, epochs=1, verbose=0)


def _search(tuner, digits, **kwargs):
    (x, y), (vx, vy) = digits
    tuner.search(x, y, validation_data=(vx, vy), verbose=0, **kwargs)
    return trial_results(tuner)


@pytest.mark.parametrize("kind", ["random", "hyperband", "bayesian"])
def test_search_with_each_tuner(kind, digits, tmp_path):
    hm = ResNetHyperModel(
        SHAPE, 10, baseline="_tiny", search_space={**FAST, "learning_rate": [0.05, 0.1]}
    )
    common = {"objective": "val_accuracy", "directory": tmp_path, "project_name": kind, "seed": 1}
    if kind == "random":
        tuner = kt.RandomSearch(hm, max_trials=2, **common)
    elif kind == "hyperband":
        tuner = kt.Hyperband(hm, max_epochs=2, factor=2, hyperband_iterations=1, **common)
        tuner.oracle.max_trials = 3
    else:
        tuner = kt.BayesianOptimization(hm, max_trials=2, num_initial_points=1, **common)
    rows = _search(tuner, digits, epochs=1)
    done = [r for r in rows if r["status"] == "COMPLETED"]
    assert len(done) >= 2
    assert all(0.0 <= r["score"] <= 1.0 and r["seconds"] > 0 for r in done)
    assert rows[0]["score"] == max(r["score"] for r in done)
    best = tuner.get_best_hyperparameters()[0]
    assert best.get("learning_rate") in (0.05, 0.1)


def test_search_with_tf_data_and_strategy(digits, tmp_path):
    import tensorflow as tf

    (x, y), (vx, vy) = digits
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    val = tf.data.Dataset.from_tensor_slices((vx, vy)).batch(64)
    hm = ResNetHyperModel(
        SHAPE, 10, baseline="_tiny", search_space={**FAST, "preact": [False, True]}
    )
    tuner = kt.RandomSearch(
        hm,
        objective="val_accuracy",
        max_trials=1,
        directory=tmp_path,
        distribution_strategy=strategy,
        seed=0,
    )
    tuner.search(train, validation_data=val, epochs=1, verbose=0)
    (model,) = tuner.get_best_models(1)
    assert model.distribute_strategy is strategy
    assert trial_results(tuner)[0]["status"] == "COMPLETED"


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (not caught by KerasTuner) in the n-th trial's training."""

    calls = 0

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_train_begin(self, logs=None):
        type(self).calls += 1
        if type(self).calls == self.at:
            raise KeyboardInterrupt


def test_interrupted_search_resumes(digits, tmp_path):
    hm = ResNetHyperModel(
        SHAPE, 10, baseline="_tiny", search_space={**FAST, "preact": [False, True]}
    )

    def tuner():
        return kt.RandomSearch(
            hm, objective="val_accuracy", max_trials=2, directory=tmp_path, project_name="p", seed=3
        )

    first = tuner()
    _Interrupt.calls = 0
    with pytest.raises(KeyboardInterrupt):
        _search(first, digits, epochs=1, callbacks=[_Interrupt(at=2)])
    done_before = {r["trial"] for r in trial_results(first) if r["status"] == "COMPLETED"}
    assert len(done_before) == 1
    resumed = tuner()  # same directory, overwrite=False: reloads the oracle
    rows = _search(resumed, digits, epochs=1)
    done = {r["trial"] for r in rows if r["status"] == "COMPLETED"}
    assert done_before < done and len(done) == 2
    assert len(rows) == 2  # the interrupted trial was re-run, not lost or duplicated


def test_fit_with_data_callable_searches_augmentation():
    from keras_resnet.data import get_datasets

    calls = []

    def data(**kwargs):
        calls.append(kwargs)
        return get_datasets("digits", seed=0, **kwargs)

    hm = ResNetHyperModel(
        SHAPE, 10, baseline="_tiny", search_space={**FAST, "augment": ["none", "mnist"]}
    )
    hp = _hp(augment="mnist", batch_size=256, label_smoothing=0.1)
    history = hm.fit(hp, hm.build(hp), data, epochs=1, verbose=0)
    assert calls == [{"batch_size": 256, "augment": "mnist", "one_hot": True}]
    assert 0.0 <= history.history["val_accuracy"][0] <= 1.0


def test_train_config_carries_the_trial():
    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", recipe="cosine")
    defaults = hm.train_config(kt.HyperParameters(), epochs=4)
    assert (defaults.recipe, defaults.schedule) == ("cosine", "cosine")
    assert defaults.label_smoothing == 0.1
    assert defaults.warmup_epochs == 2  # the recipe's 5 warm-up epochs, capped at half the run
    cfg = hm.train_config(_hp(learning_rate=0.02, batch_size=32, schedule="step"), epochs=3)
    assert (cfg.learning_rate, cfg.batch_size, cfg.schedule, cfg.epochs) == (0.02, 32, "step", 3)
    with pytest.raises(TypeError, match="recipe"):
        ResNetHyperModel(SHAPE, 10, recipe=3)


@pytest.mark.parametrize("block", [None, "basic"])
def test_resnext_knobs_only_with_bottleneck_blocks(block):
    space = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space={"block": block}).space
    assert "groups" not in space and "base_width" not in space
    full = ResNetHyperModel(SHAPE, 10, baseline="_tiny").space
    (cond,) = full["groups"].conditions
    assert (cond.name, list(cond.values)) == ("block", ["bottleneck"])


def _costliest(hm, block):
    """The hyperparameters of the space's most expensive network with ``block``."""
    hp = kt.HyperParameters()
    hm.declare_hyperparameters(hp)
    hp.values["block"] = block
    for p in hp.space:
        values = getattr(p, "values", None)
        if hasattr(p, "max_value") and isinstance(p.max_value, int):
            hp.values[p.name] = p.max_value
        elif p.name in ("groups", "base_width", "width_multiplier", "se_ratio", "stem_width"):
            hp.values[p.name] = max(values)
    return hp


@pytest.mark.parametrize("shape", [SHAPE, (32, 32, 3)])
def test_default_space_is_bounded_by_the_baseline_cost(shape):
    # The default space around resnet20 admitted a 32-group ResNeXt of
    # base width 64 at twice the width and depth (~80x the baseline's MACs).
    from keras_resnet.analysis import count_flops
    from keras_resnet.tuning import COST_FACTOR

    hm = ResNetHyperModel(shape, 10, baseline="resnet20")
    baseline = count_flops(create_model("resnet20", input_shape=shape, classes=10))
    worst = max(count_flops(hm.build(_costliest(hm, b))) for b in ("basic", "bottleneck"))
    assert worst <= COST_FACTOR * baseline, worst / baseline


def test_trial_budgets_skip_and_stop(digits, tmp_path, capsys):
    from keras_resnet.tuning import make_tuner

    (x, y), (vx, vy) = digits
    common = {"baseline": "_tiny", "search_space": {**FAST, "preact": [False, True]}}
    skip = ResNetHyperModel(SHAPE, 10, max_macs=1000, **common)
    tuner = make_tuner("random", skip, max_trials=2, max_epochs=1, directory=tmp_path / "s")
    rows = _search(tuner, digits, epochs=1)
    assert [r["status"] for r in rows] == ["SKIPPED", "SKIPPED"]  # no early end
    assert all(r["macs"] > 1000 and r["score"] is None for r in rows)
    stop = ResNetHyperModel(SHAPE, 10, max_trial_seconds=1e-9, **common)
    tuner = make_tuner("random", stop, max_trials=1, max_epochs=1, directory=tmp_path / "t")
    tuner.search(x, y, validation_data=(vx, vy), epochs=3, verbose=1)
    (row,) = trial_results(tuner)
    assert row["status"] == "STOPPED" and 0.0 <= row["score"] <= 1.0
    assert re.search(
        r"Trial cost: [0-9.]+ M MACs per image, [0-9.]+x the baseline _tiny",
        capsys.readouterr().out,
    )
    with pytest.raises(ValueError, match="max_macs"):
        ResNetHyperModel(SHAPE, 10, max_macs=0)


def test_space_function_adds_and_fixes_hyperparameters():
    def space(hp):
        hp.Fixed("block", "bottleneck")
        hp.Choice("groups", [2, 4], default=4)

    hm = ResNetHyperModel(SHAPE, 10, baseline="_tiny", search_space=space)
    assert hm.space["groups"].values == [2, 4] and not hm.space["groups"].conditions
    hp = kt.HyperParameters()
    model = hm.build(hp)
    assert model.get_layer("stage1_block1_conv2").groups == 4
    with pytest.raises(ValueError, match="Unknown hyperparameter name"):
        ResNetHyperModel(SHAPE, 10, search_space=lambda hp: hp.Int("blocks", 1, 3))


def test_trial_with_ema_keeps_the_weights_that_validate_better(capsys):
    """A use_ema trial checks raw against averaged weights on its validation data."""
    import numpy as np

    from keras_resnet.training import get_recipe

    recipe = get_recipe("fast", epochs=1, batch_size=8, use_ema=True)
    hm = ResNetHyperModel((8, 8, 1), 3, baseline="_tiny", recipe=recipe)
    hp = kt.HyperParameters()
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 3
    hm.fit(hp, hm.build(hp), x, y, validation_data=(x[:8], y[:8]), epochs=1, verbose=0)
    out = capsys.readouterr().out
    assert "no data to check the average" not in out
    assert re.search(r"EMA: kept the (raw|averaged) weights \(validation", out), out
