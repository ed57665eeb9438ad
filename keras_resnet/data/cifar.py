"""The official CIFAR-10 / CIFAR-100 distribution files (Krizhevsky 2009), read offline.

Accepted: the downloaded archives (``cifar-10-python.tar.gz``, ``cifar-10-binary.tar.gz``,
``cifar-100-python.tar.gz``, ``cifar-100-binary.tar.gz``, recognised by the folder
inside, whatever the archive is called; read in memory, never extracted), or the
extracted layout folder (``cifar-10-batches-bin/``, ``cifar-10-batches-py/``,
``cifar-100-binary/``, ``cifar-100-python/``), or a folder that contains one.

Binary records are a label byte (CIFAR-100: coarse then fine) and 3,072 pixel bytes,
the 1,024 red, green then blue values row-major. The python layout holds Python 2
pickles, read by an unpickler that allows only the globals a NumPy uint8 array needs.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import lzma
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np

from keras_resnet.data import sources as src
from keras_resnet.utils import checks

PIXELS = 32 * 32 * 3
LABELS = ("fine", "coarse")


class _Layout(NamedTuple):
    folder: str
    classes: int  # 10 or 100 (fine)
    binary: bool
    train: tuple[str, ...]
    test: str
    meta: str  # binary CIFAR-100: the fine names; the coarse ones are beside it


_LAYOUTS = {
    layout.folder: layout
    for layout in (
        _Layout(
            "cifar-10-batches-bin",
            10,
            True,
            tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
            "test_batch.bin",
            "batches.meta.txt",
        ),
        _Layout(
            "cifar-10-batches-py",
            10,
            False,
            tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test_batch",
            "batches.meta",
        ),
        _Layout("cifar-100-binary", 100, True, ("train.bin",), "test.bin", "fine_label_names.txt"),
        _Layout("cifar-100-python", 100, False, ("train",), "test", "meta"),
    )
}


@dataclasses.dataclass
class _Files:
    """The files of one layout folder, on disk or read in memory from an archive."""

    layout: _Layout
    prefix: str  # the folder, or "ARCHIVE:MEMBER-FOLDER"
    members: dict[str, bytes] | None = None  # an archive's files; None: on disk

    def where(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def has(self, name: str) -> bool:
        if self.members is None:
            return Path(self.prefix, name).is_file()
        return name in self.members

    def read(self, name: str) -> bytes:
        if not self.has(name):
            raise ValueError(
                f"The CIFAR files lack {name!r}: expected {self.where(name)!r}. "
                f"Received: path={self.prefix!r}"
            )
        return Path(self.prefix, name).read_bytes() if self.members is None else self.members[name]


# The python-layout files come from the internet, and unpickling runs whatever callables
# a file names (os.system, builtins.eval, ...). Only what rebuilds a NumPy array is
# allowed: Python 2 / NumPy 1 pickles name numpy.core, NumPy 2 ones numpy._core and
# _codecs.encode (bytes at protocol 2, latin1 only). np.dtype refuses object arrays.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object arrays are not allowed ({dtype})")
    return dtype


def _latin1(text: str, encoding: str) -> bytes:
    if encoding not in ("latin1", "latin-1"):  # what pickle writes; no other codec runs
        raise pickle.UnpicklingError(f"only latin1 bytes are allowed ({encoding!r})")
    return codecs.encode(text, encoding)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): _latin1,
}


class _RefusedGlobal(ValueError):
    pass


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"CIFAR pickle names the global {module}.{name}, which is not allowed (only "
                f"NumPy array reconstruction is; nothing in the file was run). "
                f"Received: path={self.where!r}"
            ) from None


def _unpickle(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = _Unpickler(data, where).load()
    except _RefusedGlobal:
        raise
    except Exception as err:  # a corrupt pickle fails in many ways; name the file
        raise ValueError(
            f"Not a readable CIFAR pickle ({type(err).__name__}: {err}). Received: path={where!r}"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"A CIFAR pickle must hold a dict. Received: path={where!r}")
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _check_labels(labels: Any, count: int, classes: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"CIFAR labels must be {count} integers, one per image. Received: labels with "
            f"dtype={labels.dtype}, shape={labels.shape} in path={where!r}"
        )
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise ValueError(
            f"CIFAR label {int(labels[bad[0]])} at record {int(bad[0])} is outside the "
            f"{classes} classes [0, {classes}). Received: path={where!r}"
        )
    return labels.astype(np.int32)


def _to_nhwc(pixels: np.ndarray) -> np.ndarray:
    """``(N, 3072)`` planes (1,024 R, G, B values each, row-major) -> ``(N, 32, 32, 3)``."""
    return np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_binary(
    data: bytes, where: str, layout: _Layout, coarse: bool
) -> tuple[np.ndarray, np.ndarray]:
    head = 1 if layout.classes == 10 else 2  # CIFAR-100: coarse byte, fine byte
    record = head + PIXELS
    if not data or len(data) % record:
        raise ValueError(
            f"A CIFAR binary batch must hold whole {record}-byte records, but this one has "
            f"{len(data)} bytes. Received: path={where!r}"
        )
    rows = np.frombuffer(data, np.uint8).reshape(-1, record)
    labels = rows[:, 0 if coarse or head == 1 else 1]
    classes = 20 if coarse else layout.classes
    return _to_nhwc(rows[:, head:]), _check_labels(labels, len(rows), classes, where)


def _read_python(
    data: bytes, where: str, layout: _Layout, coarse: bool
) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(data, where)
    pixels = batch.get("data")
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 2
        or pixels.shape[1] != PIXELS
    ):
        got = (
            f"dtype={pixels.dtype}, shape={pixels.shape}"
            if isinstance(pixels, np.ndarray)
            else f"a {type(pixels).__name__}"
        )
        raise ValueError(
            f"CIFAR `data` must be a uint8 array of shape (N, {PIXELS}). Received: {got} "
            f"in path={where!r}"
        )
    key = "labels" if layout.classes == 10 else ("coarse_labels" if coarse else "fine_labels")
    if key not in batch:
        raise ValueError(f"A CIFAR pickle must hold `{key}`. Received: path={where!r}")
    classes = 20 if coarse else layout.classes
    return _to_nhwc(pixels), _check_labels(batch.get(key), len(pixels), classes, where)


def _class_names(files: _Files, coarse: bool) -> tuple[str, ...]:
    layout, labels = files.layout, "coarse" if coarse else "fine"
    meta = "coarse_label_names.txt" if coarse and layout.binary else layout.meta
    data = files.read(meta)
    if layout.binary:
        lines = data.decode("utf-8", errors="replace").splitlines()
        names = [line.strip() for line in lines if line.strip()]
    else:
        key = "label_names" if layout.classes == 10 else f"{labels}_label_names"
        names = _unpickle(data, files.where(meta)).get(key) or []
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    expected = 20 if coarse else layout.classes
    if len(names) != expected:
        raise ValueError(
            f"A CIFAR class-name file must list {expected} names; this one lists {len(names)}. "
            f"Received: path={files.where(meta)!r}"
        )
    return tuple(names)


def _not_cifar(path: str | os.PathLike, what: str) -> ValueError:
    return ValueError(
        f"Not a CIFAR {what}: expected one of the layout folders {list(_LAYOUTS)}, the "
        "folder itself, a folder that contains one, or a .tar.gz archive of one (the "
        f"official downloads). Received: path={str(path)!r}"
    )


def _open_archive(path: Path) -> _Files:
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.ReadError:
        raise _not_cifar(path, "archive") from None
    members: dict[str, bytes] = {}
    folder: PurePosixPath | None = None
    try:
        with tar:
            for member in tar:  # in order: one pass through a compressed stream
                parent, name = PurePosixPath(member.name).parent, PurePosixPath(member.name).name
                if not member.isfile() or parent.name not in _LAYOUTS:
                    continue
                if folder is None:
                    folder = parent  # the first layout folder; others are ignored
                if parent == folder and name in _wanted(folder.name):
                    members[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as err:
        raise ValueError(
            f"The CIFAR archive is damaged ({err}). Received: path={str(path)!r}"
        ) from None
    if folder is None:
        raise _not_cifar(path, "archive")
    return _Files(_LAYOUTS[folder.name], f"{path}:{folder}", members)


def _wanted(folder: str) -> set[str]:
    layout = _LAYOUTS[folder]
    return {*layout.train, layout.test, layout.meta, "coarse_label_names.txt"}


def _open(path: str | os.PathLike) -> _Files:
    root = checks.check_path("path", path)
    if root.is_dir():
        if root.name in _LAYOUTS:
            return _Files(_LAYOUTS[root.name], str(root))
        folder = next((root / n for n in _LAYOUTS if (root / n).is_dir()), None)
        if folder is None:
            raise _not_cifar(path, "folder")
        return _Files(_LAYOUTS[folder.name], str(folder))
    if not root.is_file():
        raise FileNotFoundError(f"CIFAR archive or folder not found. Received: path={str(path)!r}")
    return _open_archive(root)


def read_cifar(
    path: str | os.PathLike, *, labels: str = "fine"
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...]]:
    """Read the official CIFAR-10 / CIFAR-100 files: an archive or an extracted folder.

    Both distribution layouts are read (binary and python); the training batches
    present are concatenated in order (at least one, with the test batch). Python
    pickles are read by a restricted unpickler: a file that names any global other
    than NumPy's array reconstruction is refused before anything in it runs.

    Reference: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.

    Args:
        path: str or path-like: ``cifar-10-python.tar.gz``, ``cifar-10-binary.tar.gz``,
            ``cifar-100-python.tar.gz``, ``cifar-100-binary.tar.gz`` (any name: the
            folder inside is recognised), a layout folder (``cifar-10-batches-bin``,
            ``cifar-10-batches-py``, ``cifar-100-binary``, ``cifar-100-python``) or a
            folder that contains one.
        labels: ``"fine"``, or ``"coarse"`` for CIFAR-100's 20 superclasses.

    Returns:
        ``((x_train, y_train), (x_test, y_test), class_names)``: uint8 images
        ``(N, 32, 32, 3)`` (NHWC, RGB), int32 labels ``(N,)``, one name per class.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp(), "cifar-10-batches-bin")
        >>> folder.mkdir()
        >>> records = np.zeros((2, 1 + 3072), np.uint8)
        >>> records[:, 0] = [3, 7]  # label bytes
        >>> records[1, 1:1025] = 255  # the red plane of image 1
        >>> for name in ("data_batch_1.bin", "test_batch.bin"):
        ...     _ = (folder / name).write_bytes(records.tobytes())
        >>> _ = (folder / "batches.meta.txt").write_text("\\n".join("abcdefghij"))
        >>> (x, y), (x_test, y_test), names = read_cifar(folder.parent)
        >>> x.shape, y.tolist(), x[1, 5, 9].tolist(), names[3]
        ((2, 32, 32, 3), [3, 7], [255, 0, 0], 'd')
    """
    if labels not in LABELS:
        raise ValueError(f"`labels` must be one of {LABELS}. Received: labels={labels!r}")
    files = _open(path)
    layout, coarse = files.layout, labels == "coarse"
    if coarse and layout.classes != 100:
        raise ValueError(
            f"`labels='coarse'` applies to CIFAR-100 only, but {files.prefix!r} holds "
            f"CIFAR-10. Received: labels={labels!r}"
        )
    batches = [name for name in layout.train if files.has(name)]
    if not batches:
        raise ValueError(
            f"The CIFAR files hold no training batch: expected {files.where(layout.train[0])!r}"
            f". Received: path={str(path)!r}"
        )
    test_data = files.read(layout.test)
    names = _class_names(files, coarse)
    parse = _read_binary if layout.binary else _read_python
    test = parse(test_data, files.where(layout.test), layout, coarse)
    parts = [parse(files.read(n), files.where(n), layout, coarse) for n in batches]
    train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return train, test, names


def load_cifar_source(path: str | os.PathLike, *, name: str, labels: str = "fine") -> src.Source:
    """The CIFAR files at ``path`` as a :class:`~keras_resnet.data.sources.Source`.

    The normalization is the published CIFAR-10 or CIFAR-100 mean/std (the CIFAR-100
    one for its coarse labels too) and ``augment="auto"`` picks the ``cifar`` preset.

    Args:
        path: str or path-like, as for :func:`read_cifar`.
        name: str, the data set name recorded (``"cifar10:PATH"``).
        labels: ``"fine"``, or ``"coarse"`` for CIFAR-100's 20 superclasses.

    Returns:
        :class:`~keras_resnet.data.sources.Source`.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp(), "cifar-10-batches-bin")
        >>> folder.mkdir()
        >>> records = np.zeros((20, 1 + 3072), np.uint8)
        >>> records[:, 0] = np.arange(20) % 10
        >>> for name in ("data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"):
        ...     _ = (folder / name).write_bytes(records.tobytes())
        >>> _ = (folder / "batches.meta.txt").write_text("\\n".join("abcdefghij"))
        >>> source = load_cifar_source(folder, name="cifar10:" + str(folder))
        >>> source.train.num_examples, source.test.num_examples, source.mean
        (40, 20, (0.4914, 0.4822, 0.4465))
    """
    train, test, class_names = read_cifar(path, labels=labels)
    mean, std = src.KNOWN_STATS["cifar10" if len(class_names) == 10 else "cifar100"]
    source = src.from_numpy(name, train, test, class_names)
    return dataclasses.replace(source, mean=mean, std=std, default_augment="cifar")
