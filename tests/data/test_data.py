"""Tests for keras_resnet.data: built-in sources, arrays, presets, determinism, errors."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import HAVE_MNIST, MNIST_DIR, NO_MNIST, REPO  # noqa: E402

from keras_resnet import data  # noqa: E402
from keras_resnet.data import DatasetInfo, Datasets, from_arrays, get_datasets  # noqa: E402


def batches(ds, n=None):
    it = ds if n is None else ds.take(n)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in it], strict=False)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def digits():
    return get_datasets("digits", batch_size=64, seed=3)


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_ranges(digits):
    assert isinstance(digits, Datasets)
    info = digits.info
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10
    assert info.class_names == tuple(str(i) for i in range(10))
    assert info.num_examples == {"train": 1293, "validation": 144, "test": 360}
    x, y = next(iter(digits.train))
    assert x.shape == (64, 8, 8, 1) and x.dtype == tf.float32
    assert y.shape == (64,) and y.dtype == tf.int32
    xt, yt = batches(digits.test)
    assert xt.shape == (360, 8, 8, 1) and set(np.unique(yt)) == set(range(10))
    # normalized with the train split's stats: test pixels lie in the mapped [0, 1] range
    lo = (0 - info.mean[0]) / info.std[0]
    hi = (1 - info.mean[0]) / info.std[0]
    assert xt.min() >= lo - 1e-5 and xt.max() <= hi + 1e-5
    assert abs(xt.mean()) < 0.2 and 0.8 < xt.std() < 1.2


def test_digits_train_epoch_covers_train_split_once(digits):
    _, y = batches(digits.train)
    assert len(y) == (1293 // 64) * 64  # drop_remainder keeps static batch shapes
    assert y.min() >= 0 and y.max() < 10


def test_validation_never_leaks_and_test_untouched():
    # every image encodes its index, so membership is exact
    idx = np.arange(120)
    x = np.broadcast_to((idx % 256).astype(np.uint8)[:, None, None, None], (120, 4, 4, 1)).copy()
    x[:, 0, 0, 0] = idx // 256
    x[:, 1, 1, 0] = idx % 7
    y = idx % 4
    ds = from_arrays(
        x[:100],
        y[:100],
        x[100:],
        y[100:],
        batch_size=10,
        augment="none",
        validation_fraction=0.2,
        mean=(0.0,),
        std=(1.0,),
        seed=0,
        drop_remainder=False,
    )

    def ids(dataset):
        imgs = np.round(batches(dataset)[0] * 255).astype(int)
        return set((imgs[:, 0, 0, 0] * 256 + imgs[:, 0, 1, 0]).tolist())

    train, val, test = ids(ds.train), ids(ds.validation), ids(ds.test)
    assert len(train) == 80 and len(val) == 20 and train.isdisjoint(val)
    assert train | val == set(range(100)) and test == set(range(100, 120))


def test_seed_reproducible_and_epochs_differ():
    a = get_datasets("digits", batch_size=32, seed=11)
    b = get_datasets("digits", batch_size=32, seed=11)
    xa, ya = batches(a.train, 4)
    xb, yb = batches(b.train, 4)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    xa2, _ = batches(a.train, 4)  # second epoch: new order and new augmentation
    assert not np.array_equal(xa, xa2)
    c = get_datasets("digits", batch_size=32, seed=12)
    assert not np.array_equal(xa, batches(c.train, 4)[0])


@pytest.mark.parametrize(
    "extras", [{}, {"mixup": 0.2}, {"rand_augment": True}, {"cutmix": True, "random_erasing": True}]
)
def test_set_train_epoch_reproduces_that_epoch(extras):
    # each pass is a function of (seed, epoch): a fresh pipeline set to epoch 2 (a
    # resumed run) gives the batches the third pass of another gave, extras included
    def one_pass(train):
        return [[t.numpy() for t in batch] for batch in train]

    train = get_datasets("digits", batch_size=256, seed=5, augment="mnist", **extras).train
    passes = [one_pass(train) for _ in range(3)]
    assert not np.array_equal(passes[1][0][0], passes[2][0][0])  # epochs differ
    fresh = get_datasets("digits", batch_size=256, seed=5, augment="mnist", **extras).train
    assert data.set_train_epoch(fresh, 2)
    for epoch in (2, 1):
        assert data.set_train_epoch(fresh, epoch)
        for got, want in zip(one_pass(fresh), passes[epoch], strict=True):
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)
    assert not data.set_train_epoch(fresh.take(1), 0)  # a derived dataset has no counter


def test_augmentation_changes_train_never_eval():
    x = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    kw = dict(batch_size=40, validation_fraction=0.0, seed=0, shuffle_buffer=1, x_test=x, y_test=y)
    plain = from_arrays(x, y, augment="none", **kw)
    aug = from_arrays(x, y, augment="cifar", **kw)
    xp, _ = batches(plain.train)
    xa, _ = batches(aug.train)
    assert xp.shape == xa.shape
    assert not np.allclose(xp, xa)
    # evaluation images are identical with and without augmentation, and across passes
    e1, e2, e3 = batches(plain.test)[0], batches(aug.test)[0], batches(aug.test)[0]
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(e2, e3)
    # the un-augmented train images (shuffle_buffer=1: in order) and the test images are
    # exactly the normalized inputs
    expected = (x / 255.0 - np.array(plain.info.mean)) / np.array(plain.info.std)
    np.testing.assert_allclose(xp, expected, atol=1e-4)
    np.testing.assert_allclose(e1, expected, atol=1e-4)


def test_mnist_preset_shifts_without_flips():
    x = np.zeros((8, 28, 28, 1), np.uint8)
    x[:, 10:18, 10:18] = 255
    ds = from_arrays(
        x,
        np.zeros(8, int),
        num_classes=2,
        batch_size=8,
        augment="mnist",
        validation_fraction=0.0,
        seed=1,
        mean=(0.0,),
        std=(1.0,),
    )
    xa, _ = batches(ds.train)
    for img in xa[..., 0]:
        rows, cols = np.nonzero(img > 0.5)
        # the square moved by at most 3 px and stayed a square (no flip, no scaling)
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7
        assert abs(rows.min() - 10) <= 3 and abs(cols.min() - 10) <= 3


def test_one_hot_labels():
    ds = get_datasets("digits", batch_size=16, one_hot=True, seed=0)
    x, y = next(iter(ds.train))
    assert y.shape == (16, 10) and y.dtype == tf.float32
    np.testing.assert_allclose(y.numpy().sum(1), 1.0)


def test_dataset_info_json_roundtrip(digits):
    d = json.loads(json.dumps(digits.info.to_dict()))
    assert DatasetInfo.from_dict(d) == digits.info
    with pytest.raises(ValueError, match="missing keys"):
        DatasetInfo.from_dict({"name": "x"})


# ----------------------------------------------------------------------------- MNIST IDX


@pytest.mark.skipif(not HAVE_MNIST, reason=NO_MNIST)
def test_real_mnist_t10k():
    ds = get_datasets(f"idx:{MNIST_DIR}", batch_size=100, seed=0, validation_fraction=0.1)
    info = ds.info
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert info.num_examples == {"train": 7200, "validation": 800, "test": 2000}
    assert 0.10 < info.mean[0] < 0.16 and 0.27 < info.std[0] < 0.34
    xt, yt = batches(ds.test)
    assert xt.shape == (2000, 28, 28, 1) and yt.min() == 0 and yt.max() == 9
    # test = examples 8000-9999 of the IDX file, in file order
    raw = data.read_idx(next(MNIST_DIR.glob("t10k-labels*")))
    np.testing.assert_array_equal(yt, raw[8000:])
    x, y = next(iter(ds.train))
    assert x.shape == (100, 28, 28, 1) and y.dtype == tf.int32


@pytest.mark.skipif(not HAVE_MNIST, reason=NO_MNIST)
def test_idx_path_form():
    ds = get_datasets(f"idx:{MNIST_DIR}", batch_size=500, validation_fraction=0.0, augment="none")
    assert ds.info.num_examples["train"] == 8000 and ds.validation is None


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "x-idx1-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)
    short = tmp_path / "y-idx1-ubyte"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1]))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(short)
    with pytest.raises(FileNotFoundError):
        get_datasets(f"idx:{tmp_path / 'nope'}", batch_size=8)


# ----------------------------------------------------------------------------- arrays


def test_from_arrays_float_and_grayscale_inputs():
    x = np.random.default_rng(1).random((30, 12, 12)).astype("float32")  # [0, 1], no channel
    y = np.arange(30) % 3
    ds = from_arrays(
        x,
        y,
        batch_size=10,
        validation_fraction=0.2,
        augment="none",
        class_names=["a", "b", "c"],
        channels=3,
        image_size=16,
    )
    assert ds.info.image_shape == (16, 16, 3) and ds.info.class_names == ("a", "b", "c")
    assert len(ds.info.mean) == 3 and ds.test is None
    xb, yb = next(iter(ds.train))
    assert xb.shape == (10, 16, 16, 3)
    np.testing.assert_array_equal(xb[..., 0], xb[..., 2])
    xv, yv = batches(ds.validation)
    assert xv.shape == (6, 16, 16, 3) and sorted(np.bincount(yv)) == [2, 2, 2]


def test_from_arrays_mixup_cutmix_randaugment_erasing():
    x = np.random.default_rng(2).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    y = np.arange(32) % 4
    kw = dict(
        batch_size=16,
        validation_fraction=0.0,
        seed=0,
        rand_augment=True,
        random_erasing=0.5,
        mixup=0.2,
        cutmix=1.0,
    )
    ds = from_arrays(x, y, **kw)
    xb, yb = next(iter(ds.train))
    # the Keras layers are seeded and run in order when a seed is given: reproducible
    xb2, yb2 = next(iter(from_arrays(x, y, **kw).train))
    np.testing.assert_array_equal(xb, xb2)
    np.testing.assert_array_equal(yb, yb2)
    plain = next(
        iter(
            from_arrays(
                x,
                y,
                **dict(kw, rand_augment=False, random_erasing=False, mixup=False, cutmix=False),
            ).train
        )
    )[0]
    assert not np.allclose(xb, plain)
    assert xb.shape == (16, 16, 16, 3) and yb.shape == (16, 4)
    assert np.all(np.isfinite(xb.numpy()))
    np.testing.assert_allclose(yb.numpy().sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size="8"), TypeError, "batch_size"),
        (dict(batch_size=8, validation_fraction=1.0), ValueError, "validation_fraction"),
        (dict(batch_size=8, augment="heavy"), ValueError, "augment"),
        (dict(batch_size=8, image_size=(8,)), TypeError, "image_size"),
        (dict(batch_size=8, colour=True), TypeError, "Unknown option"),
        (dict(batch_size=8, seed=1.5), TypeError, "seed"),
        (dict(batch_size=10_000), ValueError, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        get_datasets("digits", **kwargs)


def test_bad_arrays():
    x = np.zeros((10, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        from_arrays(x, np.arange(10), num_classes=3, batch_size=2)
    with pytest.raises(ValueError, match="shape"):
        from_arrays(np.zeros((10, 8, 8, 2)), np.zeros(10, int), batch_size=2)
    with pytest.raises(ValueError, match="shape"):
        from_arrays(np.zeros((10, 8)), np.zeros(10, int), batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        from_arrays(np.zeros((0, 8, 8, 1)), np.zeros(0, int), batch_size=2)
    with pytest.raises(ValueError, match="one integer label per image"):
        from_arrays(x, np.zeros(9, int), batch_size=2)
    with pytest.raises(ValueError, match="x_test"):
        from_arrays(x, np.zeros(10, int), x, batch_size=2)


def test_validate_for_model():
    import keras_resnet

    info = get_datasets("digits", batch_size=32).info
    keras_resnet_model = keras_resnet.create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    data.validate_for_model(info, keras_resnet_model)
    wrong = keras_resnet.create_model("_tiny", input_shape=(8, 8, 3), classes=10)
    with pytest.raises(ValueError, match="image_shape"):
        data.validate_for_model(info, wrong)
    wrong = keras_resnet.create_model("_tiny", input_shape=(8, 8, 1), classes=5)
    with pytest.raises(ValueError, match="num_classes"):
        data.validate_for_model(info, wrong)


def test_unknown_dataset_lists_supported():
    with pytest.raises(ValueError, match="digits"):
        get_datasets("no_such_dataset_xyz", batch_size=8)


def test_works_under_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    ds = get_datasets("digits", batch_size=32, seed=0)
    opts = ds.train.options()
    assert (
        opts.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    )
    dist = strategy.experimental_distribute_dataset(ds.train)
    x, y = next(iter(dist))
    assert strategy.experimental_local_results(x)[0].shape == (32, 8, 8, 1)


_DISTRIBUTED_SCRIPT = """
import json, tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import keras, keras_resnet
from keras_resnet.data import get_datasets
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
ds = get_datasets("digits", batch_size=32, seed=0)
dist = strategy.experimental_distribute_dataset(ds.train)
x, y = next(iter(dist))
shapes = [list(t.shape) for t in strategy.experimental_local_results(x)]
with strategy.scope():
    model = keras_resnet.create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    model.compile("sgd", "sparse_categorical_crossentropy")
