"""Bad data, config and files get a clean error naming what is wrong.

In-process checks for the data API; the CLI and file-loading cases run in fresh
subprocesses, as a user meets them: `predict` with unreadable images, and one process
that runs every hostile CLI case (corrupt `.keras` files, bad config files, bad image
folders, a wrong head) and reports exit code and stderr for each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from keras_resnet import create_model, data, export, saving
from keras_resnet.export import common, serving

# ------------------------------------------------------------------- arrays (15.2, 15.3)


def test_one_nan_pixel_is_refused_not_rescaling_the_data_set():
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype("float32")  # [0, 1]
    y = np.arange(20) % 2
    x[3, 2, 1, 0] = np.nan
    x[7, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite pixel\(s\).*index \(3, 2, 1, 0\)"):
        data.from_arrays(x, y, batch_size=4)


def test_integer_pixels_outside_0_255_are_refused_not_clipped():
    x = np.full((20, 8, 8, 1), 100, np.int32)
    x[5, 1, 1, 0] = 300
    x[6, 1, 1, 0] = -1
    with pytest.raises(ValueError, match=r"\[0, 255\]: 2 pixel\(s\).*index \(5, 1, 1, 0\)"):
        data.from_arrays(x, np.arange(20) % 2, batch_size=4)
    x = np.full((20, 8, 8, 1), 300.0, np.float32)
    with pytest.raises(ValueError, match=r"\[0, 1\] or \[0, 255\]"):
        data.from_arrays(x, np.arange(20) % 2, batch_size=4)
    # in-range integers still work, unchanged
    x = np.full((20, 8, 8, 1), 200, np.int64)
    ds = data.from_arrays(x, np.arange(20) % 2, batch_size=4, validation_fraction=0.0)
    assert ds.info.mean == pytest.approx((200 / 255,))


def test_negative_and_too_large_labels_are_refused():
    x = np.zeros((20, 8, 8, 1), np.uint8)
    y = np.arange(20) % 2
    y[4] = -1
    with pytest.raises(ValueError, match=r"must lie in >= 0: 1 label\(s\).*index 4.*label -1"):
        data.from_arrays(x, y, batch_size=4)
    y[4] = 2
    with pytest.raises(ValueError, match=r"\[0, 2\).*index 4"):
        data.from_arrays(x, y, batch_size=4, num_classes=2)
    with pytest.raises(ValueError, match=r"`test` must lie in \[0, 2\)"):
        data.from_arrays(x, np.arange(20) % 2, x, -np.ones(20, int), batch_size=4)


def test_validate_for_model_needs_a_classifier_head():
    info = data.DatasetInfo("x", 10, (8, 8, 1), tuple("0123456789"), (0.5,), (0.5,), {})
    features = create_model("_tiny", input_shape=(8, 8, 1), include_top=False)
    with pytest.raises(ValueError, match="classifier head"):
        data.validate_for_model(info, features)
    with pytest.raises(ValueError, match="head outputs 5"):
        data.validate_for_model(info, create_model("_tiny", input_shape=(8, 8, 1), classes=5))


# ----------------------------------------------------------------------- folders (15.5)


def _png(value: int = 0, size: int = 8) -> bytes:
    return tf.io.encode_png(tf.fill((size, size, 1), tf.constant(value, tf.uint8))).numpy()


def _folder(root, classes: dict[str, int]):
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            (root / name / f"{i}.png").write_bytes(_png(i))
    return root


def test_image_folder_with_an_empty_class_or_one_class_is_refused(tmp_path):
    root = _folder(tmp_path / "empty_class", {"a": 3, "b": 3, "c": 0})
    (root / "c" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"\['c'\].*no readable image"):
        data.get_datasets(f"dir:{root}", batch_size=2)
    root = _folder(tmp_path / "one_class", {"a": 4})
    with pytest.raises(ValueError, match="at least 2 class"):
        data.get_datasets(f"dir:{root}", batch_size=2)
    ok = _folder(tmp_path / "ok", {"a": 3, "b": 3})
    assert data.get_datasets(f"dir:{ok}", batch_size=2).info.num_classes == 2


# ---------------------------------------------------------------- fresh processes

RUN = [sys.executable, "-m", "keras_resnet"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained 3-class run folder (model.keras + data_info.json)."""
    run = tmp_path_factory.mktemp("run")
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=3)
    saving.save_keras_model(model, run / "model.keras", verify=False)
    info = {"name": "toy", "num_classes": 3, "image_shape": [8, 8, 1]}
    info.update(class_names=["a", "b", "c"], mean=[0.5], std=[0.25], num_examples={})
    (run / "data_info.json").write_text(json.dumps(info))
    return run


