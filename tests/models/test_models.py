"""Blocks, builder and zoo: counts, training step, serialization, options, bad input."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from model_checks import check_builds_and_trains, check_keras_round_trip, trainable_count
from param_reference import reference_count

from keras_resnet import ResNet, ResNetConfig, create_model, list_models, model_spec
from keras_resnet.layers import HighwayGate, SpatialPyramidPooling, ZeroPadShortcut
from keras_resnet.models.registry import records
from keras_resnet.models.resnet.blocks import basic_block, bottleneck_block, shortcut


def test_records_are_complete():
    for record in records():
        assert (record.params is None) == (not record.params_source), record.name
        assert record.input_shape == ((32, 32, 3) if record.classes == 10 else (224, 224, 3))
    keras_names = {r.weights.get("keras_applications") for r in records()} - {None}
    resnets = {f"ResNet{d}{v}" for d in (50, 101, 152) for v in ("", "V2")}
    assert keras_names == resnets | {f"DenseNet{d}" for d in (121, 169, 201)}


OPTIONS = {
    "highway": {"shortcut": "highway"},
    "projection_all": {"shortcut": "C"},
    "zero_pad": {"shortcut": "A"},
    "avg_down_deep_stem": {"shortcut": "D", "stem": "deep", "stem_width": 8},
    "imagenet_stem": {"stem": "imagenet"},
    "plain": {"shortcut": None},
    "preact_dropout": {"preact": True, "dropout": 0.2},
    "bottleneck_v1": {"block": "bottleneck", "stride_in": "1x1"},
    "resnext": {"block": "bottleneck", "groups": 4, "base_width": 16},
    "grouped_basic": {"groups": 2},
    "se_stochastic_zero_init": {"se_ratio": 0.25, "drop_path_rate": 0.2, "zero_init_last_bn": True},
    "preact_bottleneck_se": {"preact": True, "block": "bottleneck", "se_ratio": 0.5},
    "keras_v2_layout": {"preact": True, "block": "bottleneck", "downsample_in": "last"},
    "spp": {"pooling": "spp"},
    "max_pool_head_dropout": {"pooling": "max", "head_dropout": 0.3},
}


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
def test_block_options_train_and_round_trip(options, tmp_path):
    shape = (32, 32, 3)
    model = create_model("_tiny", input_shape=shape, classes=4, **options)
    zero_init = options.get("zero_init_last_bn", False)
    x = check_builds_and_trains(model, shape, 4, min_changed=0.2 if zero_init else 0.5)
    check_keras_round_trip(model, x, tmp_path)
    spec = {**model_spec("_tiny"), **options}
    if "se_ratio" not in options:
        assert trainable_count(model) == reference_count({**spec, "classes": 4})


def test_spp_accepts_variable_input_sizes():
    model = create_model("_tiny", pooling="spp", classes=5)
    assert model.input_shape == (None, None, None, 3)
    for h, w in [(16, 16), (23, 37), (64, 40)]:
        out = model.predict(np.random.rand(2, h, w, 3).astype("float32"), verbose=0)
        assert out.shape == (2, 5)
    # 16 channels x (1 + 4 + 16) bins feed the classifier whatever the input size.
    assert model.get_layer("predictions").kernel.shape == (16 * 21, 5)


def test_spp_layer_matches_reference_max_pooling():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(SpatialPyramidPooling((1, 2))(x))
    assert out.shape == (2, 3 * 5)
    np.testing.assert_allclose(out[:, :3], x.max(axis=(1, 2)))
    # 2x2 grid over 5 rows / 7 cols: rows [0,3) [2,5), cols [0,4) [3,7) (adaptive bins).
    grid = out[:, 3:].reshape(2, 2, 2, 3)
    np.testing.assert_allclose(grid[:, 0, 1], x[:, 0:3, 3:7].max(axis=(1, 2)))
    np.testing.assert_allclose(grid[:, 1, 0], x[:, 2:5, 0:4].max(axis=(1, 2)))


def test_mixed_precision_output_is_float32():
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        model = create_model("_tiny", input_shape=(16, 16, 3))
        assert model.get_layer("stage1_block1_conv1").compute_dtype != "float32"
        out = model.predict(np.random.rand(2, 16, 16, 3).astype("float32"), verbose=0)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_stochastic_depth_rates_decay_linearly():
    model = create_model("resnet20", drop_path_rate=0.5, input_shape=(32, 32, 3))
    rates = [layer.rate for layer in model.layers if layer.name.endswith("_drop_path")]
    assert len(rates) == 9  # one per residual block
    np.testing.assert_allclose(rates, [0.5 * (i + 1) / 9 for i in range(9)])


def test_stochastic_depth_drops_whole_branches_in_training_only():
    inputs = keras.Input((4, 4, 8))
    outputs = basic_block(inputs, 8, drop_path=0.5, name="b")
    model = keras.Model(inputs, outputs)
    x = np.random.rand(64, 4, 4, 8).astype("float32")
    train = keras.ops.convert_to_numpy(model(x, training=True))
    test_a = keras.ops.convert_to_numpy(model(x, training=False))
    test_b = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(test_a, test_b)
    # A dropped branch leaves relu(x + 0) = x (x >= 0) for that whole example.
    dropped = [np.allclose(train[i], x[i]) for i in range(len(x))]
    assert 10 < sum(dropped) < 54


def test_zero_init_last_bn_makes_identity_blocks_start_as_identity():
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, basic_block(inputs, 8, zero_init_last_bn=True, name="b"))
    x = np.random.rand(3, 4, 4, 8).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x, rtol=1e-6)


def test_highway_gate_and_zero_pad_layers():
    t = np.full((1, 2, 2, 2), 0.3, "float32")
    f = np.full_like(t, 2.0)
    c = np.full_like(t, -1.0)
    out = keras.ops.convert_to_numpy(HighwayGate()([t, f, c]))
    np.testing.assert_allclose(out, 0.3 * 2.0 + 0.7 * -1.0, rtol=1e-6)
    x = np.arange(1 * 4 * 4 * 2, dtype="float32").reshape(1, 4, 4, 2)
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(6, 2)(x))
    assert y.shape == (1, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 4:].any()


def test_shortcut_rule():
    x = keras.Input((8, 8, 16))
    assert shortcut(x, 16, kind="projection", name="a") is x  # unchanged shape: identity
    assert shortcut(x, 16, kind=None, name="b") is None  # plain network
    assert shortcut(x, 16, kind="projection_all", name="c") is not x  # option C
    assert tuple(shortcut(x, 32, strides=2, kind="avg_down", name="d").shape) == (None, 4, 4, 32)


def test_bottleneck_stride_placement_and_resnext_width():
    x = keras.Input((8, 8, 64))
    m15 = keras.Model(x, bottleneck_block(x, 64, strides=2, name="v15"))
    assert m15.get_layer("v15_conv1").strides == (1, 1)
    assert m15.get_layer("v15_conv2").strides == (2, 2)
    m1 = keras.Model(x, bottleneck_block(x, 64, strides=2, stride_in="1x1", name="v1"))
    assert m1.get_layer("v1_conv1").strides == (2, 2)
    mx = keras.Model(x, bottleneck_block(x, 64, groups=32, base_width=4, name="x"))
    conv2 = mx.get_layer("x_conv2")
    assert conv2.groups == 32 and conv2.filters == 128  # 32 groups x 4 channels
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in mx.layers)


def test_create_model_overrides_and_listing():
    model = create_model("resnet20", classes=100, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 100)
    assert create_model("resnet20", name="my_net").name == "my_net"
    assert "resnet50" in list_models() and "_tiny" not in list_models()
    assert "_tiny" in list_models(include_private=True)
    features = create_model("resnet18", include_top=False, input_shape=(64, 64, 3))
    assert features.output_shape == (None, 2, 2, 512)
    pooled = create_model("resnet18", include_top=False, pooling="avg")
    assert pooled.output_shape == (None, 512)
    inp = keras.Input((32, 32, 3))
    model = create_model("_tiny", input_tensor=inp)
    assert model.inputs[0] is inp


BAD_INPUT = [
    ("name", lambda: create_model("resnet51"), "Unknown model name 'resnet51'"),
    ("depths", lambda: ResNet(stage_depths=(3, 0, 6, 3)), "stage_depths"),
    ("widths", lambda: ResNet(stage_widths=(64, -1, 256, 512)), "stage_widths"),
    ("depth_len", lambda: ResNet(stage_depths=(1, 1), stage_widths=(8,)), "same length"),
    ("too_deep", lambda: ResNet(stage_depths=(10**9, 1, 1), stage_widths=(8,) * 3), "at most 1000"),
    ("too_deep_2000", lambda: create_model("resnet20", stage_depths=(2000, 1, 1)), "at most 1000"),
    ("groups", lambda: ResNet(block="basic", groups=3), "Received: groups=3"),
    ("groups0", lambda: ResNet(groups=0), "groups"),
    (
        "base_width",
        lambda: ResNet(stage_depths=(1, 1), stage_widths=(8, 16), base_width=4),
        "width 0",
    ),
    (
        "zero_pad_shrinks",
        lambda: ResNet(block="basic", stage_widths=(8, 16, 32, 64), shortcut="A"),
        "can only add channels",
    ),
    ("shortcut", lambda: ResNet(shortcut="E"), "Received: shortcut='E'"),
    ("stem", lambda: ResNet(stem="tiny"), "Received: stem='tiny'"),
    ("stride_in", lambda: ResNet(stride_in="5x5"), "Received: stride_in='5x5'"),
    ("block", lambda: ResNet(block="dense"), "Received: block='dense'"),
    ("too_small", lambda: create_model("resnet50", input_shape=(16, 16, 3)), "at least 32"),
    ("rank", lambda: create_model("resnet50", input_shape=(32, 32)), "rank 3"),
    ("channels", lambda: create_model("_tiny", input_shape=(32, 32, None)), "channel"),
    ("classes", lambda: create_model("resnet20", classes=0), "Received: classes=0"),
    ("drop_path", lambda: create_model("resnet20", drop_path_rate=1.0), "[0, 1)"),
    ("drop_path_neg", lambda: create_model("resnet20", drop_path_rate=-0.1), "drop_path_rate"),
    ("drop_path_plain", lambda: create_model("plain20", drop_path_rate=0.1), "shortcut=None"),
    ("dropout", lambda: create_model("_tiny", dropout=1.5), "dropout"),
    ("pooling", lambda: create_model("_tiny", pooling="sum"), "Received: pooling='sum'"),
    ("activation", lambda: create_model("_tiny", classifier_activation="soft"), "activation"),
    ("unknown_arg", lambda: create_model("_tiny", depth=5), "Unknown architecture argument"),
]


@pytest.mark.parametrize("build, match", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_raises_before_building(build, match):
    before = keras.backend.get_uid("conv2d")
    with pytest.raises(
        (ValueError, TypeError), match=match.replace("[", r"\[").replace(")", r"\)")
    ):
        build()
    # nothing was built: no new Conv2D layer was created
    assert keras.backend.get_uid("conv2d") == before + 1


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="resnet50") as err:
        create_model("resnet5O")
    assert "resnext50_32x4d" in str(err.value)


def test_config_round_trip_and_validation():
    cfg = ResNetConfig(
        block="basic", stage_depths=[2, 2], stage_widths=[8, 16], stem="cifar", stem_width=8,
        shortcut="A",
    )  # fmt: skip
    assert cfg.shortcut == "zero_pad" and cfg.stage_depths == (2, 2)
    assert ResNetConfig(**cfg.to_dict()) == cfg
    model = ResNet(config=cfg, classes=3, input_shape=(16, 16, 3))
    assert model.count_params() == ResNet(config=cfg, classes=3).count_params()
    wider = ResNet(config=cfg, stage_widths=(16, 32), classes=3)
    assert wider.count_params() > model.count_params()


def _max_pool_3x3_s2(a: np.ndarray, pad_value: float) -> np.ndarray:
    """NumPy reference of PyTorch's MaxPool2d(3, stride=2, padding=1) (NHWC)."""
    p = np.pad(a, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=pad_value)
    h, w = (a.shape[1] - 1) // 2 + 1, (a.shape[2] - 1) // 2 + 1
    out = np.empty((a.shape[0], h, w, a.shape[3]), a.dtype)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = p[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [32, 30])
