"""Tests for the TFDS (mocked) and image-folder sources and the imagenet preset."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from keras_resnet.data import from_arrays, get_datasets  # noqa: E402
from keras_resnet.data import sources as src  # noqa: E402


def batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


# ----------------------------------------------------------------------------- TFDS


def test_tfds_cifar10_mocked():
    with tfds.testing.mock_data(num_examples=40):
        ds = get_datasets("cifar10", batch_size=8, seed=0, validation_fraction=0.25)
        info = ds.info
        assert info.image_shape == (32, 32, 3) and info.num_classes == 10
        assert info.class_names == tuple(tfds.builder("cifar10").info.features["label"].names)
        assert info.mean == src.KNOWN_STATS["cifar10"][0]  # published stats, not computed
        assert info.num_examples == {"train": 30, "validation": 10, "test": 40}
        x, y = next(iter(ds.train))
        assert x.shape == (8, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
        assert int(tf.reduce_min(y)) >= 0 and int(tf.reduce_max(y)) < 10
        xv, _ = batches(ds.validation)
        xv2, _ = batches(ds.validation)
        assert xv.shape == (10, 32, 32, 3)
        np.testing.assert_array_equal(xv, xv2)


def test_tfds_prefix_mnist_resize_and_one_hot():
    with tfds.testing.mock_data(num_examples=24):
        ds = get_datasets(
            "tfds:mnist", batch_size=6, image_size=32, one_hot=True, validation_fraction=0.0
        )
        assert ds.info.image_shape == (32, 32, 1) and ds.validation is None
        assert ds.info.std == src.KNOWN_STATS["mnist"][1]
        x, y = next(iter(ds.test))
        assert x.shape == (6, 32, 32, 1) and y.shape == (6, 10)


def _fake_splits(name, sizes):
    def template(split):
        return tfds.core.naming.ShardedFileTemplate(
            data_dir="/nonexistent",
            template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
            dataset_name=name,
            split=split,
            filetype_suffix="tfrecord",
        )

    return tfds.core.SplitDict(
        [
            tfds.core.SplitInfo(
                name=s, shard_lengths=[n], num_bytes=0, filename_template=template(s)
            )
            for s, n in sizes.items()
        ]
    )


def test_tfds_split_strings_and_missing_split(monkeypatch):
    # mock_data has no split metadata offline: give the info real-looking splits
    splits = _fake_splits("cifar10", {"train": 40, "test": 20})
    monkeypatch.setattr(tfds.core.DatasetInfo, "splits", property(lambda self: splits))
    with tfds.testing.mock_data(num_examples=20):
        ds = get_datasets(
            "cifar10", batch_size=4, train_split="train[:50%]", validation_fraction=0.0
        )
        assert ds.info.num_examples["train"] == 20
        with pytest.raises(ValueError, match="does not exist"):
            get_datasets("cifar10", batch_size=4, test_split="bogus")


def test_tfds_unknown_name_lists_supported():
    with pytest.raises(ValueError, match="Supported.*digits.*Close TFDS names.*cifar10"):
        get_datasets("cifar_10", batch_size=8)


# ----------------------------------------------------------------------------- folders


def _write(path, image, fmt="png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    path.write_bytes(enc(tf.constant(image)).numpy())


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", "eel"):
        for i in range(6):
            size = (20, 20) if i else (24, 18)  # one odd size per class: resized
            img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            _write(
                tmp_path / cls / f"{i}.{'png' if i % 2 else 'jpg'}", img, "png" if i % 2 else "jpg"
            )
    (tmp_path / "cat" / "broken.png").write_bytes(b"this is not a png at all" * 4)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    good = (tmp_path / "eel" / "1.png").read_bytes()
    (tmp_path / "eel" / "truncated.png").write_bytes(good[: len(good) // 2])
    return tmp_path


def test_image_folder_streams_skips_corrupt(image_dir):
    with pytest.warns(UserWarning, match="Skipped 2 corrupt or non-image"):
        ds = get_datasets(
            f"dir:{image_dir}", batch_size=4, validation_fraction=0.25, seed=0, augment="cifar"
        )
    info = ds.info
    assert info.class_names == ("cat", "dog", "eel") and info.num_classes == 3
    assert info.image_shape == (20, 20, 3)  # first file's size; the others are resized
    assert ds.test is None
    # the truncated file passes the header check and is dropped while decoding: the epoch
    # completes (3 full batches of 4 from the 14 training files) ...
    xs, ys = batches(ds.train)
    xv, yv = batches(ds.validation)
    assert xs.shape[1:] == (20, 20, 3) and xv.shape[1:] == (20, 20, 3)
    assert (len(ys), len(yv)) == (12, 5)
    assert set(np.unique(np.concatenate([ys, yv]))) == {0, 1, 2}
    # ... and, unbatched and unaugmented, holds every readable image: the 5 validation
    # images once, the 13 readable training images at least once, the dropped file's
    # place filled by one image of the next pass, and no image in both splits
    with pytest.warns(UserWarning, match="Skipped 2 corrupt or non-image"):
        plain = get_datasets(
            f"dir:{image_dir}", batch_size=1, validation_fraction=0.25, seed=0, augment="none"
        )
    train = batches(plain.train)[0].reshape(14, -1)
    validation = batches(plain.validation)[0].reshape(5, -1)
    assert len(np.unique(train, axis=0)) == 13 and len(np.unique(validation, axis=0)) == 5
    assert len(np.unique(np.concatenate([train, validation]), axis=0)) == 18


def test_image_folder_train_test_layout_and_imagenet_preset(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
                _write(tmp_path / split / cls / f"{i}.png", img)
    ds = get_datasets(
        f"dir:{tmp_path}",
        batch_size=2,
        augment="imagenet",
        image_size=16,
        seed=0,
        validation_fraction=0.0,
    )
    assert ds.info.num_examples == {"train": 8, "validation": 0, "test": 4}
    x, _ = next(iter(ds.train))
    assert x.shape == (2, 16, 16, 3)
    e1, _ = batches(ds.test)
    e2, _ = batches(ds.test)
    assert e1.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(e1, e2)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        get_datasets(f"dir:{tmp_path / 'missing'}", batch_size=2)
    with pytest.raises(ValueError, match="no class subfolders"):
        get_datasets(f"dir:{tmp_path}", batch_size=2)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"No readable images .*skipped 1"):
        get_datasets(f"dir:{tmp_path}", batch_size=2)


# ----------------------------------------------------------------------------- imagenet preset


def test_imagenet_preset_on_arrays_train_random_eval_center_crop():
    x = np.random.default_rng(3).integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    ds = from_arrays(
        x,
        y,
        x,
        y,
        batch_size=12,
        augment="imagenet",
        image_size=32,
        validation_fraction=0.0,
        seed=0,
        shuffle_buffer=1,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    xa, _ = batches(ds.train)
    xb, _ = batches(ds.train)
    assert xa.shape == (12, 32, 32, 3) and not np.allclose(xa, xb)
    e, _ = batches(ds.test)
    # center crop: 40 -> resize to ceil(32 / 0.875) = 37 -> central 32x32
    ref = tf.image.resize(tf.constant(x, tf.float32), (37, 37), antialias=True)[:, 2:34, 2:34]
    ref = (np.clip(np.round(ref.numpy()), 0, 255) / 255.0 - 0.5) / 0.5
    np.testing.assert_allclose(e, ref, atol=1e-4)


def test_tfds_not_prepared_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared"):
        get_datasets("mnist", batch_size=8, data_dir=str(tmp_path), download=False)


def test_cache_to_files(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (16, 10, 10, 1), dtype=np.uint8)
    y = np.arange(16) % 2
    prefix = str(tmp_path / "cache")
    ds = from_arrays(x, y, x, y, batch_size=4, image_size=12, cache=prefix, validation_fraction=0)
    first = batches(ds.test)[0]
    batches(ds.train)
    np.testing.assert_array_equal(first, batches(ds.test)[0])
    names = {p.name.split(".")[0] for p in tmp_path.iterdir()}
    assert {"cache_train", "cache_test"} <= names


def test_write_idx_round_trips_and_refuses_other_dtypes(tmp_path):
    from keras_resnet.data.sources import read_idx, write_idx

    images = np.arange(2 * 3 * 4, dtype="uint8").reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, images)), images)
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "c-idx1-ubyte", np.arange(3))
    assert not (tmp_path / "c-idx1-ubyte").exists()
