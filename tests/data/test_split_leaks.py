"""No test image reaches training: ``dir:`` folders and IDX files, checked by content.

Every generated image is unique; each split's pipeline output is mapped back to its
uint8 pixels (the pipelines only normalize when nothing resizes or augments) and
hashed, so an image is recognised wherever it lands.
"""

from __future__ import annotations

import hashlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_resnet.data import DataConfig, get_datasets  # noqa: E402
from keras_resnet.data.sources import write_idx  # noqa: E402

SIZE = 8


def _images(n: int, seed: int) -> np.ndarray:
    """``n`` distinct random ``SIZE x SIZE`` grey images."""
    images = np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE), dtype=np.uint8)
    assert len({im.tobytes() for im in images}) == n
    return images


def _digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, np.uint8).tobytes()).hexdigest()


def _seen(ds, info) -> list[str]:
    """The hashes of every image one pass of ``ds`` yields, back in uint8 pixels."""
    if ds is None:
        return []
    mean, std = np.array(info.mean), np.array(info.std)
    found = []
    for x, _ in ds:
        pixels = np.rint((x.numpy() * std + mean) * 255.0)
        assert pixels.min() >= 0 and pixels.max() <= 255
        found += [_digest(p[..., 0]) for p in pixels.astype(np.uint8)]
    return found


def _splits(dataset: str) -> dict[str, list[str]]:
    config = DataConfig(dataset, batch_size=4, augment="none", validation_fraction=0.25,
                        seed=0, drop_remainder=False)  # fmt: skip
    ds = get_datasets(config)
    return {name: _seen(getattr(ds, name), ds.info) for name in ("train", "validation", "test")}


def _check(splits: dict[str, list[str]], train_images, test_images) -> None:
    train, val, test = splits["train"], splits["validation"], splits["test"]
    assert len(set(train)) == len(train) and len(set(val)) == len(val)  # each once
    assert len(set(test)) == len(test)
    assert not set(train) & set(test) and not set(val) & set(test)
    assert not set(train) & set(val)  # the validation split is carved out, not copied
    assert set(test) == {_digest(im) for im in test_images}
    assert set(train) | set(val) == {_digest(im) for im in train_images}
    assert len(val) == round(0.25 * len(train_images))


def test_dir_train_test_folders_never_leak_test_images(tmp_path):
    images = _images(48, seed=1)
    train_images, test_images = images[:32], images[32:]
    for split, block in (("train", train_images), ("test", test_images)):
        for i, image in enumerate(block):
            folder = tmp_path / split / f"class{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            png = tf.io.encode_png(image[..., None]).numpy()
            (folder / f"{split}_{i}.png").write_bytes(png)
    _check(_splits(f"dir:{tmp_path}"), train_images, test_images)


@pytest.mark.parametrize("layout", ["one pair", "train and t10k pairs"])
def test_idx_splits_never_leak_test_images(tmp_path, layout):
    images = _images(40, seed=2)
    labels = (np.arange(40) % 3).astype(np.uint8)
    if layout == "one pair":  # split by position: the first 80 % train
        write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
        write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
        train_images, test_images = images[:32], images[32:]
    else:
        write_idx(tmp_path / "train-images-idx3-ubyte", images[:28])
        write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:28])
        write_idx(tmp_path / "t10k-images-idx3-ubyte", images[28:])
        write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[28:])
        train_images, test_images = images[:28], images[28:]
    _check(_splits(f"idx:{tmp_path}"), train_images, test_images)
