"""Bad weights get one clear ValueError naming the file (and the tensor), never a traceback.

The API cases call ``create_model(weights=...)`` in-process; the CLI cases run in one
fresh process (one TensorFlow start-up) through ``keras_resnet.cli.main``, as
tests/commands/test_hostile_inputs.py does, and report exit code and stderr for each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_resnet import create_model

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors (dev)")
torch = pytest.importorskip("torch", reason="needs torch")

_BLOCK = re.compile(r"^stage(\d)_block(\d)_(conv|bn)(\d)$")
_SHORTCUT = re.compile(r"^stage(\d)_block(\d)_shortcut_(conv|bn)$")


def _tiny_state_dict(channels: int = 1) -> dict[str, np.ndarray]:
    """``_tiny``'s weights under torchvision's names (conv OIHW, linear (out, in))."""
    model = create_model("_tiny", input_shape=(8, 8, channels))
    sd = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        m, s = _BLOCK.match(layer.name), _SHORTCUT.match(layer.name)
        if m:
            key = f"layer{m[1]}.{int(m[2]) - 1}.{m[3]}{m[4]}"
        elif s:
            key = f"layer{s[1]}.{int(s[2]) - 1}.downsample.{0 if s[3] == 'conv' else 1}"
        else:
            key = {"stem_conv": "conv1", "stem_bn": "bn1", "predictions": "fc"}[layer.name]
        values = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            names = ("weight", "bias", "running_mean", "running_var")
        else:
            kernel = values[0].transpose(3, 2, 0, 1) if values[0].ndim == 4 else values[0].T
            values, names = [kernel, *values[1:]], ("weight", "bias")
        sd.update({f"{key}.{n}": np.ascontiguousarray(v) for n, v in zip(names, values)})
    return sd


def _hostile_files(root) -> dict[str, str]:
    """Every hostile weights source, by case name."""
    files = {}
    sd = _tiny_state_dict()
    for name, change in [
        ("int", lambda d: d.update({"conv1.weight": d["conv1.weight"].astype("int64")})),
        ("nan", lambda d: d["layer2.0.conv2.weight"].__setitem__((0, 0, 0, 0), np.nan)),
    ]:
        bad = {k: v.copy() for k, v in sd.items()}
        change(bad)
        files[name] = str(root / f"{name}.safetensors")
        safetensors_numpy.save_file(bad, files[name])
    safetensors_numpy.save_file(sd, str(root / "good.safetensors"))
    for name, obj in [("list", [1, 2]), ("tensor", torch.zeros(3))]:
        files[name] = str(root / f"{name}.pth")
        torch.save(obj, files[name])
    for name, config in [
        ("hf_list", "[]"),
        ("hf_broken", "{oops"),
        ("hf_mean", json.dumps({"architecture": "resnet18", "pretrained_cfg": {"mean": "abc"}})),
    ]:
        (root / name).mkdir()
        (root / name / "config.json").write_text(config)
        safetensors_numpy.save_file(sd, str(root / name / "model.safetensors"))
        files[name] = str(root / name)
    (root / "hub").mkdir()
    (root / "hub" / "config.json").write_text('{"module": "keras_hub.src.models')
    (root / "hub" / "model.weights.h5").write_bytes(b"")
    files["hub"] = str(root / "hub")
    for name, info in [("run_broken", "{oops"), ("run_list", "[0.5]")]:
        (root / name).mkdir()
        create_model("_tiny", input_shape=(8, 8, 1)).save(str(root / name / "model.keras"))
        (root / name / "data_info.json").write_text(info)
        files[name] = str(root / name)
    return files


# case -> (what the message holds besides the file name, the file the message names)
EXPECTED = {
    "int": ("tensor 'stem_conv/kernel' holds int64 values", ""),
    "nan": ("tensor 'stage2_block1_conv2/kernel' holds 1 NaN", ""),
    "list": ("holds a list, not a state dict", ""),
    "tensor": ("holds a Tensor, not a state dict", ""),
    "hf_list": ("holds a JSON list", "config.json"),
    "hf_broken": ("is not valid JSON", "config.json"),
    "hf_mean": ("mean='abc'", "config.json"),
    "hub": ("is not valid JSON", "config.json"),
    "run_broken": ("is not valid JSON", "data_info.json"),
    "run_list": ("holds a JSON list", "data_info.json"),
}


def test_create_model_names_the_bad_file_and_tensor(tmp_path):
    files = _hostile_files(tmp_path)
    good = create_model("_tiny", input_shape=(8, 8, 1), weights=str(tmp_path / "good.safetensors"))
    assert good.get_layer("stem_conv").kernel.dtype == "float32"
    wrong = {}  # every case is checked, then all that went wrong are reported
    for case, (message, file) in EXPECTED.items():
        named = os.path.join(files[case], file) if file else files[case]
        try:
            create_model("_tiny", input_shape=(8, 8, 1), weights=files[case])
            wrong[case] = "loaded"
        except ValueError as err:
            if message not in str(err) or named not in str(err):
                wrong[case] = str(err)
        except Exception as err:
            wrong[case] = f"{type(err).__name__}: {err}"
    assert not wrong, json.dumps(wrong, indent=1)


def _offline_env(tmp_path) -> dict[str, str]:
    """No cached keras.applications files, and every download refused at once."""
    proxy = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection fails
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=str(tmp_path / "keras_home"))
    env.update(https_proxy=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, HTTP_PROXY=proxy)
    env.update(no_proxy="", NO_PROXY="")
    return env


# Each case through keras_resnet.cli.main in one process: exit code and stderr.
_CASES = textwrap.dedent(
    """
    import contextlib, io, json, sys, traceback
    from keras_resnet.cli import main

    report = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except BaseException:
            code, text = "raised", traceback.format_exc()
        else:
            text = err.getvalue()
        report.append({"argv": argv, "code": code, "stderr": text})
    print(json.dumps(report))
    """
)


def test_cli_refuses_bad_weights_and_fine_tuning_without_weights(tmp_path):
    files = _hostile_files(tmp_path)
    out = tmp_path / "out"  # each case its own folder below it: none may be written
    out.mkdir()

    def train(case: str, *more: str) -> list[str]:
        return ["train", "--epochs", "1", "--batch-size", "256", "--quiet", "--no-export",
                "--output", str(out / case), *more]  # fmt: skip

    expected = []  # (argv, texts the message must hold)
    for case in ("int", "nan", "hf_list", "run_broken"):
        message, file = EXPECTED[case]
        named = os.path.join(files[case], file) if file else files[case]
        expected.append((train(case, "--model", "_tiny", "--weights", files[case]), message, named))
    for case in ("list", "hf_mean"):
        argv = ["evaluate", "_tiny", "--weights", files[case], "--dataset", "digits"]
        expected.append((argv, EXPECTED[case][0], files[case]))
    fine_tune = train("fine_tune", "--model", "_tiny", "--recipe", "fine_tune", "--epochs", "2")
    expected.append((fine_tune + ["--head-epochs", "1"], "needs pretrained weights", "--weights"))
    imagenet = train("imagenet", "--model", "resnet50_keras", "--weights", "imagenet")
    expected.append((imagenet + ["--image-size", "32"], "needs internet", "--weights FILE.h5"))
    proc = subprocess.run(
        [sys.executable, "-c", _CASES, json.dumps([argv for argv, *_ in expected])],
        capture_output=True, text=True, env=_offline_env(tmp_path), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = {json.dumps(r["argv"]): r for r in report}
    wrong = []  # every case is checked, then all that went wrong are reported
    for argv, *messages in expected:
        got = results[json.dumps(argv)]
        one_line = len(got["stderr"].strip().splitlines()) == 1
        if got["code"] != 2 or not one_line or not all(m in got["stderr"] for m in messages):
            wrong.append({"argv": argv[-4:], "code": got["code"], "stderr": got["stderr"][-600:]})
    assert not wrong, json.dumps(wrong, indent=1)
    assert not list(out.iterdir())  # nothing was written for any refused run
