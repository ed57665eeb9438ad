"""DenseNet: blocks, config, zoo counts, keras.applications weights, the toolkit paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from model_checks import trainable_count
from param_reference import densenet_reference_count

from keras_resnet import from_keras_applications
from keras_resnet.analysis import count_flops, model_table
from keras_resnet.models.densenet.blocks import dense_block, dense_layer, transition
from keras_resnet.models.densenet.builder import DenseNet, DenseNetConfig
from keras_resnet.models.factory import create_model
from keras_resnet.models.registry import get_record, records
from keras_resnet.weights import load_keras_applications_weights

DENSENETS = [r.name for r in records(include_private=True) if r.family == "densenet"]
# Every name's build, exact count, train step and safe-mode round trip: tests/models/test_zoo.py.
# Huang et al. 2017 Table 2 (C10 models), in millions as printed.
PAPER_MILLIONS = {
    "densenet40_k12": 1.0,
    "densenet_bc100_k12": 0.8,
    "densenet_bc250_k24": 15.3,
    "densenet_bc190_k40": 25.6,
}
TINY = (16, 16, 3)


def _spec(name: str) -> dict:
    record = get_record(name)
    return {**record.arch, "classes": record.classes}


def test_registry_holds_the_issue_variants():
    expected = {"densenet121", "densenet169", "densenet201", "densenet161", "densenet264"}
    expected |= set(PAPER_MILLIONS) | {"_tiny_densenet"}
    assert set(DENSENETS) == expected
    for name in DENSENETS:
        assert get_record(name).builder is DenseNet


@pytest.mark.parametrize("name", DENSENETS)
def test_reference_summation_matches_published_counts(name):
    count = densenet_reference_count(_spec(name))
    assert count == get_record(name).params, get_record(name).params_source
    if name in PAPER_MILLIONS:
        assert abs(count / 1e6 - PAPER_MILLIONS[name]) < 0.05
    cfg = DenseNetConfig(**get_record(name).arch)
    digits = "".join(c for c in name.split("_k")[0] if c.isdigit())
    if digits:  # the name's depth is the paper's L ...
        # ... except Table 1's DenseNet-264, whose blocks 6-12-64-48 give 2 * 130 + 5 = 265.
        assert cfg.depth == int(digits) + (name == "densenet264")


def test_builder_count_without_bottleneck_and_compression():
    arch = {"growth_rate": 6, "block_sizes": (3, 2), "stem": "cifar", "stem_width": 16}
    arch |= {"bottleneck_width": 0, "compression": 1.0, "classes": 7}
    model = DenseNet(**arch, input_shape=TINY)
    assert trainable_count(model) == densenet_reference_count(arch)
    assert model.get_layer("stage1_transition_conv").filters == 16 + 3 * 6


@pytest.mark.slow
@pytest.mark.parametrize("depth", [121, 169, 201])
def test_keras_applications_has_the_same_counts(depth):
    ref = getattr(keras.applications, f"DenseNet{depth}")(weights=None, input_shape=(32, 32, 3))
    model = create_model(f"densenet{depth}", input_shape=(32, 32, 3))
    assert trainable_count(model) == trainable_count(ref) == get_record(f"densenet{depth}").params
    assert model.count_params() == ref.count_params()
    # keras-hub's preset metadata counts the backbone with BN statistics, no classifier.
    hub = {121: 7_037_504, 169: 12_642_880, 201: 18_321_984}[depth]
    backbone = create_model(f"densenet{depth}", include_top=False, input_shape=(32, 32, 3))
    assert backbone.count_params() == hub


def test_dense_layer_block_and_transition_shapes_and_names():
    inputs = keras.Input((8, 8, 10))
    y = dense_layer(inputs, 6, name="a")
    z = dense_layer(inputs, 6, bottleneck_width=0, dropout=0.2, name="b")
    b = dense_block(inputs, 3, 6, name="s")
    t = transition(b, compression=0.5, name="t")
    model = keras.Model(inputs, [y, z, b, t])
    assert [tuple(o.shape) for o in model.outputs] == [
        (None, 8, 8, 16),
        (None, 8, 8, 16),
        (None, 8, 8, 28),
        (None, 4, 4, 14),
    ]
    assert model.get_layer("a_conv1").kernel.shape == (1, 1, 10, 24)  # bottleneck 4k
    assert model.get_layer("a_conv2").kernel.shape == (3, 3, 24, 6)
    assert model.get_layer("b_conv1").kernel.shape == (3, 3, 10, 6)  # no bottleneck
    assert model.get_layer("s_layer3_conv1").kernel.shape == (1, 1, 22, 24)  # 10 + 2k inputs
    assert isinstance(model.get_layer("b_dropout1"), keras.layers.Dropout)
    assert isinstance(model.get_layer("t_pool"), keras.layers.AveragePooling2D)
    # the concatenation keeps the input maps unchanged, in front
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 10)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0)[2][..., :10], x)


BAD = [
    ({"growth_rate": 0}, "growth_rate=0"),
    ({"block_sizes": ()}, r"block_sizes=\(\)"),
    ({"block_sizes": (6, "12")}, r"block_sizes=\(6, '12'\)", TypeError),
    ({"stem": "deep"}, "stem='deep'"),
    ({"stem_width": -1}, "stem_width=-1"),
    ({"bottleneck_width": -4}, "bottleneck_width=-4"),
    ({"bottleneck_width": 2.5}, "bottleneck_width=2.5", TypeError),
    ({"compression": 0}, r"compression=0\b"),
    ({"compression": 1.5}, "compression=1.5"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"bn_momentum": 1.0}, "bn_momentum=1.0"),
]


# a value of the wrong type raises TypeError, a value out of range ValueError
BAD = [(*b, ValueError) if len(b) == 2 else b for b in BAD]


@pytest.mark.parametrize("arch, match, error", BAD, ids=[next(iter(b[0])) for b in BAD])
def test_bad_architecture_arguments_raise_before_building(arch, match, error):
    with pytest.raises(error, match=f"Received: {match}"):
        DenseNet(**arch)
    with pytest.raises(error, match=f"Received: {match}"):
        create_model("_tiny_densenet", **arch)


def test_bad_head_and_unknown_arguments():
    with pytest.raises(TypeError, match="Unknown architecture argument.*groups"):
        create_model("_tiny_densenet", groups=2)
    with pytest.raises(ValueError, match="Received: pooling='sum'"):
        create_model("_tiny_densenet", pooling="sum")
    with pytest.raises(ValueError, match="at least 32"):  # imagenet stem, 4 blocks
        create_model("densenet121", input_shape=(16, 16, 3))
    with pytest.raises(TypeError, match="DenseNetConfig"):
        DenseNet(config={"growth_rate": 12})


def test_config_round_trip_and_overrides():
    cfg = DenseNetConfig(**get_record("densenet_bc100_k12").arch)
    assert DenseNetConfig.from_kwargs(**cfg.to_dict()) == cfg
    assert json.loads(json.dumps(cfg.to_dict()))["block_sizes"] == [16, 16, 16]
    assert (cfg.depth, cfg.num_features, cfg.total_stride) == (100, 342, 4)
    model = DenseNet(config=cfg, growth_rate=4, block_sizes=(1, 1), input_shape=TINY)
    assert model.get_layer("stage1_layer1_conv2").filters == 4


def test_model_table_groups_dense_blocks_with_their_transition():
    rows = model_table("_tiny_densenet", input_shape=TINY)
    assert [r["name"] for r in rows] == ["stem", "stage1", "stage2", "head", "total"]
    by = {r["name"]: r for r in rows}
    assert by["stage1"]["output_shape"] == (8, 8, 8)  # (8 + 2*4) * 0.5 channels, pooled
    assert by["stage2"]["output_shape"] == (8, 8, 16)
    # MACs by hand: stem 3x3x3x8 at 16x16; stage 1 at 16x16: 1x1 (8->16, 12->16),
    # 3x3 (16->4) twice, transition 1x1 16->8; stage 2 at 8x8 likewise; classifier 16x10.
    stem = 16 * 16 * 27 * 8
    stage1 = 16 * 16 * (8 * 16 + 12 * 16 + 2 * 144 * 4 + 16 * 8)
    stage2 = 8 * 8 * (8 * 16 + 12 * 16 + 2 * 144 * 4)
    macs = (by["stem"]["macs"], by["stage1"]["macs"], by["stage2"]["macs"])
    assert macs == (stem, stage1, stage2)
    assert by["total"]["trainable_params"] == get_record("_tiny_densenet").params


def test_mixed_precision_keeps_a_float32_head():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = create_model("_tiny_densenet", input_shape=TINY)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("stage1_layer2_concat").output.dtype == "float16"
    assert model.output.dtype == "float32"
    x = np.random.default_rng(0).normal(size=(2, *TINY)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(-1), 1.0, atol=1e-3)


def _randomize(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            w.assign(rng.normal(0, 0.1, shape).astype("float32"))


def test_keras_applications_weights_copy_one_to_one():
    # keras.applications' own DenseNet builder, with small blocks (same code path).
    from keras.src.applications.densenet import DenseNet as KerasDenseNet

    ref = KerasDenseNet([1, 2, 1, 1], weights=None, input_shape=(32, 32, 3), classes=5)
    _randomize(ref)
    model = DenseNet(
        block_sizes=(1, 2, 1, 1), bn_epsilon=1.001e-5, input_shape=(32, 32, 3), classes=5
    )
    load_keras_applications_weights(model, ref)
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    other = DenseNet(block_sizes=(1, 2, 1, 1), growth_rate=16, input_shape=(32, 32, 3), classes=5)
    before = [w.numpy().copy() for w in other.weights]
    with pytest.raises(ValueError, match="Shape mismatch"):
        load_keras_applications_weights(other, ref)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, other.weights))


@pytest.mark.slow
def test_densenet121_from_keras_applications_gives_equal_outputs():
    model = from_keras_applications("DenseNet121", weights=None, input_shape=(64, 64, 3))
    assert model.name == "densenet121"
    ref = keras.applications.DenseNet121(weights=None, input_shape=(64, 64, 3))
    _randomize(ref, seed=2)
    load_keras_applications_weights(model, ref)
    x = np.random.default_rng(3).normal(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def _legacy_h5(model: keras.Model, path) -> str:
    """``model``'s weights in keras.applications' download format (legacy HDF5, by name)."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, model)
    return str(path)


