"""Tests for the ``train`` and ``evaluate`` commands (tiny model, real digits data)."""

from __future__ import annotations

import json
import os

import pytest

from keras_resnet.cli import build_parser, main
from keras_resnet.commands.train import resolve_run


def test_defaults_and_precedence(tmp_path):
    args = build_parser().parse_args(["train"])
    spec = resolve_run(args)
    assert (spec["model"], spec["dataset"], spec["config"].recipe) == (
        "resnet20",
        "digits",
        "digits",
    )
    # the digits recipe's shift augmentation is for digits only: other data sets get fast
    assert (
        resolve_run(build_parser().parse_args(["train", "--dataset", "cifar10"]))["config"].recipe
        == "fast"
    )
    assert spec["output_dir"] == "runs/resnet20-digits"
    assert spec["config"].image_size == (16, 16)
    flag = resolve_run(build_parser().parse_args(["train", "--image-size", "8"]))
    assert flag["config"].image_size == (8, 8)
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"recipe": "he2015_cifar", "epochs": 7, "model": "resnet32", "batch_size": 32})
    )
    spec = resolve_run(build_parser().parse_args(["train", "--config", str(path), "--epochs", "3"]))
    cfg = spec["config"]
    assert (cfg.recipe, cfg.epochs, cfg.batch_size, spec["model"]) == (
        "he2015_cifar",
        3,
        32,
        "resnet32",
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--recipe", "nope"], "recipe='nope'"),
        (["--epochs", "0"], "epochs=0"),
        (["--precision", "fp4"], "precision='fp4'"),
        (["--strategy", "spmd"], "strategy='spmd'"),
        (["--optimizer", "lion"], "optimizer='lion'"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys, tmp_path):
    assert main(["train", "--output", str(tmp_path / "r"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_then_evaluate_then_refuse_other_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = [
        "train",
        "--model",
        "_tiny",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--output",
        out,
        "--quiet",
        "--no-export",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text
    assert text.strip().splitlines()[-1].startswith(f"Run folder: {out} (test accuracy ")
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["dataset"] == "digits" and summary["epochs_completed"] == 1
    assert main(["evaluate", out, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert scores["examples"] == 360
    other = list(argv)
    other[4] = "2"  # --epochs 2: a different run
    assert main(other) == 2
    assert "different run" in capsys.readouterr().err
    assert json.load(open(os.path.join(out, "summary.json"))) == summary


def test_image_size_flag_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    import keras

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    argv = [sys.executable, "-m", "keras_resnet", "train", "--model", "_tiny", "--epochs", "1",
            "--output", str(tmp_path / "r"), "--no-export", "--quiet"]  # fmt: skip
    bad = subprocess.run(argv + ["--image-size", "0"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--image-size" in bad.stderr
    assert not (tmp_path / "r").exists()
    ok = subprocess.run(argv + ["--image-size", "12"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    run = json.loads((tmp_path / "r" / "config.json").read_text())["run"]
    assert run["data"]["image_size"] == [12, 12]
    assert run["train_config"]["image_size"] == [12, 12]
    model = keras.saving.load_model(tmp_path / "r" / "model.keras")
    assert tuple(model.input_shape) == (None, 12, 12, 1)


def _tree(folder) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(folder)
        for f in files
    }


def test_overwrite_deletes_only_run_files_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    train = [sys.executable, "-m", "keras_resnet", "train", "--model", "_tiny", "--epochs", "1",
             "--batch-size", "256", "--no-export", "--quiet"]  # fmt: skip
    # a user's folder whose names look like run files, without a run's config.json
    mine = tmp_path / "thesis"
    (mine / "backup").mkdir(parents=True)
    (mine / "backup" / "thesis.tex").write_text("\\chapter{Results}")
    (mine / "history.csv").write_text("year,event\n2015,ResNet\n")
    before = _tree(mine)
    proc = subprocess.run([*train, "--output", str(mine), "--overwrite"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "backup, history.csv" in proc.stderr and "not a run's files" in proc.stderr
    assert _tree(mine) == before
    # a finished run: a refused --overwrite leaves it byte for byte; an accepted one
    # replaces the run files and keeps the user's note
    run = tmp_path / "run"
    proc = subprocess.run([*train, "--output", str(run)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run / "notes.txt").write_text("lr 0.1 was too high")
    before = _tree(run)
    bad = [*train, "--output", str(run), "--overwrite", "--dataset", f"dir:{tmp_path / 'none'}"]
    proc = subprocess.run(bad, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert _tree(run) == before
    again = [*train, "--output", str(run), "--overwrite", "--epochs", "2"]
    # a user's file inside a run's folder: refused, named, nothing deleted
    (run / "tensorboard" / "plan.md").write_text("compare lr 0.05")
    before = _tree(run)
    proc = subprocess.run(again, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "tensorboard/plan.md" in proc.stderr
    assert _tree(run) == before
    (run / "tensorboard" / "plan.md").unlink()
    proc = subprocess.run(again, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "notes.txt").read_text() == "lr 0.1 was too high"
    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 2