def _bad_images(folder):
    folder.mkdir()
    png = _png(7)
    files = {
        "good1.png": png,
        "empty.png": b"",
        "truncated.png": png[: len(png) // 2],
        "text.jpg": b"hello, not an image at all",
        "corrupt.png": png[:16] + bytes(64),
        "good2.png": _png(200),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [str(folder / name) for name in files]


def test_predict_names_each_unreadable_image_and_prints_the_rest(run_dir, tmp_path):
    images = _bad_images(tmp_path / "images")
    proc = subprocess.run(
        [*RUN, "predict", str(run_dir), *images, "--json", "--top-k", "2"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "InvalidArgumentError" not in proc.stderr
    results = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [r["image"] for r in results] == images  # every file, in order
    good = [r for r in results if "top_k" in r]
    assert [os.path.basename(r["image"]) for r in good] == ["good1.png", "good2.png"]
    assert all(len(r["top_k"]) == 2 for r in good)
    for name in ("empty.png", "truncated.png", "text.jpg", "corrupt.png"):
        assert f"skipped {str(tmp_path / 'images' / name)!r}" in proc.stderr, name
    assert "4 of 6 image(s) could not be read" in proc.stderr


def test_predict_images_api_raises_naming_the_files_or_skips(run_dir, tmp_path):
    images = _bad_images(tmp_path / "images")
    with pytest.raises(ValueError, match=r"Cannot read 4 image file\(s\).*empty.png.*corrupt.png"):
        serving.predict_images(run_dir, images)
    results = serving.predict_images(run_dir, images, errors="skip", top_k=1)
    assert ["error" in r for r in results] == [False, True, True, True, True, False]
    assert "empty" in results[1]["error"]
    with pytest.raises(ValueError, match="errors='ignore'"):
        serving.predict_images(run_dir, images, errors="ignore")


def test_predict_images_keeps_the_input_order_when_a_file_is_listed_twice(run_dir, tmp_path):
    # The results used to be re-sorted by path: [a, b, a, c, b] came back as [a, a, c, b, b].
    names = {"b.png": 0, "a.png": 120, "c.png": 250}
    for name, value in names.items():
        (tmp_path / name).write_bytes(_png(value))
    images = [str(tmp_path / n) for n in ("a.png", "b.png", "a.png", "c.png", "b.png")]
    results = serving.predict_images(run_dir, images, top_k=3)
    assert [r["image"] for r in results] == images
    alone = [serving.predict_images(run_dir, [f], top_k=3)[0] for f in images[:2] + images[3:4]]
    for i, j in ((0, 0), (1, 1), (2, 0), (3, 2), (4, 1)):  # each result is its own image's
        got, want = results[i]["top_k"], alone[j]["top_k"]  # (batch size moves the last bits)
        assert [c["id"] for c in got] == [c["id"] for c in want]
        assert [c["probability"] for c in got] == pytest.approx([c["probability"] for c in want])


def _corrupt_archives(folder, good):
    folder.mkdir()
    raw = good.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    files = {
        "junk.keras": b"this is not a zip file" * 4,
        "empty.keras": b"",
        "truncated.keras": raw[: len(raw) // 2],
        "bitflip.keras": bytes(flipped),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    with zipfile.ZipFile(folder / "noconfig.keras", "w") as z:
        z.writestr("metadata.json", "{}")
    return sorted(str(p) for p in folder.iterdir())


# One fresh process runs every CLI case through keras_resnet.cli.main (one TensorFlow
# start-up instead of one per case) and every corrupt archive through load_keras_model.
_CASES = textwrap.dedent(
    """
    import contextlib, io, json, sys, traceback
    from keras_resnet.cli import main
    from keras_resnet.saving import load_keras_model

    cases, archives = json.loads(open(sys.argv[1]).read())
    report = []
    for argv in cases:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except BaseException:
            code, text = "raised", traceback.format_exc()
        else:
            text = err.getvalue()
        report.append({"argv": argv, "code": code, "stderr": text})
    for path in archives:
        try:
            load_keras_model(path)
            report.append({"argv": ["load_keras_model", path], "code": 0, "stderr": ""})
        except ValueError as e:
            report.append({"argv": ["load_keras_model", path], "code": 2, "stderr": str(e)})
        except BaseException:
            text = traceback.format_exc()
            report.append({"argv": ["load_keras_model", path], "code": "raised", "stderr": text})
    print(json.dumps(report))
    """
)


def _config(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content))
    return str(path)


def test_hostile_cli_cases_end_in_clean_errors(run_dir, tmp_path):
    """Bad archives, configs, outputs, data, heads and exports, in one fresh process."""
    archives = _corrupt_archives(tmp_path / "archives", run_dir / "model.keras")
    image = _bad_images(tmp_path / "images")[0]
    out = str(tmp_path / "out")
    train = ["train", "--model", "_tiny", "--epochs", "1", "--quiet", "--no-export"]
    empty_class = _folder(tmp_path / "empty_class", {"a": 2, "b": 2, "c": 0})
    one_class = _folder(tmp_path / "one_class", {"a": 4})
    latin1 = '{"recipe": "caf\xe9"}'.encode("latin-1")
    expected = []  # (argv, exit code, text the message must hold)
    for path in archives:
        expected.append((["evaluate", path, "--dataset", "digits"], 2, "not a valid Keras archive"))
        expected.append((["predict", path, image], 2, "not a valid Keras archive"))
    for name, content, message in [
        ("ema.json", {"use_ema": "false"}, "use_ema='false'"),
        ("lr.json", {"learning_rate": True}, "learning_rate=True"),
        ("decay.json", {"decay_at": 0.5}, "decay_at=0.5"),
        ("momentum.json", {"ema_momentum": "high"}, "ema_momentum='high'"),
        ("batch.json", {"batch_size": "64"}, "batch_size='64'"),
        ("latin1.json", latin1, "latin1.json"),
        ("head.json", {"model_kwargs": {"classes": 5}}, "head outputs 5"),
    ]:
        argv = [*train, "--config", _config(tmp_path, name, content), "--output", out]
        expected.append((argv, 2, message))
    expected.append(([*train, "--output", ""], 2, "output=''"))
    expected.append((["tune", "--output", ""], 2, "output=''"))
    # --overwrite of a finished run with bad data or a wrong head: the old run is kept
    finished = tmp_path / "finished"
    shutil.copytree(run_dir, finished)
    for name, text in [("config.json", '{"run": {}}'), ("summary.json", "{}"), ("history.csv", "")]:
        (finished / name).write_text(text)
    before = {p.relative_to(finished): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    head = _config(tmp_path, "head5.json", {"model_kwargs": {"classes": 5}})
    for bad in (["--dataset", f"dir:{one_class}"], ["--config", head]):
        argv = [*train, *bad, "--output", str(finished), "--overwrite"]
        expected.append((argv, 2, "at least 2" if "--dataset" in bad else "head outputs 5"))
    expected.append(([*train, "--dataset", f"dir:{empty_class}", "--output", out], 2, "['c']"))
    expected.append(([*train, "--dataset", f"dir:{one_class}", "--output", out], 2, "at least 2"))
    # a damaged export: the SavedModel's metadata file, a .tflite file of junk or empty
    served = tmp_path / "served"
    export.export_saved_model(saving.load_keras_model(run_dir / "model.keras"), served)
    (served / common.METADATA_FILE).write_text('{"class_names": ["a",')
    expected.append((["predict", str(served), image], 2, str(served / common.METADATA_FILE)))
    for name, content in (("junk.tflite", b"not a flatbuffer " * 8), ("empty.tflite", b"")):
        (tmp_path / name).write_bytes(content)
        argv = ["predict", str(tmp_path / name), image]
        expected.append((argv, 2, f"{str(tmp_path / name)!r} is not a valid TFLite model"))

    spec = _config(tmp_path, "cases.json", [[argv for argv, _, _ in expected], archives])
    proc = subprocess.run(
        [sys.executable, "-c", _CASES, spec], capture_output=True, text=True, env=ENV, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = {json.dumps(r["argv"]): r for r in report}
    for argv, code, message in expected:
        got = results[json.dumps(argv)]
        assert (got["code"], "Traceback" in got["stderr"]) == (code, False), json.dumps(got)
        assert message in got["stderr"], (argv, got)
    for path in archives:
        got = results[json.dumps(["load_keras_model", path])]
        assert got["code"] == 2 and "not a valid Keras archive" in got["stderr"], got
        assert os.path.basename(path) in got["stderr"]
    # nothing was written for any refused run: not even config.json
    assert not os.path.exists(os.path.join(out, "config.json"))
    assert len(expected) + len(archives) == 31
    # the refused --overwrite runs left the old run byte-identical: no file gone, changed or added
    after = {p.relative_to(finished): p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert sorted(after) == sorted(before)
    assert [str(name) for name in before if after[name] != before[name]] == []
    assert {"model.keras", "summary.json", "config.json", "history.csv"} <= {str(n) for n in after}
