"""Export: SavedModel for serving, .keras, TFLite, all-or-nothing writes, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import HAVE_MNIST, MNIST_DIR, NO_MNIST

from keras_resnet import create_model, data, export, saving
from keras_resnet.cli import main
from keras_resnet.data import sources
from keras_resnet.export import common, saved_model, serving

CLASS_NAMES = tuple(f"digit_{i}" for i in range(10))


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits():
    """sklearn digits as uint8 (N, 8, 8, 1) images, split and normalized by the data package.

    The split is the data package's fixed one (1437 train, 360 test); mean and std are
    the training-split statistics a run records in its ``data_info.json``.
    """
    source = sources.load_digits_source()
    (x_train, y_train), (x_test, y_test) = source.train.arrays, source.test.arrays
    info = data.get_datasets("digits", batch_size=64, validation_fraction=0.0).info
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "mean": info.mean,
        "std": info.std,
    }


@pytest.fixture(scope="module")
def trained(digits):
    """A `_tiny` ResNet trained for a few epochs on digits (about 90% test accuracy)."""
    keras.utils.set_random_seed(0)
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x = export.normalize_images(digits["x_train"], digits["mean"], digits["std"])
    model.fit(x, digits["y_train"], batch_size=64, epochs=6, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved_model_dir(trained, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("sm") / "digits_model"
    export.export_saved_model(
        trained, out, mean=digits["mean"], std=digits["std"], class_names=CLASS_NAMES, top_k=3
    )
    return out


def _reference(model, images, digits):
    return np.asarray(
        model.predict(export.normalize_images(images, digits["mean"], digits["std"]), verbose=0),
        "float32",
    )


def _png(image: np.ndarray) -> bytes:
    return tf.io.encode_png(image).numpy()


# -------------------------------------------------------------------------- SavedModel

_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    # The artifact must stand alone: block keras_resnet (and Keras itself).
    sys.modules["keras_resnet"] = None
    sys.modules["keras"] = None
    for name in ("keras_resnet", "keras"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(name + " was importable")
    import numpy as np
    import tensorflow as tf

    export_dir, inputs, outputs = sys.argv[1:4]
    data = np.load(inputs, allow_pickle=False)
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    result = {}

    def arr(value):  # string tensors come back as object arrays; npz wants bytes
        value = value.numpy()
        return value.astype(bytes) if value.dtype == object else value

    for key in ("same", "big", "odd"):
        out = serve(images=tf.constant(data[key]))
        for name, value in out.items():
            result[key + "/" + name] = arr(value)
    out = loaded.signatures["serve_bytes"](image_bytes=tf.constant(list(data["png"])))
    for name, value in out.items():
        result["png/" + name] = arr(value)
    result["signatures"] = np.array(sorted(loaded.signatures.keys()))
    loaded_keras = [m for m, v in sys.modules.items() if m.startswith("keras") and v is not None]
    result["modules"] = np.array(sorted(loaded_keras), dtype=str)
    np.savez(outputs, **result)
    """
)


