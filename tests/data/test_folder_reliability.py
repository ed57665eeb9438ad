"""Image folders and predict with mixed formats, broken files, links and odd class names.

In-process checks of ``get_datasets("dir:...")``, then one fresh process that runs the
``train`` and ``predict`` command lines on such folders as a user meets them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_resnet import create_model, data, saving

GRAY = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _formats() -> dict[str, bytes]:
    """One small image per format TensorFlow decodes, the awkward ones included."""
    gray = Image.fromarray(GRAY)
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)).convert("P") for v in (40, 200)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    return {
        "gray.png": _encode(gray, "PNG"),
        "rgba.png": _encode(gray.convert("RGBA"), "PNG"),
        "palette.gif": _encode(gray.convert("P"), "GIF"),
        "animated.gif": animated.getvalue(),
        "cmyk.jpg": _encode(gray.convert("CMYK"), "JPEG"),
        "gray.jpg": _encode(gray, "JPEG"),
        "gray.bmp": _encode(gray, "BMP"),
        "rgb.bmp": _encode(gray.convert("RGB"), "BMP"),
    }


def _huge_png() -> bytes:
    """A PNG whose header says 50000 x 50000 pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 50001 * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _write(root, files: dict[str, bytes]):
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def _read_order(n: int) -> np.ndarray:
    """Positions, in sorted path order, of the files the loader reads first (its fixed order)."""
    return np.random.default_rng(0).permutation(n)


def _mixed_gray_folder(root):
    """16 images in 2 classes, every format; a grayscale PNG is the first one read."""
    entries = [(c, name) for c in "ab" for name in _formats()]
    first = _read_order(len(entries))[0]
    gray = entries.index((entries[first][0], "gray.png"))
    entries[first], entries[gray] = entries[gray], entries[first]
    formats = _formats()
    files = {f"{c}/{i:02d}-{name}": formats[name] for i, (c, name) in enumerate(entries)}
    return _write(root, files)


def _broken_first_folder(root, per_class: int = 4):
    """Grayscale PNGs in 2 classes; the first read is 50000 x 50000, the second corrupt."""
    names = [f"{c}/{c}{i:02d}.png" for c in "ab" for i in range(per_class)]
    png = _formats()["gray.png"]
    files = dict.fromkeys(names, png)
    first, second = _read_order(len(names))[:2]
    files[names[first]] = _huge_png()
    files[names[second]] = png[:40] + bytes(80)
    return _write(root, files), names[first], names[second]


def _examples(ds) -> int:
    return sum(int(x.shape[0]) for x, _ in ds)


def test_every_format_is_decoded_to_the_folders_channels(tmp_path):
    root = _mixed_gray_folder(tmp_path / "mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no file is skipped
        ds = data.get_datasets(
            f"dir:{root}", batch_size=4, validation_fraction=0.0, drop_remainder=False
        )
        assert ds.info.image_shape == (8, 8, 1)
        assert _examples(ds.train) == 16  # were 3: GIF, BMP and CMYK JPEG failed to decode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = data.get_datasets(
            f"dir:{root}", batch_size=4, validation_fraction=0.0, drop_remainder=False, channels=3
        )
        assert rgb.info.image_shape == (8, 8, 3) and _examples(rgb.train) == 16


