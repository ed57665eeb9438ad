"""CIFAR ResNet checkpoints of akamaster/pytorch_resnet_cifar10 (``.th``) load exactly.

The reference is tests/cifar_reference.py, a plain PyTorch reimplementation of that
layout (option-A shortcuts as ``F.pad`` of the subsampled input). Checkpoints are
written from random weights and BN statistics in the published file layout; the real
published ResNet-20 and ResNet-56 files are checked on 846 real CIFAR-10 test images.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO

from keras_resnet import create_model
from keras_resnet.models.resnet.blocks import shortcut

torch = pytest.importorskip("torch", reason="PyTorch checkpoints need torch")
from cifar_reference import (  # noqa: E402
    OptionA,
    random_cifar_resnet,
    reference_logits,
    save_checkpoint,
)

DATA = REPO.parent / "shared" / "data"
CHECKPOINTS = DATA / "cifar10-checkpoints"
TEST_BATCH = DATA / "cifar10-subset" / "cifar-10-batches-bin" / "test_batch.bin"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_zero_pad_shortcut_is_option_a_with_planes_over_4_zeros_on_each_side():
    # 16 channels at 4x4 into a 32-channel block of stride 2 (planes = 32): the
    # output is x[:, ::2, ::2, :] in channels 8..23, with 8 (= 32 // 4) zero channels
    # before (0..7) and 8 after (24..31).
    h, w, c = np.meshgrid(np.arange(4), np.arange(4), np.arange(16), indexing="ij")
    x = (1 + 100 * c + 10 * h + w)[None].astype("float32")  # every value distinct, none 0
    inputs = keras.Input((4, 4, 16))
    y = keras.Model(inputs, shortcut(inputs, 32, strides=2, kind="zero_pad", name="b"))(x)
    y = keras.ops.convert_to_numpy(y)
    assert y.shape == (1, 2, 2, 32)
    np.testing.assert_array_equal(y[..., 0:8], 0)
    np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 24:32], 0)
    assert y[0, 1, 1, 8] == x[0, 2, 2, 0] == 1 + 0 + 20 + 2
    nchw = OptionA(32 // 4)(torch.as_tensor(x).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(y, nchw.permute(0, 2, 3, 1).numpy())


def _images(n=4):
    return np.random.default_rng(1).normal(0, 1, (n, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, pytest.param(1202, marks=pytest.mark.slow)])
def test_th_checkpoint_matches_the_reference(tmp_path, depth):
    reference = random_cifar_resnet(depth, seed=depth)
    path = str(tmp_path / f"resnet{depth}-0123abcd.th")
    save_checkpoint(reference, path)
    model = create_model(f"resnet{depth}", weights=path, classifier_activation=None)
    x = _images()
    logits = model.predict(x, verbose=0)
    expected = reference_logits(reference, x)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    np.testing.assert_allclose(probs, torch.softmax(torch.as_tensor(expected), -1), atol=1e-4)
    prep = model.pretrained_preprocessing
    assert (prep.mean, prep.std, prep.input_size) == (*IMAGENET, (32, 32))


def test_pth_name_and_other_class_count_load_too(tmp_path):
    reference = random_cifar_resnet(20, classes=100)
    path = str(tmp_path / "resnet20_cifar100.pth")
    save_checkpoint(reference, path)
    model = create_model("resnet20", weights=path, classes=100, classifier_activation=None)
    x = _images(2)
    expected = reference_logits(reference, x)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-4)


def test_a_checkpoint_of_another_depth_is_refused(tmp_path):
    path = str(tmp_path / "resnet20.th")
    save_checkpoint(random_cifar_resnet(20), path)
    with pytest.raises(ValueError, match="missing tensor.*stage1_block4_conv1"):
        create_model("resnet32", weights=path)


_ACCURACY = """
import json, sys
import numpy as np
from keras_resnet import create_model

name, weights, batch = sys.argv[1:4]
records = np.fromfile(batch, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
labels = records[:, 0]
images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / 255.0
model = create_model(name, weights=weights)
prep = model.pretrained_preprocessing
x = ((images - np.array(prep.mean)) / np.array(prep.std)).astype("float32")
predicted = model.predict(x, batch_size=128, verbose=0).argmax(-1)
print(json.dumps({"images": len(labels), "accuracy": float(np.mean(predicted == labels)),
                  "mean": prep.mean, "std": prep.std}))
"""


@pytest.mark.skipif(
    not CHECKPOINTS.is_dir() or not TEST_BATCH.is_file(),
    reason="the published CIFAR-10 checkpoints or the cifar10-subset test batch are absent",
)
@pytest.mark.parametrize(
    "name, published, accuracy",
    [
        ("resnet20", "resnet20-12fca82f.th", 0.917),
        pytest.param("resnet56", "resnet56-4bfd9763.th", 0.933, marks=pytest.mark.slow),
    ],
)
def test_published_checkpoints_classify_real_cifar10_images(name, published, accuracy):
    argv = [sys.executable, "-c", _ACCURACY, name, str(CHECKPOINTS / published), str(TEST_BATCH)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["images"] == 846
    assert (tuple(result["mean"]), tuple(result["std"])) == IMAGENET
    assert result["accuracy"] == pytest.approx(accuracy, abs=0.003)


@pytest.mark.skipif(
    not CHECKPOINTS.is_dir() or not TEST_BATCH.is_file(),
    reason="the published CIFAR-10 checkpoints or the cifar10-subset test batch are absent",
)
def test_evaluate_command_scores_the_published_resnet20_on_the_cifar_files(tmp_path):
    folder = TEST_BATCH.parent.parent  # the folder holding cifar-10-batches-bin/
    argv = [sys.executable, "-m", "keras_resnet", "evaluate", "resnet20", "--weights",
            str(CHECKPOINTS / "resnet20-12fca82f.th"), "--dataset", f"cifar10:{folder}",
            "--output", str(tmp_path / "eval"), "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["examples"] == 846
    assert result["accuracy"] == pytest.approx(0.917, abs=0.003)
    per_class = {row["class"]: row for row in result["per_class"]}
    assert sorted(per_class) == sorted(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    )
    correct = sum(row["correct"] for row in per_class.values())
    assert correct / 846 == pytest.approx(result["accuracy"], abs=1e-6)
    assert sum(row["count"] for row in per_class.values()) == 846
    png = (tmp_path / "eval" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
