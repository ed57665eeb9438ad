"""The shared checks (keras_resnet.utils.checks), DataConfig and the strict TrainConfig types."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from keras_resnet.data import DataConfig, get_datasets
from keras_resnet.training import TrainConfig, get_recipe, load_config_file
from keras_resnet.utils import checks

# ------------------------------------------------------------------------------ checks


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: checks.check_int("epochs", True), TypeError, "`epochs` must be an int"),
        (lambda: checks.check_int("epochs", 2.0), TypeError, "Received: epochs=2.0"),
        (lambda: checks.check_int("epochs", "3"), TypeError, "Received: epochs='3'"),
        (lambda: checks.check_int("epochs", 0, min_value=1), ValueError, ">= 1. Received"),
        (lambda: checks.check_float("lr", True), TypeError, "Received: lr=True"),
        (lambda: checks.check_float("lr", float("nan")), ValueError, "finite"),
        (lambda: checks.check_float("lr", "0.1"), TypeError, "Received: lr='0.1'"),
        (lambda: checks.check_rate("p", 1.0), ValueError, r"in \[0, 1\)"),
        (lambda: checks.check_rate("p", 0, exclude_zero=True), ValueError, r"in \(0, 1\)"),
        (lambda: checks.check_bool("use_ema", "false"), TypeError, "use_ema='false'"),
        (lambda: checks.check_bool("use_ema", 0), TypeError, "True or False"),
        (lambda: checks.check_choice("jit", 1, (True, False, "auto")), ValueError, "jit=1"),
        (lambda: checks.check_choice("opt", "adamm", ("sgd", "adamw")), ValueError, "'adamw'\\?"),
        (lambda: checks.check_str("dataset", ""), ValueError, "non-empty"),
        (lambda: checks.check_path("output", ""), ValueError, "output=''"),
        (lambda: checks.check_path("output", 3), TypeError, "output=3"),
        (lambda: checks.check_path("f", "/no/such", exists="file"), FileNotFoundError, "f="),
        (lambda: checks.check_floats("decay_at", 0.5), TypeError, "decay_at=0.5"),
        (lambda: checks.check_floats("mean", [0.1, "x"]), TypeError, "mean="),
        (lambda: checks.check_fields("Cfg", ["epochz"], ["epochs"]), TypeError, "'epochs'\\?"),
    ],
)
def test_checks_refuse_with_the_standard_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_checks_return_normalized_values():
    assert checks.check_int("n", np.int64(3)) == 3 and type(checks.check_int("n", 3)) is int
    assert checks.check_int("seed", None, allow_none=True) is None
    assert checks.check_float("lr", 1) == 1.0 and type(checks.check_float("lr", 1)) is float
    assert checks.check_rate("p", 1.0, include_one=True) == 1.0
    assert checks.check_choice("jit", True, (True, False, "auto")) is True
    assert checks.check_floats("decay_at", [0.5, 0.75]) == (0.5, 0.75)
    assert str(checks.check_path("p", "a/b")) == "a/b"


# -------------------------------------------------------------------------- DataConfig


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"batch_size": True}, TypeError, "batch_size=True"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
        ({"one_hot": "false"}, TypeError, "one_hot='false'"),
        ({"drop_remainder": 1}, TypeError, "drop_remainder=1"),
        ({"download": "no"}, TypeError, "download='no'"),
        ({"seed": 1.5}, TypeError, "seed=1.5"),
        ({"image_size": (8,)}, TypeError, "image_size"),
        ({"image_size": True}, TypeError, "image_size"),
        ({"image_size": 0}, ValueError, "image_size=0"),
        ({"validation_fraction": True}, TypeError, "validation_fraction=True"),
        ({"augment": "heavy"}, ValueError, "augment='heavy'"),
        ({"channels": 2}, ValueError, "channels=2"),
        ({"cache": ""}, ValueError, "cache=''"),
        ({"cache": 3}, TypeError, "cache=3"),
        ({"mean": (0.5,)}, ValueError, "both `mean` and `std`"),
        ({"mean": (0.5,), "std": (float("inf"),)}, ValueError, "std="),
        ({"mixup": -1}, ValueError, "mixup=-1"),
        ({"mixup": "strong"}, ValueError, "mixup='strong'"),
        ({"shuffle_buffer": 0}, ValueError, "shuffle_buffer=0"),
        ({"train_split": ""}, ValueError, "train_split=''"),
        ({"dataset": ""}, ValueError, "dataset=''"),
    ],
)
def test_data_config_refuses_bad_fields(fields, error, message):
    with pytest.raises(error, match=message):
        DataConfig(**fields)


def test_data_config_round_trip_replace_and_args():
    cfg = DataConfig("cifar10", batch_size=64, image_size=[16, 24], mixup=0.2, mean=[0.5], std=[1])
    assert cfg.image_size == (16, 24) and cfg.mean == (0.5,) and cfg.std == (1.0,)
    assert cfg.mixes and not DataConfig().mixes
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(TypeError, match="colour"):
        DataConfig.from_dict({"colour": True})
    with pytest.raises(TypeError, match="batch_sise.*did you mean 'batch_size'"):
        cfg.replace(batch_sise=3)
    with pytest.raises(TypeError, match="JSON"):
        DataConfig(tfds_read_config=object()).to_dict()
    args = argparse.Namespace(dataset="digits", seed=3, data_dir=None, epochs=2, batch_size=None)
    assert DataConfig.from_args(args, batch_size=8) == DataConfig("digits", batch_size=8, seed=3)
    with pytest.raises(TypeError, match="epochs"):
        DataConfig.from_args(args, epochs=3)


def test_get_datasets_takes_a_data_config_and_refuses_foreign_options():
    import keras_resnet

    assert keras_resnet.DataConfig is DataConfig
    cfg = DataConfig("digits", batch_size=16, seed=0, validation_fraction=0.0)
    ds = get_datasets(cfg)
    assert next(iter(ds.train))[0].shape == (16, 8, 8, 1) and ds.validation is None
    # the keyword form builds the same config
    keywords = get_datasets("digits", batch_size=16, seed=0, validation_fraction=0.0)
    assert keywords.info == ds.info
    assert get_datasets(cfg, batch_size=8).info.num_examples == ds.info.num_examples
    with pytest.raises(TypeError, match="Unknown option"):
        get_datasets("digits", batch_size=8, colour=True)
    with pytest.raises(ValueError, match="TFDS data sets only.*test_split='train'"):
        get_datasets("digits", batch_size=8, test_split="train")
    with pytest.raises(TypeError, match="dataset=3"):
        get_datasets(3, batch_size=8)


# ------------------------------------------------------------------- TrainConfig types


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"use_ema": "false"}, TypeError, "use_ema='false'"),
        ({"nesterov": 1}, TypeError, "nesterov=1"),
        ({"tensorboard": "yes"}, TypeError, "tensorboard='yes'"),
        ({"scale_lr_with_batch": None}, TypeError, "scale_lr_with_batch=None"),
        ({"learning_rate": True}, TypeError, "learning_rate=True"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate='0.1'"),
        ({"epochs": 2.0}, TypeError, "epochs=2.0"),
        ({"epochs": True}, TypeError, "epochs=True"),
        ({"batch_size": "64"}, TypeError, "batch_size='64'"),
        ({"decay_at": 0.5}, TypeError, "decay_at=0.5"),
        ({"decay_at": ["a"]}, TypeError, "decay_at="),
        ({"ema_momentum": "high"}, TypeError, "ema_momentum='high'"),
        ({"ema_momentum": 1.0}, ValueError, "ema_momentum=1.0"),
        ({"momentum": False}, TypeError, "momentum=False"),
        ({"clipnorm": 0}, ValueError, "clipnorm=0"),
        ({"jit_compile": 1}, ValueError, "jit_compile=1"),
        ({"early_stopping_patience": -1}, ValueError, "early_stopping_patience=-1"),
        ({"early_stopping_patience": "3"}, TypeError, "early_stopping_patience='3'"),
        ({"augment": "heavy"}, ValueError, "augment='heavy'"),
        ({"warmup_epochs": "1"}, TypeError, "warmup_epochs='1'"),
        ({"seed": True}, TypeError, "seed=True"),
        ({"image_size": [16, 16, 1]}, TypeError, "image_size=\\[16, 16, 1\\]"),
        ({"image_size": 0}, ValueError, "image_size=0"),
    ],
)
def test_train_config_types_are_strict(fields, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**fields)
    with pytest.raises(error, match=message):
        TrainConfig.from_dict(json.loads(json.dumps(fields)))


def test_train_config_normalizes_numbers_and_builds_the_data_config():
    cfg = TrainConfig(learning_rate=1, decay_at=[0.5, 0.75], seed=np.int64(4))
    assert type(cfg.learning_rate) is float and cfg.decay_at == (0.5, 0.75) and cfg.seed == 4
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    data = get_recipe("digits").data_config("digits", cache=False)
    assert (data.batch_size, data.augment, data.validation_fraction, data.seed) == (
        64,
        "mnist",
        0.0,
        0,
    )
    assert data.one_hot and data.cache is False
    base = DataConfig("digits", batch_size=8, image_size=16)
    assert get_recipe("fast").data_config(base).image_size == (16, 16)
    with pytest.raises(ValueError, match="batch_size.*TrainConfig"):
        get_recipe("fast").data_config("digits", batch_size=8)
    # the recipe's training resolution is the data's; a data option cannot contradict it
    assert data.image_size == (16, 16) and get_recipe("fast").image_size is None
    assert get_recipe("fast", image_size=[12, 10]).data_config(base).image_size == (12, 10)
    assert get_recipe("fast").data_config("digits", image_size=12).image_size == (12, 12)
    with pytest.raises(ValueError, match="image_size.*TrainConfig.*image_size=12"):
        get_recipe("digits").data_config("digits", image_size=12)


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"recipe": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.json.*not UTF-8"):
        load_config_file(path)
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json.*JSON object"):
        load_config_file(path)