def test_saved_model_in_fresh_process_matches_keras(trained, digits, saved_model_dir, tmp_path):
    images = digits["x_test"][:64]
    big = np.repeat(np.repeat(images[:5], 3, axis=1), 3, axis=2)  # 24x24, other size
    odd = np.random.default_rng(1).integers(0, 256, (2, 13, 7, 1), dtype=np.uint8)
    pngs = np.array([_png(im) for im in images[:4]], dtype=object).astype(bytes)
    inputs, outputs = tmp_path / "inputs.npz", tmp_path / "outputs.npz"
    np.savez(inputs, same=images, big=big, odd=odd, png=pngs)
    script = tmp_path / "serve.py"
    script.write_text(_FRESH_PROCESS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, str(script), str(saved_model_dir), str(inputs), str(outputs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(outputs)
    assert list(out["modules"]) == []  # neither keras nor keras_resnet was loaded
    assert {"serving_default", "serve", "serve_bytes"} <= set(out["signatures"])

    expected = _reference(trained, images, digits)
    probs = out["same/probabilities"]
    assert probs.dtype == np.float32 and probs.shape == (64, 10)
    assert np.max(np.abs(probs - expected)) <= 1e-5
    top_ids = out["same/top_k_ids"]
    assert top_ids.shape == (64, 3)
    np.testing.assert_array_equal(top_ids[:, 0], expected.argmax(-1))
    np.testing.assert_allclose(
        out["same/top_k_probabilities"], np.sort(expected, -1)[:, ::-1][:, :3], atol=1e-5
    )
    names = out["same/top_k_names"].astype(str)
    np.testing.assert_array_equal(names, np.array(CLASS_NAMES)[top_ids])

    # Other sizes are resized in the graph, exactly like tf.image.resize outside it.
    for key, batch in (("big", big), ("odd", odd)):
        resized = tf.image.resize(tf.cast(batch, tf.float32), (8, 8), antialias=True).numpy()
        ref = _reference(trained, resized, digits)
        assert out[key + "/probabilities"].shape == (len(batch), 10)
        assert np.max(np.abs(out[key + "/probabilities"] - ref)) <= 1e-5

    # Encoded PNG bytes give the same answers as the uint8 pixels.
    assert np.max(np.abs(out["png/probabilities"] - expected[:4])) <= 1e-5
    np.testing.assert_array_equal(out["png/top_k_names"], out["same/top_k_names"][:4])


def test_saved_model_metadata_and_accuracy(saved_model_dir, digits):
    meta = json.loads((saved_model_dir / common.METADATA_FILE).read_text())
    assert meta["image_size"] == [8, 8] and meta["class_names"] == list(CLASS_NAMES)
    assert meta["mean"] == pytest.approx(list(digits["mean"]))
    served = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    out = served(images=tf.constant(digits["x_test"]))
    accuracy = float(np.mean(out["top_k_ids"].numpy()[:, 0] == digits["y_test"]))
    assert accuracy > 0.8  # the served model really classifies digits


def test_saved_model_jpeg_and_rgb_bytes(saved_model_dir, digits):
    served = tf.saved_model.load(str(saved_model_dir)).signatures["serve_bytes"]
    image = np.repeat(digits["x_test"][0], 3, axis=-1)  # RGB, decoded to 1 channel
    jpeg = tf.io.encode_jpeg(image, quality=100).numpy()
    out = served(image_bytes=tf.constant([jpeg, _png(digits["x_test"][1])]))
    assert out["probabilities"].shape == (2, 10)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_mixed_precision_model_exports_float32(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(4, 3)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(3, activation="softmax")(x)  # float16 output
        model = keras.Model(inputs, outputs)
        tiny = create_model("_tiny", input_shape=(8, 8, 1), classes=3)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.output.dtype == "float16"
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    for i, m in enumerate((model, tiny)):
        path = export.export_saved_model(m, tmp_path / f"sm{i}")
        out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
        assert out["probabilities"].dtype == tf.float32
        ref = np.asarray(m.predict(export.normalize_images(images), verbose=0), "float32")
        assert np.max(np.abs(out["probabilities"].numpy() - ref)) <= 2e-2


def test_any_size_model_needs_image_size(tmp_path):
    model = create_model(
        "_tiny", input_shape=(None, None, 1), classes=4, classifier_activation=None
    )
    with pytest.raises(ValueError, match="image_size=None"):
        export.export_saved_model(model, tmp_path / "sm")
    assert not (tmp_path / "sm").exists()
    path = export.export_saved_model(model, tmp_path / "sm", image_size=(12, 12))
    out = tf.saved_model.load(path).signatures["serving_default"](
        images=tf.zeros((1, 30, 20, 1), tf.uint8)
    )
    # logits model: softmax is applied in the graph
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)
    assert json.loads((Path(path) / common.METADATA_FILE).read_text())["logits"] is True


def test_logits_detection():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3)(inputs)
    assert common.outputs_logits(keras.Model(inputs, dense)) is True
    assert common.outputs_logits(keras.Model(inputs, keras.layers.Softmax()(dense))) is False
    assert common.outputs_logits(create_model("_tiny", input_shape=(8, 8, 1))) is False


# ------------------------------------------------------------- nothing lost, no litter


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_refuses_to_overwrite_without_flag(trained, tmp_path):
    dest = tmp_path / "sm"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_saved_model(trained, dest)
    keras_file = tmp_path / "m.keras"
    keras_file.write_text("old")
    with pytest.raises(FileExistsError):
        saving.save_keras_model(trained, keras_file)
    tfl = tmp_path / "m.tflite"
    tfl.write_text("old")
    with pytest.raises(FileExistsError):
        export.export_tflite(trained, tfl)
    assert (dest / "precious.txt").read_text() == "keep me"
    assert keras_file.read_text() == "old" and tfl.read_text() == "old"
    assert _listing(tmp_path) == ["m.keras", "m.tflite", "sm"]

    export.export_saved_model(trained, dest, overwrite=True, verify=False)
    assert (dest / "saved_model.pb").is_file() and not (dest / "precious.txt").exists()
    saving.save_keras_model(trained, keras_file, overwrite=True, verify=False)
    assert saving.load_keras_model(keras_file).count_params() == trained.count_params()
    assert _listing(tmp_path) == ["m.keras", "m.tflite", "sm"]


def test_interrupted_export_leaves_destination_as_it_was(trained, tmp_path, monkeypatch):
    interrupt = KeyboardInterrupt

    def fail_midway(path, *args, **kwargs):
        assert (Path(path) / "saved_model.pb").is_file()  # the export was half done
        (Path(path) / "partial").write_text("x")
        raise interrupt("stopped mid-export")

    monkeypatch.setattr(saved_model, "_verify_saved_model", fail_midway)
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        export.export_saved_model(trained, fresh)
    assert _listing(tmp_path) == []  # no destination, no temporary folder

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "saved_model.pb").write_text("old export")
    interrupt = RuntimeError
    with pytest.raises(RuntimeError, match="mid-export"):
        export.export_saved_model(trained, existing, overwrite=True)
    assert _listing(tmp_path) == ["existing"]
    assert _listing(existing) == ["saved_model.pb"]
    assert (existing / "saved_model.pb").read_text() == "old export"


