"""Tests of the analysis helpers: zoo table, gradient norms, lesion study."""

from __future__ import annotations

import importlib

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import create_model
from keras_resnet.analysis import (
    GradientNormHistory,
    gradient_norms,
    published_params,
    zoo_table,
)
from keras_resnet.analysis.lesion import delete_blocks, lesion_curve, lesion_study, list_blocks

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((12, *SHAPE), dtype="float32"), np.arange(12) % 10


def _predict(model, x):
    return np.asarray(model(x, training=False))


def _tensor_before(model, block_prefix):
    """The input tensor of the first layer of a block (the previous block's output)."""
    first = next(layer for layer in model.layers if layer.name.startswith(block_prefix + "_"))
    return keras.Model(model.input, first.input)


def _block_output(model, block_prefix):
    last = [layer for layer in model.layers if layer.name.startswith(block_prefix + "_")][-1]
    return keras.Model(model.input, last.output)


# --- lesion study -------------------------------------------------------------------


def test_list_blocks_kinds_resnet_and_plain():
    res = list_blocks(create_model("resnet20", input_shape=SHAPE))
    assert [b["block"] for b in res][:4] == [
        "stage1_block1",
        "stage1_block2",
        "stage1_block3",
        "stage2_block1",
    ]
    kinds = [b["kind"] for b in res]
    assert kinds.count("downsampling") == 2 and kinds.count("identity") == 7
    every = list_blocks(create_model("resnet20", input_shape=SHAPE, shortcut="projection_all"))
    assert {b["kind"] for b in every} == {"downsampling", "projection"}
    plain = list_blocks(create_model("plain20", input_shape=SHAPE))
    assert {b["kind"] for b in plain} == {"plain"}
    # the two strided plain blocks change the shape and cannot be deleted
    assert [b["block"] for b in plain if not b["deletable"]] == ["stage2_block1", "stage3_block1"]


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("resnet20", {}),
        ("resnet20", {"preact": True}),
        ("resnet20", {"shortcut": "highway"}),
        ("plain20", {}),
    ],
)
def test_delete_block_makes_it_the_identity(name, overrides, data):
    x, _ = data
    model = create_model(name, input_shape=SHAPE, **overrides)
    lesioned = delete_blocks(model, ["stage1_block2"])
    before = _predict(_tensor_before(lesioned, "stage1_block3"), x)
    after_block1 = _predict(_block_output(lesioned, "stage1_block1"), x)
    np.testing.assert_allclose(before, after_block1, atol=1e-6)
    assert "stage1_block2_conv1" not in {layer.name for layer in lesioned.layers}
    # the original keeps its block and its predictions
    assert any(layer.name.startswith("stage1_block2_") for layer in model.layers)
    assert not np.allclose(_predict(model, x), _predict(lesioned, x))


def test_delete_nothing_is_an_exact_copy_with_trained_weights(data):
    x, y = data
    model = create_model("resnet20", input_shape=SHAPE)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)  # moving statistics differ from the init
    np.testing.assert_array_equal(_predict(delete_blocks(model, []), x), _predict(model, x))


def test_delete_projection_block_keeps_its_shortcut(data):
    x, _ = data
    model = create_model("resnet20", input_shape=SHAPE, shortcut="projection")
    lesioned = delete_blocks(model, ["stage2_block1"])
    names = {layer.name for layer in lesioned.layers}
    assert "stage2_block1_shortcut_conv" in names and "stage2_block1_conv1" not in names
    assert _predict(lesioned, x).shape == (len(x), 10)


def test_delete_blocks_rejects_bad_names():
    model = create_model("plain20", input_shape=SHAPE)
    with pytest.raises(ValueError, match="unknown block.*stage9_block1"):
        delete_blocks(model, ["stage9_block1"])
    with pytest.raises(ValueError, match="changes the shape"):
        delete_blocks(model, ["stage2_block1"])
    with pytest.raises(TypeError, match="list of block names"):
        delete_blocks(model, "stage1_block1")
    with pytest.raises(TypeError, match="functional keras.Model"):
        list_blocks("resnet20")


def test_lesion_study_rows_and_selection(data):
    x, y = data
    model = create_model("resnet20", input_shape=SHAPE)
    rows = lesion_study(model, x, y)
    assert [r["kind"] for r in rows] == ["identity"] * 7
    baseline = float(np.mean(_predict(model, x).argmax(-1) == y))
    for r in rows:
        assert r["baseline"] == pytest.approx(baseline)
        assert r["drop"] == pytest.approx(r["baseline"] - r["accuracy"])
        assert 0.0 <= r["accuracy"] <= 1.0
    # a block deleted on its own scores what the lesioned model scores
    lesioned = delete_blocks(model, [rows[2]["block"]])
    assert rows[2]["accuracy"] == pytest.approx(
        float(np.mean(_predict(lesioned, x).argmax(-1) == y))
    )
    tiny = create_model("_tiny", input_shape=SHAPE)  # stage1: identity, stage2: downsampling
    assert [r["kind"] for r in lesion_study(tiny, x, y)] == ["identity"]
    assert [r["kind"] for r in lesion_study(tiny, x, y, blocks="all")] == [
        "identity",
        "downsampling",
    ]
    assert [r["block"] for r in lesion_study(tiny, x, y, blocks=["stage2_block1"])] == [
        "stage2_block1"
    ]


def test_lesion_study_accepts_batches_and_one_hot(data):
    x, y = data
    model = create_model("_tiny", input_shape=SHAPE)
    one_hot = np.eye(10)[y]
    from_arrays = lesion_study(model, x, y, blocks="all")
    from_batches = lesion_study(model, [(x[:5], one_hot[:5]), (x[5:], one_hot[5:])], blocks="all")
    assert [r["accuracy"] for r in from_arrays] == pytest.approx(
        [r["accuracy"] for r in from_batches]
    )


