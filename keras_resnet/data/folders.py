"""Image folders: one subfolder per class, streamed from disk with tf.data."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_resnet.data import sources as src
from keras_resnet.utils.images import decode_image

logger = logging.getLogger(__name__)
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def _looks_like_image(path: Path) -> bool:
    # a cheap header check at scan time (reading every image fully would defeat
    # streaming); files that pass but fail to decode are dropped by ignore_errors()
    if path.suffix.lower() not in src.IMAGE_EXTENSIONS:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return any(head.startswith(m) for m in _MAGIC) and path.stat().st_size > 32


def _scan(root: Path, class_names: list[str]) -> tuple[list[str], list[int], list[str]]:
    files, labels, skipped = [], [], []
    for label, cls in enumerate(class_names):
        folder = root / cls
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                if _looks_like_image(p):
                    files.append(str(p))
                    labels.append(label)
                else:
                    skipped.append(str(p))
    return files, labels, skipped


def _classes(root: Path) -> list[str]:
    """The subfolder names of ``root``; a link back to ``root`` or above it is refused."""
    names = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    real = root.resolve()
    for name in names:
        target = (root / name).resolve()
        if real.is_relative_to(target):  # its images would be every class's images again
            raise ValueError(
                f"Class folder {name!r} is a link to {str(target)!r}, which holds the image "
                f"folder itself (a symlink loop). Received: path={str(root)!r}"
            )
    return names


def _split_files(
    folder: Path | None, tag: str, class_names: list[str], order: np.random.Generator
) -> tuple[tuple[list[str], list[int]] | None, list[str]]:
    """The (files, labels) of one split folder in a fixed shuffled order, and the skipped."""
    if folder is None:
        return None, []
    extra = sorted(set(_classes(folder)) - set(class_names))
    if extra:
        raise ValueError(
            f"Class folders {extra} in {tag} are not in the training classes "
            f"{class_names}. Received: path={str(folder)!r}"
        )
    files, labels, skipped = _scan(folder, class_names)
    if not files:
        raise ValueError(
            f"No readable images in the {tag} folder (skipped {len(skipped)} files). "
            f"Received: path={str(folder)!r}"
        )
    empty = sorted(set(class_names) - {class_names[i] for i in labels})
    if tag == "train" and empty:
        raise ValueError(
            f"Class folder(s) {empty} in the training folder hold no readable image "
            f"(skipped {len(skipped)} files in all); remove them or add images. "
            f"Received: path={str(folder)!r}"
        )
    perm = order.permutation(len(files))
    return ([files[i] for i in perm], [labels[i] for i in perm]), skipped


def _first_image(files: list[str], channels: int | None) -> tuple[int, tuple[int, int], int]:
    """Channels to decode with (1 or 3), the (height, width) of the first readable image,
    and how many files before it failed to decode (corrupt, or too large)."""
    for failed, file in enumerate(files):
        try:
            first = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            continue
        in_channels = channels or (1 if int(first.shape[-1]) in (1, 2) else 3)
        return in_channels, (int(first.shape[0]), int(first.shape[1])), failed
    raise ValueError(f"None of the {len(files)} training images can be decoded, e.g. {files[:3]}")


def _report(msg: str) -> None:
    logger.warning(msg)
    warnings.warn(msg, stacklevel=3)


def _file_split(files_labels: tuple | None, channels: int, root: Path) -> src.Split | None:
    """A streamed split: decode each file on the fly, dropping files that fail to decode
    (a truncated file never ends an epoch) and naming them at the end of the pass."""
    if files_labels is None:
        return None
    files, labels = files_labels
    decoded: set[bytes] = set()
    reported: set[str] = set()

    def note(file: tf.Tensor) -> bool:
        if name := file.numpy():  # a decoded file
            decoded.add(name)
            return True
        skipped = [f for f in files if f.encode() not in decoded and f not in reported]
        if skipped:  # the end of a pass that dropped files not reported before
            reported.update(skipped)
            _report(
                f"Skipped {len(skipped)} of {len(files)} image file(s) in {root} that could "
                f"not be decoded, e.g. {', '.join(skipped[:3])}"
            )
        return False

    def load(file, label):
        return file, decode_image(tf.io.read_file(file), channels), label

    ds = tf.data.Dataset.from_tensor_slices((files, np.asarray(labels, np.int32)))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    end = tf.data.Dataset.from_tensors(("", tf.zeros((0, 0, channels), tf.uint8), -1))
    ds = ds.concatenate(end).filter(
        lambda f, x, y: tf.reshape(tf.py_function(note, [f], tf.bool), [])
    )
    return src.Split(ds.map(lambda f, x, y: (x, y)), len(files))


def _split_roots(root: Path) -> tuple[Path, Path | None, Path | None]:
    """The train, test and validation folders: ``PATH/train`` etc. when ``PATH/train``
    holds class folders, else PATH (whose folders, one named ``train`` too, are classes)."""
    names = _classes(root)
    if "train" not in names or not _classes(root / "train"):
        return root, None, None
    others = sorted(set(names) - {"train", "test", "validation", "val"})
    if others:
        raise ValueError(
            f"'train' holds class folders (the train/test layout) but {others} beside it "
            "are not 'test', 'validation' or 'val': move them into train/, or use "
            f"PATH/<class>/<image> only. Received: path={str(root)!r}"
        )
    test = root / "test" if (root / "test").is_dir() else None
    val = next((root / v for v in ("validation", "val") if (root / v).is_dir()), None)
    return root / "train", test, val


def load_folder_source(path: str, *, name: str, channels: int | None = None) -> src.Source:
    """Images in class subfolders: ``PATH/<class>/*.png|jpg|gif|bmp``.

    When ``PATH/train`` holds class folders (and optionally ``PATH/test/<class>`` and
    ``PATH/validation/<class>`` or ``PATH/val/<class>``) those folders form the
    splits; otherwise all of ``PATH`` is the training split (a class may be called
    ``train``) and there is no test split. A class folder that links back to ``PATH``
    is refused. Files are decoded on the fly (never all loaded into memory) with
    :func:`keras_resnet.utils.images.decode_image`, every format to the same channels;
    non-image files are skipped, counted and reported with one warning, and files
    that fail to decode are dropped and named at the end of the pass that met them. The file list
    is put in a fixed pseudo-random order so that a validation split carved from it
    covers all classes and the shuffle buffer sees mixed classes. A training folder
    needs at least two classes, each with at least one readable image: an empty class
    folder would otherwise become a class that is never seen.

    Args:
        path: str, the folder.
        name: str, the data set name (``"dir:PATH"``).
        channels: 1 or 3 to decode every image with that many channels, or None (the
            first training image decides).

    Returns:
        :class:`~keras_resnet.data.sources.Source`.

    Example:
        >>> import tempfile, pathlib, tensorflow as tf
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> png = tf.io.encode_png(tf.zeros((4, 4, 1), tf.uint8)).numpy()
        >>> for c in ("a", "b"):
        ...     (root / c).mkdir()
        ...     _ = (root / c / "0.png").write_bytes(png)
        >>> load_folder_source(str(root), name="dir:toy").class_names
        ('a', 'b')
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder not found. Received: path={path!r}")
    train_root, test_root, val_root = _split_roots(root)
    class_names = _classes(train_root)
    if not class_names:
        raise ValueError(
            f"Image folder has no class subfolders (expected PATH/<class>/<image>). "
            f"Received: path={path!r}"
        )
    order = np.random.default_rng(0)
    (train_files, train_labels), skipped = _split_files(train_root, "train", class_names, order)
    if len(class_names) < 2:
        raise ValueError(
            "An image folder needs at least 2 class subfolders to train a classifier. "
            f"Received: path={path!r} with class folders {class_names}"
        )
    in_channels, first_size, failed = _first_image(train_files, channels)
    skipped += train_files[:failed]
    train_files, train_labels = train_files[failed:], train_labels[failed:]
    test_fl, test_skipped = _split_files(test_root, "test", class_names, order)
    val_fl, val_skipped = _split_files(val_root, "validation", class_names, order)
    skipped += test_skipped + val_skipped
    if skipped:
        _report(
            f"Skipped {len(skipped)} corrupt or non-image file(s) in {root}, e.g. "
            f"{', '.join(skipped[:3])}"
        )
    return src.Source(
        name=name,
        train=_file_split((train_files, train_labels), in_channels, train_root),
        test=_file_split(test_fl, in_channels, test_root),
        validation=_file_split(val_fl, in_channels, val_root),
        class_names=tuple(class_names),
        image_shape=(None, None, in_channels),
        default_augment=src.default_augment_for(name, (*first_size, in_channels)),
        cache_default=False,
        default_size=first_size,
    )