def test_unreadable_files_are_named_at_the_end_of_the_pass_and_the_count_is_known(tmp_path):
    png = _formats()["gray.png"]
    files = {f"{c}/{i}.png": png for c in "ab" for i in range(4)}
    files["b/truncated.png"] = png[: len(png) // 2]  # passes the header check
    root = _write(tmp_path / "broken", files)
    with pytest.warns(UserWarning, match=r"Skipped 1 of 9 image file\(s\).*truncated.png"):
        # the first pass (here: for the statistics) names the file
        ds = data.get_datasets(f"dir:{root}", batch_size=3, validation_fraction=0.0)
    # a known size: Keras would otherwise warn "ran out of data" after the first epoch
    assert int(ds.train.cardinality()) == 9 // 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not every epoch
        assert _examples(ds.train) == 9


def test_a_huge_or_corrupt_first_image_is_skipped_and_named(tmp_path):
    root, huge, corrupt = _broken_first_folder(tmp_path / "broken")
    with pytest.warns(UserWarning, match=r"Skipped 2 .*") as caught:
        ds = data.get_datasets(f"dir:{root}", batch_size=2, validation_fraction=0.0)
    message = str(caught[0].message)
    assert str(root / huge) in message and str(root / corrupt) in message
    assert ds.info.image_shape == (8, 8, 1)


def test_a_class_named_train_is_a_class_unless_the_folder_is_the_split_layout(tmp_path):
    png = _formats()["gray.png"]
    classes = _write(tmp_path / "classes", {f"{c}/0.png": png for c in ("cat", "dog", "train")})
    ds = data.get_datasets(f"dir:{classes}", batch_size=1, validation_fraction=0.0)
    assert ds.info.class_names == ("cat", "dog", "train")
    split = {f"{s}/{c}/0.png": png for s in ("train", "test") for c in ("cat", "dog")}
    split_root = _write(tmp_path / "split", split)
    ds = data.get_datasets(f"dir:{split_root}", batch_size=1, validation_fraction=0.0)
    assert ds.info.class_names == ("cat", "dog") and ds.info.num_examples["test"] == 2
    mixed = _write(tmp_path / "mixed", {**split, "eel/0.png": png})
    with pytest.raises(ValueError, match=r"'train' holds class folders.*\['eel'\]"):
        data.get_datasets(f"dir:{mixed}", batch_size=1)


def test_a_class_folder_linked_to_the_data_folder_is_refused(tmp_path):
    png = _formats()["gray.png"]
    root = _write(tmp_path / "loop", {f"{c}/0.png": png for c in ("a", "b")})
    os.symlink(root, root / "c")
    with pytest.raises(ValueError, match=r"'c' is a link to .*loop.*symlink loop"):
        data.get_datasets(f"dir:{root}", batch_size=1, validation_fraction=0.0)


# ---------------------------------------------------------------- fresh process

_RUNNER = textwrap.dedent(
    """
    import contextlib, io, json, sys, traceback, warnings
    warnings.filterwarnings("always", message="Your input ran out of data")
    from keras_resnet.cli import main

    report = []
    for argv in json.loads(open(sys.argv[1]).read()):
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = main(argv)
        except BaseException:
            code = "raised"
            err.write(traceback.format_exc())
        report.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    print(json.dumps(report))
    """
)


def test_train_and_predict_command_lines_on_awkward_folders_and_images(tmp_path):
    mixed = _mixed_gray_folder(tmp_path / "mixed")
    png = _formats()["gray.png"]
    broken, huge, corrupt = _broken_first_folder(tmp_path / "broken", per_class=10)
    classes = ("cat", "dog", "train")
    named = _write(tmp_path / "named", {f"{c}/{i}.png": png for c in classes for i in range(4)})
    loop = _write(tmp_path / "loop", {f"{c}/0.png": png for c in ("a", "b")})
    os.symlink(loop, loop / "c")
    run = tmp_path / "run"
    run.mkdir()
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=2)
    saving.save_keras_model(model, run / "model.keras", verify=False)
    info = {"name": "toy", "num_classes": 2, "image_shape": [8, 8, 1], "class_names": ["a", "b"]}
    (run / "data_info.json").write_text(json.dumps({**info, "mean": [0.5], "std": [0.25]}))
    images = [str(next(mixed.glob(f"a/*-{n}"))) for n in ("cmyk.jpg", "animated.gif", "gray.bmp")]

    train = ["train", "--model", "_tiny", "--epochs", "2", "--batch-size", "2", "--no-export"]
    cases = [
        [*train, "--dataset", f"dir:{mixed}", "--output", str(tmp_path / "r1")],
        [*train, "--dataset", f"dir:{broken}", "--output", str(tmp_path / "r2")],
        [*train, "--dataset", f"dir:{named}", "--output", str(tmp_path / "r3")],
        [*train, "--dataset", f"dir:{loop}", "--output", str(tmp_path / "r4")],
        ["predict", str(run), *images, "--json"],
    ]
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    mixed_run, broken_run, named_run, loop_run, predicted = json.loads(
        proc.stdout.strip().splitlines()[-1]
    )
    for got in (mixed_run, broken_run, named_run, loop_run, predicted):
        assert "Traceback" not in got["stderr"], got["stderr"][-3000:]
        assert "ran out of data" not in got["stderr"], got["stderr"][-3000:]
    assert mixed_run["code"] == 0 and "Skipped" not in mixed_run["stderr"]
    assert broken_run["code"] == 0, broken_run["stderr"][-3000:]
    assert "Skipped 2" in broken_run["stderr"]
    assert (
        str(broken / huge) in broken_run["stderr"] and str(broken / corrupt) in broken_run["stderr"]
    )
    assert named_run["code"] == 0, named_run["stderr"][-3000:]
    info = json.loads((tmp_path / "r3" / "data_info.json").read_text())
    assert info["class_names"] == ["cat", "dog", "train"]
    assert loop_run["code"] == 2 and "symlink loop" in loop_run["stderr"]
    assert not (tmp_path / "r4").exists()
    assert predicted["code"] == 0, predicted["stderr"]
    results = [json.loads(line) for line in predicted["stdout"].splitlines()]
    assert [r["image"] for r in results] == images and all("top_k" in r for r in results)
