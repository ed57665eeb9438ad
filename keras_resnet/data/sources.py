"""Data sources: each returns uint8 ``(H, W, C)`` images with int32 labels.

A source is described by a :class:`Source`: one unbatched ``tf.data.Dataset`` per
split plus the metadata the pipeline builder needs (class names, native image shape,
known normalization statistics). Pipelines (shuffle, augmentation, batching) are
built on top of these in :mod:`keras_resnet.data.pipeline`.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_resnet.data.arrays import check_arrays
from keras_resnet.utils.checks import check_rate

# Per-channel statistics in [0, 1] pixel units, as published/used by the reference
# training recipes (torchvision / timm); data sets not listed here get statistics
# computed on their training split.
KNOWN_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "imagenette": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "imagewang": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


@dataclass
class Split:
    """One split of a source: an unbatched dataset of ``(uint8 image, int32 label)``.

    ``arrays`` holds the NumPy data for in-memory sources (used for statistics and
    for carving validation splits without touching the test data).

    Example:
        >>> x, y = np.zeros((3, 2, 2, 1), np.uint8), np.zeros(3, np.int32)
        >>> Split(tf.data.Dataset.from_tensor_slices((x, y)), 3, (x, y)).num_examples
        3
    """

    dataset: tf.data.Dataset
    num_examples: int
    arrays: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class Source:
    """A resolved data source: splits plus what the pipeline builder needs to know.

    Example:
        >>> load_digits_source().num_classes
        10
    """

    name: str
    train: Split
    test: Split | None
    class_names: tuple[str, ...]
    image_shape: tuple[int | None, int | None, int]  # native; None = varies per image
    validation: Split | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    default_augment: str = "none"
    cache_default: bool | None = None  # None (arrays): cache what a resize produced
    shard_by_data: bool = True  # under tf.distribute: by element; False: by file (TFDS)
    default_size: tuple[int, int] | None = None  # size for images of varying size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def default_augment_for(name: str, image_shape: Sequence[int | None]) -> str:
    """Preset used by ``augment="auto"`` for a data set name and native image shape.

    Args:
        name: str, data set name (``"cifar10"``, ``"tfds:mnist"``, ``"dir:PATH"``,
            ``"cifar10:PATH"``).
        image_shape: ``(H, W, C)``; ``H`` may be None for images of varying size.

    Returns:
        ``"cifar"``, ``"mnist"`` or ``"imagenet"``.

    Example:
        >>> default_augment_for("cifar100", (32, 32, 3)), default_augment_for("x", (None, None, 3))
        ('cifar', 'imagenet')
        >>> default_augment_for("cifar100_coarse:data/mnist", (32, 32, 3))
        'cifar'
    """
    prefix, _, rest = name.partition(":")  # "tfds:NAME", or "KIND:PATH" (a path is no name)
    base = (rest if prefix == "tfds" else prefix).split("/")[0].lower()
    if base in ("cifar10", "cifar100", "cifar100_coarse", "svhn_cropped", "cifar10_1", "cinic10"):
        return "cifar"
    if "mnist" in base or base in ("digits", "emnist", "kmnist"):
        return "mnist"
    height, _, channels = image_shape
    if height is None or height >= 64:
        return "imagenet"
    return "mnist" if channels == 1 else "cifar"


# ----------------------------------------------------------------------------- arrays


def array_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Wrap in-memory arrays as a :class:`Split`.

    Example:
        >>> array_split(np.zeros((3, 2, 2, 1), "uint8"), np.arange(3)).num_examples
        3
    """
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    return Split(ds, int(images.shape[0]), (images, labels))


def validation_count(num_examples: int, validation_fraction: float) -> int:
    """``round(num_examples * validation_fraction)``, refused when a part would be empty.

    Example:
        >>> validation_count(1000, 0.1)
        100
    """
    n_val = int(round(num_examples * validation_fraction))
    if n_val < 1 or n_val >= num_examples:
        raise ValueError(
            f"`validation_fraction` leaves an empty train or validation split for "
            f"{num_examples} training examples. Received: validation_fraction={validation_fraction}"
        )
    return n_val


