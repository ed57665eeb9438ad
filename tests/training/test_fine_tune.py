"""Fine-tuning: the head trains alone, then the backbone; BN stays frozen; one resumable run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import REPO
from training_helpers import pretrained_tiny, synthetic

from keras_resnet import create_model
from keras_resnet import training as T

ROOT = str(REPO)


class Snapshots(keras.callbacks.Callback):
    NAMES = ("stem_conv", "stage1_block1_conv1", "stage2_block1_conv1", "predictions")

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        snap = {n: self.model.get_layer(n).weights[0].numpy().copy() for n in self.NAMES}
        bns = [layer for layer in self.model.layers if "bn" in layer.name]
        snap["bn"] = [w.numpy().copy() for layer in bns for w in layer.weights]
        self.epochs.append(snap)


def _recipe(**kw):
    base = dict(epochs=3, head_epochs=1, batch_size=16, warmup_epochs=0, tensorboard=False)
    kw = dict(base, **kw)
    return T.get_recipe("fine_tune", **kw)


@pytest.mark.parametrize("unfreeze", ["all", 1])
def test_head_first_then_backbone_with_bn_frozen(tmp_path, unfreeze):
    source, path = pretrained_tiny(tmp_path)
    snaps = Snapshots()
    with pytest.warns(UserWarning, match="3 classes and the model 10"):
        T.train("_tiny", synthetic(), _recipe(unfreeze=unfreeze), weights=path, verbose=0,
                callbacks=[snaps])  # fmt: skip
    first, last = snaps.epochs[0], snaps.epochs[-1]
    pre = {n: source.get_layer(n).weights[0].numpy() for n in Snapshots.NAMES[:3]}
    for name in Snapshots.NAMES[:3]:  # phase 1: the backbone is untouched
        np.testing.assert_array_equal(first[name], pre[name])
    assert not np.allclose(first["predictions"], last["predictions"])
    assert not np.allclose(last["stage2_block1_conv1"], pre["stage2_block1_conv1"])
    changed = not np.allclose(last["stem_conv"], pre["stem_conv"])
    assert changed == (unfreeze == "all")  # unfreeze=1: only the last stage trains
    bn_before = [w.numpy() for layer in source.layers if "bn" in layer.name for w in layer.weights]
    for a, b in zip(bn_before, last["bn"], strict=True):  # BN in inference mode throughout
        np.testing.assert_array_equal(a, b)


def test_fine_tune_schedule_and_config_checks(tmp_path):
    cfg = _recipe(epochs=4, head_epochs=2, warmup_epochs=1)
    lr = T.make_schedule(cfg, 10)
    assert float(lr(0)) == pytest.approx(1e-3)
    assert float(lr(20)) == pytest.approx(1e-4 / 10)  # first warm-up step of phase 2
    # then cosine over the 20 steps of phase 2, counted from the switch
    assert float(lr(29)) == pytest.approx(1e-4 * 0.5 * (1 + np.cos(np.pi * 9 / 20)), rel=1e-4)
    with pytest.raises(ValueError, match="Received: head_epochs=3, epochs=3"):
        _recipe(head_epochs=3)
    with pytest.raises(ValueError, match="Received: unfreeze='some'"):
        _recipe(unfreeze="some")
    with pytest.raises(ValueError, match="does not run under the multi-worker"):
        T.train("_tiny", synthetic(), _recipe(strategy="multi_worker"), weights="x.keras")
    with pytest.raises(ValueError, match="needs pretrained weights.*head_epochs=1, weights=None"):
        T.train("_tiny", synthetic(), _recipe(), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # a random backbone is not frozen and trained
    with pytest.raises(TypeError, match="`weights` needs a zoo name"):
        T.train(create_model("_tiny"), synthetic(), _recipe(), weights="x.keras")


_RESUME = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, os.path.join({root!r}, "tests"))
    import keras
    from keras_resnet import training as T
    from training_helpers import pretrained_tiny, synthetic

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)

    cfg = T.get_recipe("fine_tune", epochs=4, head_epochs=2, batch_size=16, warmup_epochs=0,
                       tensorboard=False)
    T.train("_tiny", synthetic(), cfg, output_dir=sys.argv[1], verbose=0,
            weights=sys.argv[3], callbacks=[Kill()])
    """
)


@pytest.mark.parametrize(
    "kill_after, compare",
    [(2, False), pytest.param(0, True, marks=pytest.mark.slow),
     pytest.param(2, True, marks=pytest.mark.slow)],
)  # fmt: skip
def test_resume_after_kill_9_in_either_phase(tmp_path, kill_after, compare):
    _, weights = pretrained_tiny(tmp_path)
    script = _RESUME.format(root=ROOT)
    runs = {}
    plan = [("killed", [kill_after, -1])] + ([("straight", [-1])] if compare else [])
    for name, kills in plan:
        out = str(tmp_path / name)
        for kill in kills:
            done = subprocess.run(
                [sys.executable, "-c", script, out, str(kill), weights],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == (-9 if kill >= 0 else 0), done.stderr[-2000:]
        runs[name] = out
    rows = T.read_history(os.path.join(runs["killed"], "history.csv"))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    summary = json.load(open(os.path.join(runs["killed"], "summary.json")))
    assert summary["epochs_completed"] == 4
    if not compare:
        return
    a, b = (keras.saving.load_model(os.path.join(runs[n], "model.keras")) for n in runs)
    for x, y in zip(a.weights, b.weights, strict=True):  # same result as without the kill
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5)


def _png_folder(root, n=12, size=8):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, cls in enumerate(["dark", "bright"]):
        os.makedirs(root / cls)
        for i in range(n):
            pixels = rng.integers(0, 100, (size, size, 3)) + 150 * label
            Image.fromarray(pixels.astype("uint8")).save(root / cls / f"{i}.png")
    return str(root)


def test_cli_fine_tunes_a_folder_of_images(tmp_path):
    folder = _png_folder(tmp_path / "images")
    weights = str(tmp_path / "pretrained.keras")
    create_model("_tiny", input_shape=(8, 8, 3), classes=4).save(weights)
    out = str(tmp_path / "run")
    cmd = [
        sys.executable, "-m", "keras_resnet", "train", "--model", "_tiny", "--weights",
        weights, "--dataset", f"dir:{folder}", "--recipe", "fine_tune", "--epochs", "2",
        "--head-epochs", "1", "--batch-size", "8", "--output", out, "--quiet", "--no-export",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = T.read_history(os.path.join(out, "history.csv"))
    assert len(rows) == 2
    saved = json.load(open(os.path.join(out, "config.json")))
    assert saved["run"]["model_kwargs"]["weights"] == weights
    assert saved["run"]["train_config"]["head_epochs"] == 1
