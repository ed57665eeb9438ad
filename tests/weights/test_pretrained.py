"""Pretrained weights: every source format loads into the matching variant, exactly.

The references are independent implementations: a numpy forward pass of timm's
ResNets (tests/torch_reference.py), keras-hub (its timm converter and its own
presets) and keras.applications. Checkpoints are written from random weights and
random BN statistics; outputs must agree to a relative difference of 1e-5.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from torch_reference import TIMM_ARCHS, timm_forward, timm_state_dict

from keras_resnet import create_model
from keras_resnet.weights import Preprocessing, load_weights, source_kind

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="needs safetensors (dev)")
SHAPE = (32, 32, 3)
# timm name -> our variant
OURS = {a: a for a in TIMM_ARCHS} | {f"resnetv2_{d}": f"resnet{d}v2" for d in (50, 101, 152)}
SMALL = (1, 1, 1, 1)  # one block per stage: the same layout, quick enough for the default suite


def _rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def _images(n=2, shape=SHAPE):
    return np.random.default_rng(1).uniform(-1, 1, (n, *shape)).astype("float32")


def _write(tmp_path, sd, name="model.safetensors", config=None):
    if config is not None:
        folder = tmp_path / "hf"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        safetensors_numpy.save_file(sd, str(folder / "model.safetensors"))
        return str(folder)
    path = str(tmp_path / name)
    safetensors_numpy.save_file(sd, path)
    return path


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


def _assert_untouched(model, before):
    for a, w in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(a, w.numpy())


@pytest.mark.parametrize(
    "arch",
    ["resnet18", "resnet50d", "resnext50_32x4d", "resnetv2_50"]
    + [pytest.param("wide_resnet50_2", marks=pytest.mark.slow)],
)
def test_timm_safetensors_match_reference_one_block_per_stage(tmp_path, arch):
    sd = timm_state_dict(arch, classes=7, layers=SMALL)
    path = _write(tmp_path, sd)
    model = create_model(
        OURS[arch], stage_depths=SMALL, weights=path, classes=7, input_shape=SHAPE,
        classifier_activation=None,
    )  # fmt: skip
    x = _images()
    assert _rel(model.predict(x, verbose=0), timm_forward(arch, sd, x, layers=SMALL)) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(TIMM_ARCHS))
def test_timm_safetensors_match_reference_full_depth(tmp_path, arch):
    sd = timm_state_dict(arch, classes=5)
    path = _write(tmp_path, sd)
    model = create_model(
        OURS[arch], weights=path, classes=5, input_shape=SHAPE, classifier_activation=None
    )
    x = _images()
    assert _rel(model.predict(x, verbose=0), timm_forward(arch, sd, x)) <= 1e-5


def _hf_config(arch, classes):
    return {
        "architecture": arch,
        "num_classes": classes,
        "pretrained_cfg": {
            "input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.95,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        },
        "label_names": [f"class_{i}" for i in range(classes)],
    }  # fmt: skip


def _keras_hub():
    return pytest.importorskip("keras_hub", reason="needs keras-hub (dev extra)")


@pytest.mark.parametrize("arch", ["resnet18", pytest.param("resnetv2_50", marks=pytest.mark.slow)])
def test_hf_folder_matches_keras_hub_timm_converter(tmp_path, arch):
    keras_hub = _keras_hub()
    folder = _write(tmp_path, timm_state_dict(arch, classes=4), config=_hf_config(arch, 4))
    reference = keras_hub.models.ResNetBackbone.from_preset(folder, image_shape=SHAPE)
    model = create_model(OURS[arch], weights=folder, include_top=False, input_shape=SHAPE)
    x = _images()
    assert _rel(model.predict(x, verbose=0), reference.predict(x, verbose=0)) <= 1e-5
    prep = model.pretrained_preprocessing
    assert prep.input_size == (224, 224) and prep.crop_pct == 0.95
    assert prep.interpolation == "bicubic" and prep.class_names[3] == "class_3"
    assert prep.std == (0.229, 0.224, 0.225)


def _randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g = layer.gamma.shape
            layer.set_weights(
                [rng.uniform(0.5, 1.5, g), rng.normal(0, 0.1, g), rng.normal(0, 0.1, g),
                 rng.uniform(0.5, 1.5, g)]
            )  # fmt: skip


KERAS_HUB_PRESETS = {
    # our variant (one block per stage) -> keras-hub ResNetBackbone arguments
    "resnet18": {"block_type": "basic_block"},
    "resnet50d": {
        "block_type": "bottleneck_block_vd", "input_conv_filters": [32, 32, 64],
        "input_conv_kernel_sizes": [3, 3, 3],
    },
    "resnet50v2": {"block_type": "bottleneck_block", "use_pre_activation": True},
}  # fmt: skip


@pytest.mark.parametrize("variant", sorted(KERAS_HUB_PRESETS))
def test_keras_hub_preset_matches_keras_hub(tmp_path, variant):
    keras_hub = _keras_hub()
    kwargs = {"input_conv_filters": [64], "input_conv_kernel_sizes": [7]}
    kwargs.update(KERAS_HUB_PRESETS[variant])
    backbone = keras_hub.models.ResNetBackbone(
        stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=list(SMALL),
        stackwise_num_strides=[1, 2, 2, 2], image_shape=SHAPE, **kwargs,
    )  # fmt: skip
    _randomize_bn(backbone)
    backbone.save_to_preset(str(tmp_path))
    model = create_model(
        variant, stage_depths=SMALL, weights=str(tmp_path), include_top=False, input_shape=SHAPE
    )
    x = _images()
    assert _rel(model.predict(x, verbose=0), backbone.predict(x, verbose=0)) <= 1e-5


def test_keras_applications_h5_file_matches_keras_applications(tmp_path):
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    app = keras.applications.ResNet50(
        weights=None, input_shape=SHAPE, classes=6, classifier_activation=None
    )
    _randomize_bn(app)
    path = str(tmp_path / "resnet50.h5")
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, app)
    model = create_model(
        "resnet50_keras", weights=path, classes=6, input_shape=SHAPE, classifier_activation=None
    )
    x = _images()
    assert _rel(model.predict(x, verbose=0), app.predict(x, verbose=0)) <= 1e-5
    assert model.pretrained_preprocessing.mode == "caffe"


@pytest.fixture
def tiny(tmp_path):
    model = create_model("_tiny", input_shape=(8, 8, 3))
    _randomize_bn(model, seed=3)
    return model


def test_own_files_load_in_a_fresh_process(tmp_path, tiny):
    sources = [str(tmp_path / "tiny.keras"), str(tmp_path / "tiny.weights.h5"), str(tmp_path)]
    tiny.save(sources[0])
    tiny.save_weights(sources[1])
    tiny.save(str(tmp_path / "model.keras"))  # tmp_path is now a run folder
    x = _images(2, (12, 12, 3))
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np; from keras_resnet import create_model\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"for i, source in enumerate({sources!r}):\n"
        "    m = create_model('_tiny', weights=source, input_shape=(12, 12, 3))\n"
        f"    np.save({str(tmp_path)!r} + '/y%d.npy' % i, m.predict(x, verbose=0))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    expected = create_model("_tiny", input_shape=(12, 12, 3))
    expected.set_weights(tiny.get_weights())
    for i in range(3):
        np.testing.assert_allclose(np.load(tmp_path / f"y{i}.npy"), expected.predict(x, verbose=0))


def test_run_folder_brings_its_normalization_and_classes(tmp_path, tiny):
    tiny.save(str(tmp_path / "model.keras"))
    info = {"mean": [0.13], "std": [0.31], "image_shape": [8, 8, 1], "class_names": list("abc")}
    (tmp_path / "data_info.json").write_text(json.dumps(info))
    model = create_model("_tiny", input_shape=(8, 8, 3))
    prep = load_weights(model, str(tmp_path))
    assert (prep.mean, prep.std, prep.input_size) == ((0.13,), (0.31,), (8, 8))
    assert prep.class_names == ("a", "b", "c") and model.pretrained_preprocessing is prep


def test_other_classes_keep_the_backbone_and_warn(tmp_path):
    sd = timm_state_dict("resnet18", classes=7, layers=SMALL)
    path = _write(tmp_path, sd)
    with pytest.warns(UserWarning, match="7 classes and the model 3"):
        model = create_model("resnet18", stage_depths=SMALL, weights=path, classes=3)
    kernel = model.get_layer("stage4_block1_conv2").kernel.numpy()
    np.testing.assert_array_equal(kernel, sd["layer4.0.conv2.weight"].transpose(2, 3, 1, 0))
    headless = create_model("resnet18", stage_depths=SMALL, weights=path, include_top=False)
    assert headless.output_shape == (None, None, None, 512)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("other_arch", "missing tensor"),
        ("extra", "extra tensor.*<torch:aux.proj>.*extra tensor.*'stage9_block1_conv1'"),
        ("shape", "shape mismatch for 'stage2_block1_conv1'"),
        ("truncated", "not a readable .safetensors file"),
    ],
)
def test_bad_checkpoints_raise_and_leave_the_model_untouched(tmp_path, damage, message):
    sd = timm_state_dict("resnet18", classes=10, layers=SMALL)
    if damage == "extra":
        sd["layer9.0.conv1.weight"] = np.zeros((8, 8, 3, 3), "float32")
        sd["aux.proj.weight"] = np.zeros((8, 8), "float32")
    elif damage == "shape":
        sd["layer2.0.conv1.weight"] = np.zeros((128, 64, 1, 1), "float32")
    path = _write(tmp_path, sd)
    if damage == "truncated":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
    depths = (2, 1, 1, 1) if damage == "other_arch" else SMALL
    model = create_model("resnet18", stage_depths=depths, classes=10)
    before = _weights(model)
    with pytest.raises(ValueError, match=message):
        load_weights(model, path)
    _assert_untouched(model, before)


def test_corrupt_keras_file_raises(tmp_path, tiny):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip file")
    before = _weights(tiny)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_weights(tiny, str(path))
    _assert_untouched(tiny, before)


def test_pytorch_files_need_torch(tmp_path, tiny):
    try:
        import torch  # noqa: F401

        pytest.skip("torch is installed: the message for a missing torch cannot show")
    except ImportError:
        pass
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"\x80")
    with pytest.raises(ImportError, match=r"keras-resnet-toolkit\[torch\]"):
        load_weights(tiny, str(path))


def test_bad_sources_are_named():
    with pytest.raises(ValueError, match="Received: weights='model.onnx'"):
        source_kind("model.onnx")
    with pytest.raises(TypeError, match="Received: weights=int"):
        source_kind(3)
    with pytest.raises(ValueError, match="file not found"):
        create_model("_tiny", weights="/nonexistent/model.safetensors")
    with pytest.raises(ValueError, match="load into the \\*_keras variants"):
        create_model("_tiny", weights="imagenet")
    assert Preprocessing(mean=(0.5,)).to_dict()["mean"] == [0.5]