def train_validation_split(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    validation_fraction: float,
    seed: int = 0,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Split training arrays into train and validation parts, stratified by class.

    Only the arrays passed in are split, so test examples can never leak into
    training: call it on the training split only. The split is deterministic for a
    given ``seed`` (independent of the pipeline's shuffling seed).

    Args:
        images: array ``(N, ...)`` of training images.
        labels: array ``(N,)`` of integer labels.
        validation_fraction: float in ``[0, 1)``; ``0`` returns no validation part.
        seed: int, seed of the split permutation.

    Returns:
        ``((train_images, train_labels), (val_images, val_labels) or None)``.

    Example:
        >>> import numpy as np
        >>> x, y = np.zeros((100, 8, 8, 1), "uint8"), np.arange(100) % 10
        >>> (xt, yt), (xv, yv) = train_validation_split(x, y, validation_fraction=0.2)
        >>> len(xt), len(xv)
        (80, 20)
    """
    validation_fraction = check_rate("validation_fraction", validation_fraction)
    if validation_fraction == 0:
        return (images, labels), None
    from sklearn.model_selection import train_test_split

    n_val = validation_count(len(labels), validation_fraction)
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    stratify = labels if counts.min() >= 2 and n_val >= len(counts) else None
    idx_train, idx_val = train_test_split(
        np.arange(len(labels)), test_size=n_val, random_state=seed, stratify=stratify
    )
    idx_train.sort()
    idx_val.sort()
    return (images[idx_train], labels[idx_train]), (images[idx_val], labels[idx_val])


def from_numpy(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    class_names: Sequence[str] | None,
    num_classes: int | None = None,
) -> Source:
    """Build an in-memory :class:`Source` from arrays (validated, converted to uint8).

    Args:
        name: str, the data set name.
        train: ``(images, labels)`` of the training split.
        test: ``(images, labels)`` of the test split, or None.
        class_names: names, one per class, or None (``"0"``, ``"1"``, ...).
        num_classes: int or None (default: from ``class_names`` or the labels).

    Returns:
        :class:`Source`.

    Example:
        >>> s = from_numpy("toy", (np.zeros((4, 8, 8)), np.array([0, 1, 0, 1])), None, None)
        >>> s.num_classes, s.image_shape, s.train.arrays[0].dtype.name
        (2, (8, 8, 1), 'uint8')
    """
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(
                f"`num_classes` and `class_names` disagree. Received: num_classes={num_classes},"
                f" len(class_names)={len(class_names)}"
            )
        num_classes = len(class_names)
    x, y = check_arrays(*train, num_classes=num_classes, what="train")
    if num_classes is None:
        num_classes = int(y.max()) + 1
        if test is not None:
            num_classes = max(num_classes, int(np.max(test[1])) + 1)
    if class_names is None:
        class_names = tuple(str(i) for i in range(num_classes))
    test_split = None
    if test is not None:
        xt, yt = check_arrays(test[0], test[1], num_classes=num_classes, what="test")
        if xt.shape[1:] != x.shape[1:]:
            raise ValueError(
                "Train and test images must have the same shape. "
                f"Received: train {x.shape[1:]}, test {xt.shape[1:]}"
            )
        test_split = array_split(xt, yt)
    shape = tuple(int(s) for s in x.shape[1:])
    return Source(
        name=name,
        train=array_split(x, y),
        test=test_split,
        class_names=class_names,
        image_shape=shape,
        default_augment=default_augment_for(name, shape),
    )


# ----------------------------------------------------------------------------- digits


def load_digits_source() -> Source:
    """scikit-learn's 8x8 digits (embedded, offline) with a fixed stratified split.

    1797 images; 20% (360) form the test split (``random_state=0``), the rest is the
    training split. Pixel values 0..16 are rescaled to 0..255.

    Returns:
        :class:`Source`.

    Example:
        >>> s = load_digits_source()
        >>> s.train.num_examples, s.test.num_examples, s.image_shape
        (1437, 360, (8, 8, 1))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=0.2, random_state=0, stratify=labels
    )
    return from_numpy("digits", (x_tr, y_tr), (x_te, y_te), [str(i) for i in range(10)])


# ----------------------------------------------------------------------------- IDX

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`, for making MNIST-format folders of your own
    (``"idx:FOLDER"`` data sets).

    Args:
        path: str or path-like, the file to write.
        array: uint8 array of any rank from 1 to 4 (labels ``(N,)``, images ``(N, H, W)``).

    Returns:
        The written path.

    Example:
        >>> import tempfile, numpy as np
        >>> folder = Path(tempfile.mkdtemp())
        >>> p = write_idx(folder / "x-idx3-ubyte.gz", np.eye(2, dtype="uint8")[None])
        >>> read_idx(p).tolist()
        [[[1, 0], [0, 1]]]
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 4:
        raise ValueError(
            "`array` must be a uint8 array of rank 1 to 4. "
            f"Received: array with dtype={array.dtype}, shape={array.shape}"
        )
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), optionally gzip-compressed.

    Neither Keras, TensorFlow nor TFDS expose a reader for local IDX files (TFDS
    parses them only inside its download builders), so the 4-byte header is parsed
    here by hand.

    Args:
        path: str or path-like, an ``*-idx?-ubyte`` file, optionally ending in ``.gz``.

    Returns:
        The array with the shape and dtype stored in the header.

    Example:
        >>> import os, tempfile, numpy as np
        >>> p = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
        >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]))
        >>> read_idx(p).tolist()
        [7, 9]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found. Received: path={str(path)!r}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"Not an IDX file (bad magic number). Received: path={str(path)!r}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - offset < count * dtype.itemsize:
        raise ValueError(
            f"IDX file is truncated: header promises shape {tuple(dims)}. "
            f"Received: path={str(path)!r}"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims)


def _find_idx_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    pairs: dict[str, tuple[Path, Path]] = {}
    for images in sorted(folder.glob("*-images-idx3-ubyte*")):
        prefix, suffix = images.name.split("-images-idx3-ubyte", 1)
        labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
        if labels.is_file():
            pairs[prefix] = (images, labels)
    return pairs


def load_idx_source(path: str | os.PathLike, name: str | None = None) -> Source:
    """MNIST-format IDX files in a folder.

    A folder with ``train-*`` and ``t10k-*`` image/label pairs gives the standard
    train/test split. A folder with a single pair (e.g. only the MNIST test set) is
    split by position: the first 80% train, the last 20% test (for the 10,000
    MNIST test images that is the project's 0-7999 / 8000-9999 convention).

    Args:
        path: str or path-like, the folder.
        name: str or None, the data set name (default ``"idx:PATH"``).

    Returns:
        :class:`Source`.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((10, 4, 4), "uint8"))
        >>> _ = write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(10, dtype="uint8"))
        >>> source = load_idx_source(folder)  # one pair: the first 80 % train
        >>> source.train.num_examples, source.test.num_examples, source.num_classes
        (8, 2, 10)
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"IDX folder not found. Received: path={str(path)!r}. Expected a folder with "
            "'*-images-idx3-ubyte[.gz]' and '*-labels-idx1-ubyte[.gz]' files."
        )
    pairs = _find_idx_pairs(folder)
    if not pairs:
        raise ValueError(
            f"No IDX image/label pair in folder. Received: path={str(path)!r}. Expected "
            "'PREFIX-images-idx3-ubyte[.gz]' with a matching 'PREFIX-labels-idx1-ubyte[.gz]'."
        )

    def load(pair: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        x, y = read_idx(pair[0]), read_idx(pair[1])
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"IDX images must be (N, H, W) and labels (N,) of equal length. "
                f"Received: {pair[0].name} {x.shape}, {pair[1].name} {y.shape}"
            )
        return x, y

    if "train" in pairs and "t10k" in pairs:
        train, test = load(pairs["train"]), load(pairs["t10k"])
    elif len(pairs) == 1:
        x, y = load(next(iter(pairs.values())))
        cut = int(round(0.8 * len(x)))  # 8000 of the 10,000 MNIST test images
        train, test = (x[:cut], y[:cut]), (x[cut:], y[cut:])
    else:
        raise ValueError(
            f"Ambiguous IDX folder: expected 'train' and 't10k' pairs or a single pair. "
            f"Received: pairs={sorted(pairs)} in path={str(path)!r}"
        )
    return from_numpy(name or f"idx:{folder}", train, test, None)  # classes 0..max(label)