def test_lesion_study_validates_arguments(data):
    x, y = data
    model = create_model("_tiny", input_shape=SHAPE)
    with pytest.raises(ValueError, match="blocks=.some"):
        lesion_study(model, x, y, blocks="some")
    with pytest.raises(ValueError, match="batch_size"):
        lesion_study(model, x, y, batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        lesion_study(model, x, y[:3])


def test_lesion_curve(data):
    x, y = data
    model = create_model("resnet20", input_shape=SHAPE)
    rows = lesion_curve(model, x, y, num_deleted=(0, 1, 7), trials=2, seed=1)
    assert [r["deleted"] for r in rows] == [0, 1, 7]
    assert len(rows[0]["accuracies"]) == 1 and len(rows[1]["accuracies"]) == 2
    # deleting all 7 candidates is one fixed subset: every trial agrees
    assert rows[2]["accuracy_std"] == 0.0
    with pytest.raises(ValueError, match="num_deleted"):
        lesion_curve(model, x, y, num_deleted=(8,))
    with pytest.raises(ValueError, match="trials"):
        lesion_curve(model, x, y, trials=0)


# --- gradient norms -----------------------------------------------------------------


def test_gradient_norms_match_a_manual_gradient_and_keep_state(data):
    import tensorflow as tf

    x, y = data
    model = create_model("_tiny", input_shape=SHAPE)
    state = [v.numpy().copy() for v in model.non_trainable_variables]
    rows = gradient_norms(model, x, y)
    names = [r["layer"] for r in rows]
    assert names[0] == "stem_conv" and names[-1] == "predictions"
    assert [r["depth"] for r in rows] == list(range(1, len(rows) + 1))
    for var, saved in zip(model.non_trainable_variables, state, strict=True):
        np.testing.assert_array_equal(var.numpy(), saved)
    layer = model.get_layer("stage1_block1_conv1")
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    expected = float(tf.norm(tape.gradient(loss, layer.kernel)))
    row = rows[names.index("stage1_block1_conv1")]
    assert row["grad_norm"] == pytest.approx(expected, rel=1e-4)
    assert row["ratio"] == pytest.approx(expected / row["weight_norm"], rel=1e-4)


def test_gradient_norms_one_hot_and_errors(data):
    x, y = data
    model = create_model("_tiny", input_shape=SHAPE)
    sparse = gradient_norms(model, x, y)
    dense = gradient_norms(model, x, np.eye(10)[y])
    assert [r["grad_norm"] for r in sparse] == pytest.approx([r["grad_norm"] for r in dense])
    with pytest.raises(ValueError, match="same length"):
        gradient_norms(model, x, y[:2])
    with pytest.raises(TypeError, match="keras.Model"):
        gradient_norms("resnet20", x, y)


def test_gradient_norm_history_records_each_epoch(data):
    x, y = data
    model = create_model("_tiny", input_shape=SHAPE)
    model.compile("sgd", "sparse_categorical_crossentropy")
    callback = GradientNormHistory(x[:4], y[:4], every=2)
    model.fit(x, y, epochs=4, verbose=0, callbacks=[callback])
    epochs = sorted({r["epoch"] for r in callback.history})
    assert epochs == [0, 2, 4]
    first = [r["grad_norm"] for r in callback.history if r["epoch"] == 0]
    last = [r["grad_norm"] for r in callback.history if r["epoch"] == 4]
    assert first != last
    with pytest.raises(ValueError, match="every"):
        GradientNormHistory(x, y, every=0)


# --- zoo table ----------------------------------------------------------------------


def test_zoo_table_matches_published_count_for_resnet20():
    (row,) = zoo_table(["resnet20"])
    assert row["input_shape"] == (32, 32, 3)
    assert row["trainable_params"] == 269_722 == row["published_params"]
    assert row["matches"] is True
    assert row["macs"] == keras_resnet.count_flops("resnet20", input_shape=(32, 32, 3))
    assert row["params"] > row["trainable_params"]  # BN moving statistics


def test_zoo_table_without_published_count_and_errors():
    (row,) = zoo_table(["_tiny"], input_shape=(16, 16, 3))
    assert row["published_params"] is None and row["matches"] is None
    # by hand: stem 3*3*3*8 + 2*8; stage 1: 2 * (3*3*8*8 + 2*8); stage 2: 3*3*8*16 +
    # 3*3*16*16 + 1*1*8*16 (projection) + 3 * 2*16; head 16*10 + 10
    stem, stage1 = 216 + 16, 2 * (576 + 16)
    stage2, head = 1152 + 2304 + 128 + 96, 170
    assert row["trainable_params"] == stem + stage1 + stage2 + head == 5266
    with pytest.raises(ValueError, match="resnet5000"):
        zoo_table(["resnet5000"])
    with pytest.raises(TypeError, match="names"):
        zoo_table("resnet20")


def test_public_api_exports_analysis_helpers():
    for name in ("zoo_table", "gradient_norms", "GradientNormHistory", "lesion_study",
                 "lesion_curve", "delete_blocks", "list_blocks", "PUBLISHED_PARAMS",
                 "published_params", "get_record", "register", "ModelRecord"):  # fmt: skip
        module = importlib.import_module(keras_resnet._LAZY[name])
        assert getattr(keras_resnet, name) == getattr(module, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(published_params()))
def test_zoo_table_matches_every_published_count(name):
    (row,) = zoo_table([name])
    assert row["trainable_params"] == published_params()[name][0]
