"""``evaluate()`` and ``python -m keras_resnet evaluate``: architecture names with
weights, the weights' normalization, per-class accuracy, confusion matrix and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from keras_resnet import create_model
from keras_resnet.training import evaluate
from keras_resnet.weights import Preprocessing

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A ``_tiny`` model for digits (8x8x1, 10 classes) saved as ``tiny.keras``."""
    folder = tmp_path_factory.mktemp("weights")
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    model.save(str(folder / "tiny.keras"))
    return folder / "tiny.keras"


def _check_adds_up(result):
    rows = result["per_class"]
    assert sum(r["count"] for r in rows) == result["examples"]
    assert sum(r["correct"] for r in rows) / result["examples"] == pytest.approx(
        result["accuracy"], abs=1e-12
    )
    for i, row in enumerate(rows):
        assert row["count"] == sum(result["confusion_matrix"][i])
        assert row["correct"] == result["confusion_matrix"][i][i]
        assert row["accuracy"] == pytest.approx(row["correct"] / row["count"])


def test_one_pass_gives_keras_accuracy_loss_per_class_and_output_files(tmp_path):
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10)
    result = evaluate(model, "digits", output_dir=tmp_path / "out")
    assert result["examples"] == 360 and len(result["per_class"]) == 10
    assert result["per_class"][3]["class"] == "3"
    _check_adds_up(result)
    assert result["normalization"]["source"] == "dataset"
    from keras_resnet.data import get_datasets

    data = get_datasets("digits", batch_size=256, augment="none").test
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_scores = model.evaluate(data, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(keras_scores["accuracy"], abs=1e-6)
    assert result["loss"] == pytest.approx(keras_scores["loss"], rel=1e-5)
    assert (tmp_path / "out" / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert sorted(os.listdir(tmp_path / "out")) == ["confusion_matrix.png", "evaluation.json"]


def test_architecture_name_with_weights_builds_for_the_data(tiny_weights):
    result = evaluate("_tiny", "digits", weights=tiny_weights)
    saved = evaluate(str(tiny_weights), "digits")
    assert result["accuracy"] == saved["accuracy"] and result["loss"] == saved["loss"]
    assert result["model"] == f"_tiny ({tiny_weights})"
    assert result["confusion_matrix"] == saved["confusion_matrix"]


def test_the_weights_normalization_is_applied_and_reported(tmp_path, tiny_weights):
    run = tmp_path / "run"  # a run folder's data_info.json carries its mean/std
    run.mkdir()
    (run / "model.keras").write_bytes(tiny_weights.read_bytes())
    (run / "data_info.json").write_text(json.dumps({"mean": [0.13], "std": [0.31]}))
    result = evaluate("_tiny", "digits", weights=str(run))
    assert result["normalization"] == {"mean": [0.13], "std": [0.31], "source": "weights"}
    model = create_model("_tiny", input_shape=(8, 8, 1), classes=10, weights=str(tiny_weights))
    given = evaluate(model, "digits", data_kwargs={"mean": (0.13,), "std": (0.31,)})
    assert given["normalization"]["source"] == "given"
    assert given["confusion_matrix"] == result["confusion_matrix"]
    model.pretrained_preprocessing = Preprocessing(mean=(0.13,), std=(0.31,))
    carried = evaluate(model, "digits")
    assert carried["normalization"]["source"] == "weights"
    assert carried["confusion_matrix"] == result["confusion_matrix"]


@pytest.mark.parametrize(
    "model, weights, dataset, message",
    [
        ("_tiny", None, "digits", "architecture name: pass `weights`"),
        ("resnet21", None, "digits", "no .keras file, run folder or architecture name.*resnet20"),
        ("resnet21", "W", "digits", "Unknown model name 'resnet21'"),
        ("keras.Model", "W", "digits", "`weights` needs a registered architecture name"),
        ("_tiny", "model.onnx", "digits", "Received: weights='model.onnx'"),
        ("_tiny", "W", None, "`dataset` is required"),
        ("_tiny", "W5", "digits", "do not classify the data's 10 classes"),
    ],
)
def test_bad_arguments_are_named(tmp_path, tiny_weights, model, weights, dataset, message):
    if weights == "W5":
        weights = str(tmp_path / "five.keras")
        create_model("_tiny", input_shape=(8, 8, 1), classes=5).save(weights)
    elif weights == "W":
        weights = str(tiny_weights)
    if model == "keras.Model":
        model = create_model("_tiny", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=message):
        evaluate(model, dataset, weights=weights)


def test_cli_evaluates_a_checkpoint_in_a_fresh_process(tmp_path, tiny_weights):
    out = tmp_path / "report"
    argv = [sys.executable, "-m", "keras_resnet", "evaluate", "_tiny", "--weights",
            str(tiny_weights), "--dataset", "digits", "--output", str(out)]  # fmt: skip
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"_tiny ({tiny_weights}) on digits (test, 360 images): accuracy")
    assert lines[1].startswith("normalization (dataset): mean [")
    assert lines[2].split() == ["class", "images", "accuracy"]
    assert [line.split()[0] for line in lines[3:13]] == [str(i) for i in range(10)]
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    result = json.loads((out / "evaluation.json").read_text())
    _check_adds_up(result)
    assert f"accuracy {result['accuracy']:.2%}" in lines[0]
