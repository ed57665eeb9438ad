"""The official CIFAR-10 / CIFAR-100 files as a data source (keras_resnet.data.cifar).

Tiny files in both distribution layouts (binary and python pickles), written here, read
as archives and as folders; the error cases; a malicious pickle; the real CIFAR-10
subset when it is present.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from keras_resnet.data import get_datasets, list_datasets, read_cifar
from keras_resnet.data.cifar import load_cifar_source
from keras_resnet.data.sources import KNOWN_STATS

NAMES10 = tuple(f"class{i}" for i in range(10))
FINE = tuple(f"fine{i}" for i in range(100))
COARSE = tuple(f"coarse{i}" for i in range(20))
LAYOUTS = ("cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary", "cifar-100-python")


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), as the official files do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle like the official python-layout files (numpy.core globals)."""
    import io

    out = io.BytesIO()
    _Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def planes(x: np.ndarray) -> np.ndarray:
    """NHWC images -> ``(N, 3072)`` rows of the red, green then blue planes."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def make_split(classes: int, per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    n = classes * per_class
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return x, (np.arange(n) * 7) % classes  # every class, not in order


def write_layout(root: Path, layout: str, *, batches: int = 5, pickler=py2_pickle) -> dict:
    """Write a tiny data set in ``root/layout``; return what reading it must give."""
    folder = root / layout
    folder.mkdir(parents=True)
    ten = layout.startswith("cifar-10-")
    train = make_split(10 if ten else 100, 3 if ten else 1, seed=0)
    test = make_split(10 if ten else 100, 1, seed=1)
    if ten:
        files = [(f"data_batch_{i + 1}", i) for i in range(batches)] + [("test_batch", None)]
    else:
        files = [("train", None), ("test", None)]
    for name, i in files:
        x, y = test if name.startswith("test") else train
        if i is not None:
            x, y = x[i::batches], y[i::batches]
        coarse = y // 5
        if layout.endswith("bin") or layout.endswith("binary"):
            head = [y[:, None]] if ten else [coarse[:, None], y[:, None]]
            rows = np.concatenate([*(h.astype(np.uint8) for h in head), planes(x)], axis=1)
            (folder / f"{name}.bin").write_bytes(rows.tobytes())
        else:
            batch = {"data": planes(x), "batch_label": f"batch {name}"}
            if ten:
                batch["labels"] = [int(v) for v in y]
            else:
                batch.update(fine_labels=y.tolist(), coarse_labels=coarse.tolist())
            (folder / name).write_bytes(pickler(batch))
    if layout == "cifar-10-batches-bin":
        (folder / "batches.meta.txt").write_text("\n".join(NAMES10) + "\n\n")
    elif layout == "cifar-100-binary":
        (folder / "fine_label_names.txt").write_text("\n".join(FINE) + "\n")
        (folder / "coarse_label_names.txt").write_text("\n".join(COARSE) + "\n")
    elif ten:
        (folder / "batches.meta").write_bytes(pickler({"label_names": list(NAMES10)}))
    else:
        meta = {"fine_label_names": list(FINE), "coarse_label_names": list(COARSE)}
        (folder / "meta").write_bytes(pickler(meta))
    if ten:  # the batches in file order
        order = np.concatenate([np.arange(len(train[0]))[i::batches] for i in range(batches)])
        train = train[0][order], train[1][order]
    return {"folder": folder, "train": train, "test": test, "names": NAMES10 if ten else FINE}


def pack(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=folder.name)
    return archive


ARCHIVES = {
    "cifar-10-batches-bin": "cifar-10-binary.tar.gz",
    "cifar-10-batches-py": "cifar-10-python.tar.gz",
    "cifar-100-binary": "cifar-100-binary.tar.gz",
    "cifar-100-python": "cifar-100-python.tar.gz",
}


def where(form: str, expected: dict, tmp_path: Path) -> Path:
    folder = expected["folder"]
    if form == "archive":
        return pack(folder, tmp_path / ARCHIVES[folder.name])
    return folder if form == "layout folder" else folder.parent


@pytest.mark.parametrize("form", ["archive", "layout folder", "parent folder"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_of_both_data_sets_read_as_archive_and_folder(layout, form, tmp_path):
    expected = write_layout(tmp_path / "data", layout)
    path = where(form, expected, tmp_path)
    (x, y), (xt, yt), names = read_cifar(path)
    np.testing.assert_array_equal(x, expected["train"][0])
    np.testing.assert_array_equal(y, expected["train"][1])
    np.testing.assert_array_equal(xt, expected["test"][0])
    np.testing.assert_array_equal(yt, expected["test"][1])
    assert x.dtype == np.uint8 and y.dtype == np.int32 and x.shape[1:] == (32, 32, 3)
    assert names == expected["names"]
    if layout.startswith("cifar-100"):
        (xc, yc), (_, ytc), coarse = read_cifar(path, labels="coarse")
        np.testing.assert_array_equal(xc, x)
        np.testing.assert_array_equal(yc, y // 5)
        np.testing.assert_array_equal(ytc, yt // 5)
        assert coarse == COARSE


def test_an_archive_is_recognised_by_its_member_folder_not_its_name(tmp_path):
    expected = write_layout(tmp_path / "nested" / "deeper", "cifar-10-batches-py", batches=2)
    archive = tmp_path / "download.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "nested", arcname="nested")
    (x, y), _, names = read_cifar(archive)
    assert len(x) == 30 and names == NAMES10
    np.testing.assert_array_equal(y, expected["train"][1])


@pytest.mark.parametrize("layout", ["cifar-10-batches-bin", "cifar-10-batches-py"])
def test_pixel_order_is_red_green_blue_planes_row_major(layout, tmp_path):
    write_layout(tmp_path, layout, batches=1)
    red = np.arange(1024) % 251
    green, blue = (red + 1) % 256, (red + 2) % 256
    row = np.concatenate([red, green, blue]).astype(np.uint8)
    folder = tmp_path / layout
    if layout.endswith("bin"):
        (folder / "test_batch.bin").write_bytes(bytes([4]) + row.tobytes())
    else:
        (folder / "test_batch").write_bytes(py2_pickle({"data": row[None], "labels": [4]}))
    _, (xt, yt), _ = read_cifar(folder)
    assert xt.shape == (1, 32, 32, 3) and yt.tolist() == [4]
    # pixel (row 1, column 2) is the 34th value of each plane
    assert xt[0, 1, 2].tolist() == [34, 35, 36]
    np.testing.assert_array_equal(xt[0, :, :, 0], red.reshape(32, 32))
    np.testing.assert_array_equal(xt[0, :, :, 2], blue.reshape(32, 32))


def test_numpy2_protocol2_pickles_are_accepted(tmp_path):
    def numpy2(obj):
        return pickle.dumps(obj, protocol=2)

    probe = numpy2({"data": np.zeros((1, 3072), np.uint8)})
    assert b"numpy._core.multiarray" in probe and b"_codecs" in probe
    expected = write_layout(tmp_path, "cifar-100-python", pickler=numpy2)
    (x, y), _, names = read_cifar(tmp_path / "cifar-100-python")
    np.testing.assert_array_equal(x, expected["train"][0])
    assert names == FINE
    _, (_, yt), coarse = read_cifar(tmp_path, labels="coarse")
    np.testing.assert_array_equal(yt, expected["test"][1] // 5)
    assert coarse == COARSE


def test_source_uses_the_published_stats_and_the_cifar_preset(tmp_path):
    write_layout(tmp_path, "cifar-100-binary")
    fine = load_cifar_source(tmp_path, name="cifar100:x")
    coarse = load_cifar_source(tmp_path, name="cifar100_coarse:x", labels="coarse")
    for source in (fine, coarse):
        assert (source.mean, source.std) == KNOWN_STATS["cifar100"]
        assert source.default_augment == "cifar"
    assert fine.num_classes == 100 and coarse.num_classes == 20
    write_layout(tmp_path / "ten", "cifar-10-batches-py", batches=3)
    ten = load_cifar_source(tmp_path / "ten", name="cifar10:ten")
    assert (ten.mean, ten.std) == KNOWN_STATS["cifar10"] and ten.class_names == NAMES10


def test_get_datasets_reads_the_name_forms(tmp_path):
    expected = write_layout(tmp_path / "ten", "cifar-10-batches-bin", batches=2)
    archive = pack(expected["folder"], tmp_path / "cifar-10-binary.tar.gz")
    ds = get_datasets(f"cifar10:{archive}", batch_size=4, seed=0, validation_fraction=0.2)
    x, y = next(iter(ds.train))
    assert x.shape == (4, 32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert ds.info.num_examples == {"train": 24, "validation": 6, "test": 10}
    assert ds.info.class_names == NAMES10 and ds.info.mean == KNOWN_STATS["cifar10"][0]
    assert ds.info.name == f"cifar10:{archive}"
    write_layout(tmp_path / "hundred", "cifar-100-python")
    coarse = get_datasets(f"cifar100_coarse:{tmp_path / 'hundred'}", batch_size=8)
    assert coarse.info.num_classes == 20 and coarse.info.std == KNOWN_STATS["cifar100"][1]
    fine = get_datasets(f"cifar100:{tmp_path / 'hundred'}", batch_size=8)
    assert fine.info.num_classes == 100
    for form in ("cifar10:PATH", "cifar100:PATH", "cifar100_coarse:PATH"):
        assert form in list_datasets()


def test_name_forms_refuse_tfds_options_and_the_wrong_data_set(tmp_path):
    write_layout(tmp_path, "cifar-100-binary")
    with pytest.raises(ValueError, match="`train_split`.*TFDS data sets only"):
        get_datasets(f"cifar100:{tmp_path}", batch_size=8, train_split="train[:10]")
    with pytest.raises(ValueError, match="expects CIFAR files with 10 classes"):
        get_datasets(f"cifar10:{tmp_path}", batch_size=8)
    write_layout(tmp_path / "ten", "cifar-10-batches-bin", batches=1)
    with pytest.raises(ValueError, match=r"`labels='coarse'` applies to CIFAR-100 only"):
        get_datasets(f"cifar100_coarse:{tmp_path / 'ten'}", batch_size=8)
    with pytest.raises(ValueError, match=r"`labels` must be one of.*labels='medium'"):
        read_cifar(tmp_path, labels="medium")


def test_a_tfds_version_is_not_taken_for_a_path():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=8):
        ds = get_datasets("cifar10:3.0.2", batch_size=4, validation_fraction=0.0)
    assert ds.info.name == "cifar10:3.0.2" and ds.info.num_classes == 10


# ----------------------------------------------------------------------------- errors


def test_a_binary_batch_of_partial_records_is_refused(tmp_path):
    expected = write_layout(tmp_path, "cifar-10-batches-bin", batches=2)
    batch = expected["folder"] / "data_batch_2.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    size = batch.stat().st_size
    with pytest.raises(ValueError, match=rf"3073-byte records.*{size} bytes.*data_batch_2\.bin"):
        read_cifar(tmp_path)


def test_a_label_outside_the_classes_is_refused_with_its_record(tmp_path):
    expected = write_layout(tmp_path, "cifar-100-binary")
    test = expected["folder"] / "test.bin"
    rows = np.frombuffer(test.read_bytes(), np.uint8).reshape(-1, 3074).copy()
    rows[3, 0] = 20  # a coarse label: only 20 classes
    test.write_bytes(rows.tobytes())
    read_cifar(tmp_path)  # the fine labels are fine
    with pytest.raises(ValueError, match=r"label 20 at record 3 .*20 classes.*test\.bin"):
        read_cifar(tmp_path, labels="coarse")
    expected = write_layout(tmp_path / "py", "cifar-10-batches-py", batches=1)
    labels = [0] * 29 + [10]
    batch = {"data": np.zeros((30, 3072), np.uint8), "labels": labels}
    (expected["folder"] / "data_batch_1").write_bytes(py2_pickle(batch))
    with pytest.raises(ValueError, match=r"label 10 at record 29 .*data_batch_1"):
        read_cifar(tmp_path / "py")


@pytest.mark.parametrize("layout", ["cifar-10-batches-bin", "cifar-100-python"])
def test_a_folder_without_its_test_batch_names_the_file_expected(layout, tmp_path):
    expected = write_layout(tmp_path, layout, batches=1)
    test = "test_batch.bin" if layout.endswith("bin") else "test"
    (expected["folder"] / test).unlink()
    with pytest.raises(ValueError, match=rf"lack '{test}': expected '.*{layout}/{test}'"):
        read_cifar(tmp_path)
    archive = pack(expected["folder"], tmp_path / "a.tar.gz")
    with pytest.raises(ValueError, match=rf"a\.tar\.gz:{layout}/{test}"):
        read_cifar(archive)


def test_fewer_training_batches_are_read_but_not_none(tmp_path):
    expected = write_layout(tmp_path, "cifar-10-batches-bin", batches=5)
    for i in (2, 5):
        (expected["folder"] / f"data_batch_{i}.bin").unlink()
    (x, _), _, _ = read_cifar(tmp_path)
    assert len(x) == 18
    for i in (1, 3, 4):
        (expected["folder"] / f"data_batch_{i}.bin").unlink()
    with pytest.raises(ValueError, match=r"no training batch: expected .*data_batch_1\.bin"):
        read_cifar(tmp_path)


def test_what_is_not_cifar_is_refused_naming_it_and_the_layouts(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.txt").write_text("x")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "photos", arcname="photos")
    for path in (archive, tmp_path / "photos", tmp_path / "photos" / "a.txt"):
        with pytest.raises(ValueError, match=r"Not a CIFAR .*cifar-10-batches-bin.*") as err:
            read_cifar(path)
        assert str(path) in str(err.value) and "cifar-100-python" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_cifar(tmp_path / "nope")
    expected = write_layout(tmp_path / "data", "cifar-10-batches-bin", batches=1)
    archive = pack(expected["folder"], tmp_path / "cut.tar.gz")
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"archive is damaged.*cut\.tar\.gz"):
        read_cifar(archive)
    with pytest.raises(FileNotFoundError, match="nope"):
        get_datasets(f"cifar10:{tmp_path / 'nope'}", batch_size=8)


@pytest.mark.parametrize(
    "data, problem",
    [
        (np.zeros((30, 3071), np.uint8), "shape=(30, 3071)"),
        (np.zeros((30, 3072), np.float32), "dtype=float32"),
        ([[0] * 3072] * 30, "list"),
    ],
)
def test_a_pixel_array_of_the_wrong_shape_or_dtype_is_refused(data, problem, tmp_path):
    expected = write_layout(tmp_path, "cifar-10-batches-py", batches=1)
    batch = {"data": data, "labels": [0] * 30}
    (expected["folder"] / "test_batch").write_bytes(py2_pickle(batch))
    with pytest.raises(ValueError, match=r"uint8 array of shape \(N, 3072\)") as err:
        read_cifar(tmp_path)
    assert problem in str(err.value) and "test_batch" in str(err.value)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious(named: str, marker: Path) -> bytes:
    if named == "os.system":  # hand-written, protocol 0
        return f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    if named == "builtins.open":
        return f"cbuiltins\nopen\n(V{marker}\nVw\ntR.".encode()
    return pickle.dumps({"data": _Evil(marker)}, protocol=2)  # os.system is posix.system


@pytest.mark.parametrize("named", ["os.system", "builtins.open", "posix.system"])
def test_a_malicious_pickle_is_refused_before_it_runs(named, tmp_path):
    marker = tmp_path / "marker"
    payload = malicious(named, marker)
    expected = write_layout(tmp_path / "data", "cifar-10-batches-py", batches=1)
    (expected["folder"] / "data_batch_1").write_bytes(payload)
    with pytest.raises(ValueError, match=rf"global {named}, which is not allowed") as err:
        read_cifar(expected["folder"])
    assert "data_batch_1" in str(err.value)
    assert not marker.exists()
    if named == "builtins.open":  # the payload is live: plain pickle would run it
        pickle.loads(payload)
        assert marker.exists()


def test_object_arrays_and_other_codecs_are_refused(tmp_path):
    expected = write_layout(tmp_path, "cifar-10-batches-py", batches=1)
    batch = {"data": np.array([b"x" * 3072] * 30, dtype=object), "labels": [0] * 30}
    (expected["folder"] / "batches.meta").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=r"object arrays are not allowed.*batches\.meta"):
        read_cifar(tmp_path)
    other_codec = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."  # only latin1 bytes are built
    (expected["folder"] / "batches.meta").write_bytes(other_codec)
    with pytest.raises(ValueError, match=r"only latin1 bytes.*batches\.meta"):
        read_cifar(tmp_path)


def test_cli_train_on_a_bad_cifar_folder_fails_cleanly(tmp_path):
    expected = write_layout(tmp_path, "cifar-10-batches-bin", batches=1)
    (expected["folder"] / "test_batch.bin").unlink()
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "keras_resnet", "train", "--dataset", f"cifar10:{tmp_path}",
            "--model", "_tiny", "--epochs", "1", "--output", str(out), "--no-export",
            "--quiet"]  # fmt: skip
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "test_batch.bin" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- real subset

SUBSET_ENV = "KERAS_RESNET_CIFAR10_SUBSET"


def _subset() -> Path:
    env = os.environ.get(SUBSET_ENV)
    path = Path(env) if env else REPO.parent / "shared/data/cifar10-subset"
    if not (path / "cifar-10-batches-bin" / "test_batch.bin").is_file():
        pytest.skip(f"the real CIFAR-10 subset is absent (set {SUBSET_ENV}): {path}")
    return path


def test_the_real_cifar10_subset(tmp_path):
    path = _subset()
    (x, y), (xt, yt), names = read_cifar(path)
    assert x.shape == (4660, 32, 32, 3) and xt.shape == (846, 32, 32, 3)
    assert names == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    train_counts, test_counts = np.bincount(y, minlength=10), np.bincount(yt, minlength=10)
    assert train_counts.min() >= 77 * 5 and train_counts.max() <= 113 * 5
    assert test_counts.min() >= 70 and test_counts.max() <= 97
    archive = pack(path / "cifar-10-batches-bin", tmp_path / "cifar-10-binary.tar.gz")
    (x2, y2), (xt2, yt2), names2 = read_cifar(archive)
    for a, b in ((x, x2), (y, y2), (xt, xt2), (yt, yt2)):
        np.testing.assert_array_equal(a, b)
    assert names2 == names