def test_failed_keras_and_tflite_writes_leave_no_litter(trained, tmp_path, monkeypatch):
    (tmp_path / "m.keras").write_text("old")

    def broken_save(self, filepath, *args, **kwargs):
        Path(filepath).write_text("half a zip")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "save", broken_save)
        with pytest.raises(OSError, match="disk full"):
            saving.save_keras_model(trained, tmp_path / "m.keras", overwrite=True)
    assert (tmp_path / "m.keras").read_text() == "old"

    def broken_converter(*args, **kwargs):
        raise RuntimeError("converter crashed")

    with monkeypatch.context() as patch:
        patch.setattr(tf.lite.TFLiteConverter, "from_saved_model", broken_converter)
        with pytest.raises(RuntimeError, match="converter crashed"):
            export.export_tflite(trained, tmp_path / "m.tflite")
    assert _listing(tmp_path) == ["m.keras"]


# ------------------------------------------------------------------ .keras and TFLite


def test_keras_round_trip_is_identical(trained, digits, tmp_path):
    path = saving.save_keras_model(trained, tmp_path / "model.keras")
    reloaded = saving.load_keras_model(path)
    x = export.normalize_images(digits["x_test"][:32], digits["mean"], digits["std"])
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), trained.predict(x, verbose=0))
    assert [w.shape for w in reloaded.weights] == [w.shape for w in trained.weights]


