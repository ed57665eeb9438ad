"""``python -m keras_resnet tune``: arguments, results files, retrain, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from conftest import REPO

from keras_resnet.cli import build_parser, main
from keras_resnet.commands.tune import parse_search_space
from keras_resnet.tuning.run import format_results

SPACE = json.dumps(
    {
        "batch_size": 128,
        "head_dropout": None,
        "dropout": None,
        "se_ratio": None,
        "augment": "none",
        "preact": [False, True],
        "learning_rate": {"min": 0.02, "max": 0.2, "sampling": "log"},
    }
)


def test_parse_search_space():
    space = parse_search_space(
        '{"block": "basic", "groups": [1, 4], "dropout": null, '
        '"stage_depths": [[1, 1], [2, 2]], "learning_rate": {"min": 0.01, "max": 0.1, '
        '"sampling": "log"}, "stage1_depth": {"min": 1, "max": 4, "step": 1}}'
    )
    assert space == {
        "block": "basic",
        "groups": [1, 4],
        "dropout": None,
        "stage_depths": [(1, 1), (2, 2)],
        "learning_rate": (0.01, 0.1, "log"),
        "stage1_depth": (1, 4, 1),
    }
    assert parse_search_space(None) == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_search_space("{block: basic}")
    with pytest.raises(ValueError, match="JSON object"):
        parse_search_space("[1, 2]")
    with pytest.raises(ValueError, match="needs 'min' and 'max'"):
        parse_search_space('{"dropout": {"low": 0, "max": 0.3}}')


def test_parse_search_space_from_file(tmp_path):
    path = tmp_path / "space.json"
    path.write_text('{"block": ["basic", "bottleneck"]}')
    assert parse_search_space(f"@{path}") == {"block": ["basic", "bottleneck"]}


def test_format_results_aligns_columns():
    rows = [
        {"trial": "1", "score": 0.9, "seconds": 12.34, "status": "COMPLETED",
         "hyperparameters": {"learning_rate": 0.012345, "block": "bottleneck"}},
        {"trial": "0", "score": None, "seconds": None, "status": "FAILED",
         "hyperparameters": {"learning_rate": 0.1, "block": "basic"}},
    ]  # fmt: skip
    lines = format_results(rows, ["block", "learning_rate"]).splitlines()
    header = ["trial", "score", "seconds", "MACs", "status", "block", "learning_rate"]
    assert lines[0].split() == header
    assert lines[1].split() == ["1", "0.9000", "12.3", "-", "COMPLETED", "bottleneck", "0.01235"]
    assert lines[2].split() == ["0", "-", "-", "-", "FAILED", "basic", "0.1"]
    assert len({line.index("block") for line in lines[:1]}) == 1


def test_parser_defaults():
    args = build_parser().parse_args(["tune"])
    assert (args.dataset, args.tuner, args.baseline, args.recipe) == (
        "digits",
        "random",
        "resnet20",
        "fast",
    )


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--max-trials", "0"], "max-trials"),
        (["--epochs", "0"], "epochs"),
        (["--baseline", "resnet21"], "Unknown model name"),
        (["--max-trial-macs", "0"], "max-trial-macs"),
        (["--search-space", '{"blocks": "basic"}'], "Unknown hyperparameter name"),
    ],
)
def test_bad_arguments_exit_2(argv, match, tmp_path, capsys):
    assert main(["tune", "--output", str(tmp_path / "o"), *argv]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o" / "search").exists()


def test_tune_search_then_rerun_reloads(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "--dataset", "digits", "--baseline", "_tiny", "--max-trials", "1",
            "--epochs", "1", "--output", str(out), "--search-space", SPACE, "--no-retrain",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "trial  score" in capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert 0.0 <= best["score"] <= 1.0 and "retrain" not in best
    assert main(argv) == 0  # finished: reloaded, no trial run again
    assert "Reloading Tuner" in capsys.readouterr().out
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 1


@pytest.mark.slow
def test_tune_search_retrain_and_resume(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "--dataset", "digits", "--baseline", "_tiny", "--tuner", "random",
            "--max-trials", "2", "--epochs", "1", "--output", str(out), "--search-space", SPACE,
            "--no-export", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "trial  score" in printed and "learning_rate" in printed
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"trial", "score", "seconds", "preact"} <= set(rows[0])
    results = json.loads((out / "results.json").read_text())
    assert results["search"]["max_trials"] == 2 and len(results["trials"]) == 2
    best = json.loads((out / "best.json").read_text())
    assert best["score"] == max(float(r["score"]) for r in rows)
    retrain = best["retrain"]
    run_dir = out / f"best_trial_{best['trial']}"
    assert retrain["run_dir"] == str(run_dir)
    assert (run_dir / "model.keras").exists() and 0.0 <= retrain["test_accuracy"] <= 1.0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["train_config"]["validation_fraction"] == 0.0  # train + validation
    # Same command again: the finished search and retrain are reloaded, not redone.
    mtime = (run_dir / "model.keras").stat().st_mtime
    assert main(argv) == 0
    assert "Reloading Tuner" in capsys.readouterr().out
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 2
    assert (run_dir / "model.keras").stat().st_mtime == mtime
    # A different search in the same folder is refused without --overwrite.
    other = [a if a != "random" else "bayesian" for a in argv]
    assert main(other) == 2
    assert "different search" in capsys.readouterr().err


def test_tune_skips_trials_over_the_mac_budget(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "--baseline", "_tiny", "--max-trials", "2", "--epochs", "1",
            "--output", str(out), "--search-space", SPACE, "--max-trial-macs", "1000",
            "--no-retrain"]  # fmt: skip
    assert main(argv) == 1  # nothing trained, so nothing to retrain
    printed = capsys.readouterr().out
    assert "over max_macs=1e+03: skipped" in printed and "no trial finished" in printed
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["SKIPPED", "SKIPPED"]
    assert all(int(r["macs"]) > 1000 and r["score"] == "" for r in rows)
    assert json.loads((out / "tune.json").read_text())["max_trial_macs"] == 1000


def _cli(*argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*argv), capture_output=True, text=True, env=_env(), timeout=timeout
    )


def _command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "keras_resnet", "tune", "--baseline", "_tiny", "--epochs", "1",
            "--search-space", SPACE, "--quiet", *argv]  # fmt: skip


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")


@pytest.mark.slow  # fresh processes, 20-40 s
def test_a_second_tune_into_a_busy_folder_is_refused_and_the_first_finishes(tmp_path):
    out = tmp_path / "tune"
    argv = ("--max-trials", "2", "--output", str(out), "--no-retrain")
    first = subprocess.Popen(
        _command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        deadline = time.monotonic() + 300
        while not ((out / ".lock").exists() and (out / ".lock").read_text().strip()):
            assert first.poll() is None, "the first tune ended without taking the folder's lock"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first.send_signal(signal.SIGSTOP)  # hold it inside its search, whatever the timing
        try:
            second = _cli(*argv, timeout=180)  # refused at once, not after the first ends
        finally:
            first.send_signal(signal.SIGCONT)
        printed, errors = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"in use by another run (process {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr and "Best trial" not in second.stdout
    assert first.returncode == 0, errors[-2000:]
    assert printed.count("Best trial") == 1
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 2
    assert not (out / ".lock").exists()


@pytest.mark.slow  # fresh processes, 20-40 s
def test_overwrite_replaces_a_search_and_its_retrain_and_nothing_else(tmp_path):
    out = tmp_path / "tune"
    argv = ("--max-trials", "1", "--output", str(out), "--no-export")
    assert _cli(*argv).returncode == 0
    assert (out / "best_trial_0" / "model.keras").is_file()
    (out / "notes.txt").write_text("mine")
    again = _cli(*argv, "--seed", "1", "--overwrite")
    assert again.returncode == 0, again.stderr[-2000:]
    best = json.loads((out / "best.json").read_text())
    config = json.loads((out / "best_trial_0" / "config.json").read_text())
    assert best["retrain"]["run_dir"] == str(out / "best_trial_0")
    assert config["run"]["train_config"]["seed"] == 1  # the new search's retrain
    assert (out / "notes.txt").read_text() == "mine"
    # A folder whose files no search wrote (no tune.json) is refused, left as it was.
    mine = tmp_path / "mine"
    (mine / "search").mkdir(parents=True)
    (mine / "search" / "thesis.tex").write_text("chapter 1")
    (mine / "results.csv").write_text("a,b\n")
    refused = _cli("--max-trials", "1", "--output", str(mine), "--overwrite", "--no-retrain")
    assert refused.returncode == 2
    assert "results.csv, search" in refused.stderr and "no search's tune.json" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (mine / "search" / "thesis.tex").read_text() == "chapter 1"
    assert sorted(os.listdir(mine)) == ["results.csv", "search"]


def test_quiet_search_prints_no_traceback_and_corrupt_files_are_named(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ("--max-trials", "2", "--output", str(out), "--max-trial-macs", "1", "--no-retrain")
    quiet = _cli(*argv)
    assert quiet.returncode == 1  # nothing trained
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert quiet.stdout.count("over the MAC budget") == 2  # one line per skipped trial
    oracle = out / "search" / "oracle.json"
    saved = oracle.read_bytes()
    oracle.write_text('{"ongoing_trials": ')  # cut off
    corrupt = _cli(*argv)
    assert corrupt.returncode == 2
    assert len(corrupt.stderr.strip().splitlines()) == 1, corrupt.stderr[-2000:]
    assert str(oracle) in corrupt.stderr and "--overwrite" in corrupt.stderr
    oracle.write_bytes(saved)
    # Quicker in this process: the other files KerasTuner and `tune` read back.
    flags = ["tune", "--baseline", "_tiny", "--epochs", "1", "--search-space", SPACE, "--quiet",
             *argv]  # fmt: skip
    for name, text in [("search/oracle.json", "[]"), ("search/trial_0/trial.json", "{oops"),
                       ("tune.json", "{oops")]:  # fmt: skip
        path = out / name
        saved = path.read_bytes()
        path.write_text(text)
        assert main(flags) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "--overwrite" in err and "Traceback" not in err
        path.write_bytes(saved)


def test_tune_default_retrain_then_rerun_reloads_and_reports(tmp_path, capsys):
    out = tmp_path / "tune"
    # the default retrain (no --no-retrain); the SavedModel export is skipped for time
    argv = ("--max-trials", "1", "--output", str(out), "--no-export")
    first = _cli(*argv)
    assert first.returncode == 0, first.stderr[-2000:]
    best = json.loads((out / "best.json").read_text())
    run_dir = out / f"best_trial_{best['trial']}"
    summary = json.loads((run_dir / "summary.json").read_text())
    retrain = best["retrain"]
    assert retrain["run_dir"] == str(run_dir) and retrain == {"run_dir": str(run_dir), **summary}
    reported = f"_tiny on digits: test accuracy {summary['test_accuracy']:.2%} after 1 epochs"
    assert reported in first.stdout, first.stdout
    # The same command again: the search is reloaded, the retrain not run again, and
    # both report what they found.
    mtime = (run_dir / "model.keras").stat().st_mtime_ns
    again = _cli(*argv)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Reloading Tuner" in again.stdout and "already finished" in again.stdout
    assert reported in again.stdout and f"Best trial {best['trial']}" in again.stdout
    assert (run_dir / "model.keras").stat().st_mtime_ns == mtime
    assert json.loads((out / "best.json").read_text()) == best
    # what the retrain saved loads and scores what it reported
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