@pytest.mark.parametrize("stem", ["imagenet", "deep"])
def test_pre_activation_stem_pool_ignores_padding(stem, size):
    # A pre-activation stem ends in a conv (no ReLU): its border values can be negative,
    # so zero padding would change the pooled border; PyTorch / timm pad with -inf.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, size, size, 3)).astype("float32")
    last = "stem_conv" if stem == "imagenet" else "stem_conv3"
    for padding, pad_value in (("ignore", -np.inf), ("zeros", 0.0)):
        model = create_model("_tiny", stem=stem, preact=True, stem_pool_padding=padding,
                             input_shape=(size, size, 3))  # fmt: skip
        conv = keras.Model(model.input, model.get_layer(last).output).predict(x, verbose=0)
        assert conv.min() < 0
        pool = model.get_layer("stage1_block1_preact_bn").input
        got = keras.Model(model.input, pool).predict(x, verbose=0)
        expected = _max_pool_3x3_s2(conv, pad_value)
        np.testing.assert_array_equal(got, expected)
        if padding == "zeros":  # the border differs: the test can tell the two apart
            assert not np.array_equal(expected, _max_pool_3x3_s2(conv, -np.inf))


def test_keras_variants_keep_zero_padded_stem_pool():
    for name in list_models():
        padding = model_spec(name).get("stem_pool_padding", "ignore")
        assert padding == ("zeros" if name.endswith("_keras") else "ignore"), name