def test_keras_applications_h5_loads_through_weights_with_its_bn_and_preprocessing(tmp_path):
    # The weights= path read DenseNet layer names with the ResNet rules (every tensor
    # "extra"), left torchvision's BN epsilon/momentum and gave ResNet preprocessing.
    from keras.src.applications.densenet import DenseNet as KerasDenseNet

    ref = KerasDenseNet([1, 2, 1, 1], weights=None, input_shape=(32, 32, 3), classes=5)
    _randomize(ref, seed=4)
    path = _legacy_h5(ref, tmp_path / "densenet.h5")
    # What train("densenet121", weights=...) does: the record's builder, named densenet121.
    model = DenseNet(block_sizes=(1, 2, 1, 1), name="densenet121", input_shape=(32, 32, 3),
                     classes=5, weights=path)  # fmt: skip
    bn = model.get_layer("stage2_layer1_bn1")
    assert (bn.epsilon, bn.momentum) == (1.001e-5, 0.99)
    prep = model.pretrained_preprocessing
    assert (prep.mode, prep.mean, prep.std) == (
        "torch",
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    x = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    kept = DenseNet(block_sizes=(1, 2, 1, 1), name="densenet121", input_shape=(32, 32, 3),
                    classes=5, bn_epsilon=1e-3, weights=path)  # fmt: skip
    assert kept.get_layer("stage2_layer1_bn1").epsilon == 1e-3  # the caller's BN wins


@pytest.mark.slow
def test_create_model_densenet121_loads_a_keras_applications_h5_in_a_fresh_process(tmp_path):
    ref = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3))
    _randomize(ref, seed=6)
    path = _legacy_h5(ref, tmp_path / "densenet121.h5")
    x = np.random.default_rng(7).normal(size=(2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    x_path, y_path = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    code = textwrap.dedent(f"""
        import numpy as np
        from keras_resnet import create_model
        model = create_model("densenet121", input_shape=(32, 32, 3), weights={path!r})
        assert model.get_layer("post_bn").epsilon == 1.001e-5
        np.save({y_path!r}, model.predict(np.load({x_path!r}), verbose=0))
    """)  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
    np.testing.assert_allclose(np.load(y_path), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # fresh processes, 20-40 s
def test_cli_trains_a_densenet_and_it_loads_and_exports_in_a_fresh_process(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "keras_resnet", "train", "--model", "_tiny_densenet"]
    cmd += ["--epochs", "1", "--batch-size", "256", "--output", str(out), "--quiet", "--no-export"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 1
    check = textwrap.dedent(
        f"""
        import keras, tensorflow as tf
        import keras_resnet
        model = keras.saving.load_model({str(out / "model.keras")!r}, safe_mode=True)
        assert model.get_layer("stage2_layer2_concat").output.shape[-1] == 16
        sm = keras_resnet.export_saved_model(model, {str(tmp_path / "sm")!r})  # verifies
        served = tf.saved_model.load(sm).signatures["serving_default"]
        probs = served(images=tf.zeros((1, 8, 8, 1), tf.uint8))["probabilities"]
        tflite = keras_resnet.export_tflite(model, {str(tmp_path / "m.tflite")!r})  # verifies
        print("OK", tuple(probs.shape), tflite.endswith(".tflite"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "OK" and done.stdout.split()[-1] == "True"


def test_hypermodel_maps_hyperparameters_onto_the_builder():
    import keras_tuner as kt

    from keras_resnet.tuning.densenet import DenseNetHyperModel

    hm = DenseNetHyperModel(TINY, 5, baseline="_tiny_densenet")
    hp = kt.HyperParameters()
    baseline = hm.build(hp)
    assert trainable_count(baseline) == trainable_count(
        create_model("_tiny_densenet", input_shape=TINY, classes=5)
    )
    assert set(hp.values) == {
        "growth_rate", "depth_multiplier", "compression", "bottleneck", "dropout", "learning_rate"
    }  # fmt: skip

    def space(hp):
        hp.Fixed("growth_rate", 8)
        hp.Fixed("depth_multiplier", 1.5)
        hp.Fixed("compression", 1.0)
        hp.Fixed("bottleneck", False)

    model = DenseNetHyperModel(TINY, 5, baseline="_tiny_densenet", search_space=space).build(
        kt.HyperParameters()
    )
    assert model.get_layer("stage1_layer3_conv1").kernel.shape == (3, 3, 8 + 2 * 8, 8)
    assert model.get_layer("stage1_transition_conv").filters == 8 + 3 * 8
    with pytest.raises(ValueError, match="baseline='resnet20'"):
        DenseNetHyperModel(TINY, 5, baseline="resnet20")
    with pytest.raises(TypeError, match="`search_space` of DenseNetHyperModel must be a func"):
        DenseNetHyperModel(TINY, 5, baseline="_tiny_densenet", search_space={"growth_rate": 8})


def test_hypermodel_fits_and_applies_the_mac_budget_as_resnets_do():
    import keras_tuner as kt

    from keras_resnet.tuning.densenet import DenseNetHyperModel

    hm = DenseNetHyperModel(TINY, 3, baseline="_tiny_densenet", recipe="fast")
    hp = kt.HyperParameters()
    x, y = np.random.default_rng(0).random((16, *TINY), "float32"), np.arange(16) % 3
    history = hm.fit(hp, hm.build(hp), x, y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert history.history["macs"][0] == count_flops(hm.build(kt.HyperParameters()))
    over = DenseNetHyperModel(TINY, 3, baseline="_tiny_densenet", max_macs=1)
    with pytest.raises(kt.errors.FailedTrialError, match="over the MAC budget"):
        over.fit(hp, over.build(hp), x, y, epochs=1, verbose=0)


# ---- torchvision / timm DenseNet checkpoints (.safetensors), against a numpy reference ----
TV_TINY = {"growth_rate": 4, "block_config": (2, 2, 2, 2), "num_init_features": 8}


def _tv_tiny_model(classes: int = 7) -> keras.Model:
    return DenseNet(growth_rate=4, block_sizes=(2, 2, 2, 2), stem_width=8, classes=classes,
                    input_shape=(32, 32, 3), classifier_activation=None)  # fmt: skip


def _save(tmp_path, sd) -> str:
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors")
    path = str(tmp_path / "model.safetensors")
    safetensors_numpy.save_file(sd, path)
    return path


def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


@pytest.mark.parametrize("old_names", [False, True], ids=["norm1", "norm.1"])
def test_torchvision_densenet_safetensors_match_reference(tmp_path, old_names):
    from densenet_reference import torchvision_densenet_forward, torchvision_densenet_state_dict

    from keras_resnet.weights import load_weights

    sd = torchvision_densenet_state_dict(**TV_TINY, classes=7)
    path = _save(tmp_path, torchvision_densenet_state_dict(**TV_TINY, classes=7,
                                                           old_names=old_names))  # fmt: skip
    model = _tv_tiny_model()
    load_weights(model, path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    expected = torchvision_densenet_forward(sd, TV_TINY["block_config"], x)
    assert _rel(model.predict(x, verbose=0), expected) <= 1e-5


def test_densenet_checkpoint_with_unknown_keys_raises_and_leaves_the_model(tmp_path):
    from densenet_reference import torchvision_densenet_state_dict

    from keras_resnet.weights import load_weights

    sd = torchvision_densenet_state_dict(**TV_TINY, classes=7)
    sd["features.denseblock1.denselayer1.attn.weight"] = np.zeros((4, 4), "float32")
    path = _save(tmp_path, sd)
    model = _tv_tiny_model()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"extra tensor.*<torch:features\.denseblock1"):
        load_weights(model, path)
    for a, w in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(a, w.numpy())


@pytest.mark.slow
def test_torchvision_densenet121_safetensors_match_reference_in_a_fresh_process(tmp_path):
    from densenet_reference import torchvision_densenet_forward, torchvision_densenet_state_dict

    config = {"growth_rate": 32, "block_config": (6, 12, 24, 16), "num_init_features": 64}
    sd = torchvision_densenet_state_dict(**config, classes=5)
    path = _save(tmp_path, sd)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    x_path, y_path = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    code = textwrap.dedent(f"""
        import numpy as np
        from keras_resnet import create_model
        model = create_model("densenet121", weights={path!r}, classes=5,
                             input_shape=(32, 32, 3), classifier_activation=None)
        np.save({y_path!r}, model.predict(np.load({x_path!r}), verbose=0))
    """)  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
    expected = torchvision_densenet_forward(sd, config["block_config"], x)
    assert _rel(np.load(tmp_path / "y.npy"), expected) <= 1e-5


def test_builder_loads_weights_as_resnet_does(tmp_path):
    """``DenseNet(weights=...)`` loads a checkpoint all or nothing, like ``ResNet``."""
    spec = {**get_record("_tiny_densenet").spec(), "input_shape": TINY, "classes": 3}
    source = DenseNet(**spec)
    source.save(tmp_path / "m.keras")
    loaded = DenseNet(**spec, weights=str(tmp_path / "m.keras"))
    x = np.random.default_rng(0).random((2, *TINY), "float32")
    np.testing.assert_array_equal(source.predict(x, verbose=0), loaded.predict(x, verbose=0))
    with pytest.raises(ValueError):  # another architecture: nothing is loaded
        DenseNet(**dict(spec, growth_rate=8), weights=str(tmp_path / "m.keras"))