def test_tflite_float_and_dynamic_quantized(trained, digits, tmp_path):
    x = export.normalize_images(digits["x_test"], digits["mean"], digits["std"])
    keras_probs = trained.predict(x, verbose=0)
    float_path = export.export_tflite(trained, tmp_path / "float.tflite")
    float_probs = serving.run_tflite(float_path, x)
    assert float_probs.dtype == np.float32
    assert np.max(np.abs(float_probs - keras_probs)) <= 1e-4

    quant_path = export.export_tflite(trained, tmp_path / "dynamic.tflite", quantize="dynamic")
    quant_probs = serving.run_tflite(quant_path, x)
    # Dynamic-range quantization stores the larger weight tensors as int8.
    assert os.path.getsize(quant_path) < os.path.getsize(float_path)
    assert not np.array_equal(quant_probs, float_probs)
    float_acc = float(np.mean(float_probs.argmax(-1) == digits["y_test"]))
    quant_acc = float(np.mean(quant_probs.argmax(-1) == digits["y_test"]))
    assert float_acc > 0.8
    assert abs(quant_acc - float_acc) <= 0.01, (float_acc, quant_acc)
    with pytest.raises(ValueError, match="inputs.shape"):
        serving.run_tflite(float_path, np.zeros((1, 9, 9, 1), "float32"))


# ----------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"top_k": 0}, ValueError, "top_k=0"),
        ({"mean": [0.1, 0.2]}, ValueError, "mean="),
        ({"std": [0.0]}, ValueError, "std="),
        ({"std": "abc"}, TypeError, "std="),
        ({"class_names": ["a", "b"]}, ValueError, "2 class_names"),
        ({"class_names": "0123456789"}, TypeError, "class_names="),
        ({"image_size": (9, 9)}, ValueError, "image_size="),
        ({"image_size": "8"}, TypeError, "image_size="),  # a wrong type
        ({"resize_method": "magic"}, ValueError, "resize_method='magic'"),
        ({"overwrite": "yes"}, TypeError, "overwrite="),
    ],
)
def test_export_saved_model_rejects_bad_arguments(kwargs, error, match, tmp_path):
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    with pytest.raises(error, match=match):
        export.export_saved_model(model, tmp_path / "sm", **kwargs)
    assert _listing(tmp_path) == []


def test_other_bad_inputs(tmp_path):
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    with pytest.raises(TypeError, match="keras.Model"):
        export.export_saved_model("model.keras", tmp_path / "sm")
    features = create_model("_tiny", input_shape=(8, 8, 1), include_top=False)
    with pytest.raises(ValueError, match="output_shape"):
        export.export_saved_model(features, tmp_path / "sm")
    with pytest.raises(ValueError, match="quantize='int8'"):
        export.export_tflite(model, tmp_path / "m.tflite", quantize="int8")
    with pytest.raises(ValueError, match=".tflite"):
        export.export_tflite(model, tmp_path / "m.lite")
    with pytest.raises(ValueError, match=".keras"):
        saving.save_keras_model(model, tmp_path / "m.h5")
    with pytest.raises(TypeError, match="export_dir="):
        export.export_saved_model(model, 42)
    with pytest.raises(FileNotFoundError):
        saving.load_keras_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="shape"):
        export.normalize_images(np.zeros((8, 8), np.uint8))
    assert _listing(tmp_path) == []