h = model.fit(ds.train.take(2), validation_data=ds.validation, epochs=1, verbose=0)
print(json.dumps({"shapes": shapes, "loss": h.history["loss"][0]}))
"""


@pytest.mark.slow
def test_global_batch_split_across_two_replicas():
    import subprocess
    import sys

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    out = (
        subprocess.run(
            [sys.executable, "-c", _DISTRIBUTED_SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    result = json.loads(out)
    assert result["shapes"] == [[16, 8, 8, 1], [16, 8, 8, 1]]
    assert np.isfinite(result["loss"])


# ----------------------------------------------------------------------------- augment ops


@pytest.mark.parametrize("flip", [False, True])
def test_shift_flip_batch_is_pad_crop_flip(flip):
    from keras_resnet.data import augment

    x = np.random.default_rng(0).integers(1, 256, (24, 10, 10, 2)).astype(np.uint8)
    out = augment.shift_flip_batch(tf.constant(x), tf.constant([4, 2]), 3, flip=flip).numpy()
    assert out.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)))
    seen = set()
    for img, p in zip(out, padded, strict=True):
        # each output is exactly one zero-padded crop of its input, maybe mirrored
        matches = [
            (dy, dx, m)
            for dy in range(7)
            for dx in range(7)
            for m in ((False, True) if flip else (False,))
            if np.array_equal(img, (p[:, ::-1] if m else p)[dy : dy + 10, dx : dx + 10])
        ]
        assert matches
        seen.update(matches)
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5  # offsets vary across the batch
    assert any(m for *_, m in seen) == flip
    x0 = tf.constant(x)
    assert augment.shift_flip_batch(x0, tf.constant([0, 1]), 0) is x0


def test_random_resized_crop_and_center_crop_shapes():
    from keras_resnet.data import augment

    img = tf.constant(np.random.default_rng(0).random((50, 70, 3)) * 255, tf.float32)
    a = augment.random_resized_crop(img, tf.constant([1, 1]), (24, 24))
    b = augment.random_resized_crop(img, tf.constant([1, 2]), (24, 24))
    assert a.shape == (24, 24, 3) and not np.allclose(a, b)
    c = augment.resize_center_crop(img, (24, 24))
    assert c.shape == (24, 24, 3)
    np.testing.assert_array_equal(c, augment.resize_center_crop(img, (24, 24)))


def test_option_errors():
    with pytest.raises(ValueError, match="both `mean` and `std`"):
        get_datasets("digits", batch_size=8, mean=(0.5,))
    with pytest.raises(ValueError, match="one positive value per channel"):
        get_datasets("digits", batch_size=8, mean=(0.5,), std=(0.0,))
    with pytest.raises(ValueError, match="channels"):
        get_datasets("digits", batch_size=8, channels=2)
    with pytest.raises(ValueError, match="Augmentation option `mixup`"):
        get_datasets("digits", batch_size=8, mixup=-1)
    with pytest.raises(ValueError, match="shuffle_buffer"):
        get_datasets("digits", batch_size=8, shuffle_buffer=0)
    assert "digits" in data.list_datasets() and "idx:PATH" in data.list_datasets()
    assert "mnist_t10k" not in data.list_datasets()  # the IDX files are read as idx:PATH


@pytest.mark.slow
def test_pipeline_benchmark_runs():
    import runpy

    bench = runpy.run_path(str(REPO / "benchmarks" / "pipeline.py"))
    result = bench["main"](
        [
            "--examples",
            "512",
            "--pipeline-batches",
            "5",
            "--naive-batches",
            "2",
            "--model-steps",
            "2",
            "--batch-size",
            "32",
        ]
    )
    # the one JSON line docs/benchmarks.md quotes: every measured figure is there and real
    figures = ["pipeline_images_per_s", "model_images_per_s", "naive_images_per_s"]
    figures += ["pipeline_over_model", "naive_cpu_over_pipeline_cpu", "pipeline_over_naive"]
    for key in figures:
        assert np.isfinite(result[key]) and result[key] > 0, (key, result[key])
    assert (result["batch_size"], result["model"]) == (32, "resnet20")


def test_public_api_exports():
    import keras_resnet

    assert keras_resnet.get_datasets is get_datasets
    assert keras_resnet.from_arrays is from_arrays
    assert keras_resnet.DatasetInfo is DatasetInfo and keras_resnet.Datasets is Datasets