def test_load_run_preprocessing(tmp_path):
    info = {
        "name": "digits",
        "num_classes": 3,
        "image_shape": [8, 8, 1],
        "class_names": ["a", "b", "c"],
        "mean": [0.25],
        "std": [0.5],
        "num_examples": {"train": 10},
    }
    (tmp_path / "data_info.json").write_text(json.dumps(info))
    prep = serving.load_run_preprocessing(tmp_path)
    assert prep["mean"] == (0.25,) and prep["std"] == (0.5,)
    assert prep["class_names"] == ("a", "b", "c") and prep["image_shape"] == (8, 8, 1)
    assert serving.load_run_preprocessing(tmp_path / "data_info.json") == prep
    with pytest.raises(FileNotFoundError, match="data_info.json"):
        serving.load_run_preprocessing(tmp_path / "nowhere")
    (tmp_path / "data_info.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        serving.load_run_preprocessing(tmp_path)
    (tmp_path / "data_info.json").write_text(json.dumps({**info, "std": [-1.0]}))
    with pytest.raises(ValueError, match="std="):
        serving.load_run_preprocessing(tmp_path)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def run_dir(trained, digits, tmp_path_factory):
    """A training run folder as the `train` command writes it (model + data_info)."""
    run = tmp_path_factory.mktemp("run")
    saving.save_keras_model(trained, run / "model.keras", verify=False)
    info = {
        "name": "digits",
        "num_classes": 10,
        "image_shape": [8, 8, 1],
        "class_names": list(CLASS_NAMES),
        "mean": list(digits["mean"]),
        "std": list(digits["std"]),
        "num_examples": {"train": 1437, "validation": 0, "test": 360},
    }
    (run / "data_info.json").write_text(json.dumps(info))
    return run


def _images(digits, folder: Path, n: int = 4) -> list[str]:
    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"digit{i}.png"
        path.write_bytes(_png(digits["x_test"][i]))
        paths.append(str(path))
    return paths


def test_cli_export_and_predict(trained, digits, run_dir, tmp_path, capsys):
    images = _images(digits, tmp_path / "images")
    expected = _reference(trained, digits["x_test"][:4], digits).argmax(-1)
    out = tmp_path / "served"
    assert main(["export", str(run_dir), "--format", "saved_model", "--output", str(out)]) == 0
    assert (out / "saved_model.pb").is_file()
    tfl = tmp_path / "m.tflite"
    assert main(["export", str(run_dir), "--format", "tflite", "--output", str(tfl)]) == 0
    capsys.readouterr()

    # The TFLite file embeds mean/std; class names also come from --data-info.
    for model, extra in ((out, []), (run_dir, []), (tfl, ["--data-info", str(run_dir)])):
        argv = ["predict", str(model), *images, "--top-k", "2", "--json", *extra]
        assert main(argv) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        results = [json.loads(line) for line in lines]
        assert [r["image"] for r in results] == images
        assert [r["top_k"][0]["id"] for r in results] == expected.tolist(), model
        assert all(len(r["top_k"]) == 2 for r in results)
        assert results[0]["top_k"][0]["name"] == CLASS_NAMES[expected[0]]

    assert main(["predict", str(out), images[0], "--top-k", "3"]) == 0
    text = capsys.readouterr().out
    assert images[0] in text and f"1. {CLASS_NAMES[expected[0]]}" in text and "3. " in text


def test_cli_refuses_and_reports_errors(digits, run_dir, tmp_path, capsys):
    out = tmp_path / "m.keras"
    args = ["export", str(run_dir / "model.keras"), "--format", "keras", "--output", str(out)]
    assert main(args) == 0 and out.is_file()
    before = out.read_bytes()
    capsys.readouterr()
    assert main(args) == 2  # exists: refused, untouched
    assert "overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
    other = tmp_path / "other"  # a different data_info.json there: kept, export refused
    other.mkdir()
    (other / "data_info.json").write_text('{"mine": 1}')
    capsys.readouterr()
    assert main([*args[:-1], str(other / "m.keras")]) == 2
    assert "data_info.json exists and differs" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["data_info.json"]
    assert (other / "data_info.json").read_text() == '{"mine": 1}'

    bad = [
        (
            [
                "export",
                str(run_dir),
                "--format",
                "keras",
                "--quantize",
                "dynamic",
                "--output",
                str(tmp_path / "q.keras"),
            ],
            "--quantize",
        ),
        (
            ["export", str(run_dir), "--output", str(tmp_path / "x"), "--image-size", "a"],
            "--image-size",
        ),
        (["export", str(tmp_path / "missing"), "--output", str(tmp_path / "y")], "No such model"),
        (["predict", str(run_dir), str(tmp_path / "nope.png")], "No such image"),
    ]
    image = _images(digits, tmp_path / "images", n=1)[0]
    bad.append((["predict", str(run_dir), image, "--top-k", "0"], "top_k=0"))
    bad.append((["predict", image, image], "must end with '.keras' or '.tflite'"))
    for argv, message in bad:
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    written = ["data_info.json", "images", "m.keras", "other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == written


# One fresh process runs the commands in order through keras_resnet.cli.main (one
# TensorFlow start-up) and reports each one's exit code, stdout and stderr.
_COMMANDS = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from keras_resnet.cli import main

    report = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        report.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    print(json.dumps(report))
    """
)


def test_every_export_format_carries_the_preprocessing(digits, tmp_path):
    run, image = tmp_path / "run", _images(digits, tmp_path / "images", n=1)[0]
    keras_file, tflite_file = tmp_path / "k" / "digits.keras", tmp_path / "t" / "digits.tflite"
    models = [run, run / "saved_model", keras_file, tflite_file]
    steps = [
        ["train", "--model", "_tiny", "--epochs", "1", "--batch-size", "256", "--quiet"],
        ["export", str(run), "--format", "keras", "--output", str(keras_file)],
        ["export", str(run), "--format", "tflite", "--output", str(tflite_file)],
        *(["predict", str(m), image, "--json", "--top-k", "10"] for m in models),
    ]
    steps[0] += ["--output", str(run)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _COMMANDS, json.dumps(steps)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["code"] for r in report] == [0] * len(steps), report
    predicted = []
    for model, r in zip(models, report[3:], strict=True):
        assert "data_info" not in r["stderr"] and "Warning" not in r["stderr"], (model, r)
        top = json.loads(r["stdout"])["top_k"]
        assert {c["name"] for c in top} == {str(i) for i in range(10)}, model
        predicted.append({c["id"]: c["probability"] for c in top})
    for model, probs in zip(models[1:], predicted[1:], strict=True):
        assert sorted(probs) == list(range(10)), model
        got = [probs[i] for i in range(10)]
        assert got == pytest.approx([predicted[0][i] for i in range(10)], abs=1e-5), model


# ----------------------------------------------------------------------- slow checks


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MNIST, reason=NO_MNIST)
def test_tflite_dynamic_quantization_accuracy_on_mnist(tmp_path):
    # The data package's split of one IDX pair: examples 0-7999 train, 8000-9999 test.
    source = sources.load_idx_source(MNIST_DIR)
    (x_train, y_train), (x_test, y_test) = source.train.arrays, source.test.arrays
    assert len(x_train) == 8000 and len(x_test) == 2000
    info = data.get_datasets(f"idx:{MNIST_DIR}", batch_size=64, validation_fraction=0.0).info
    mean, std = info.mean, info.std
    keras.utils.set_random_seed(0)
    model = create_model("_tiny", input_shape=(28, 28, 1), classes=10)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x = export.normalize_images(x_train, mean, std)
    model.fit(x, y_train, batch_size=64, epochs=4, verbose=0)
    pixels = x_test.astype("float32")
    accuracies = {}
    for mode in (None, "dynamic"):
        path = export.export_tflite(
            model, tmp_path / f"{mode}.tflite", quantize=mode, mean=mean, std=std
        )
        pred = serving.run_tflite(path, pixels).argmax(-1)
        accuracies[mode] = float(np.mean(pred == y_test))
    keras_pred = model.predict(export.normalize_images(x_test, mean, std), verbose=0).argmax(-1)
    assert accuracies[None] == pytest.approx(float(np.mean(keras_pred == y_test)), abs=1e-3)
    assert accuracies[None] > 0.85  # a 2-stage, 16-wide net after 4 epochs
    assert abs(accuracies["dynamic"] - accuracies[None]) <= 0.01, accuracies
