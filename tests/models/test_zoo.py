"""Every registered name builds with its exact parameter count, trains one step, saves and
loads in safe mode (a listed model that cannot be built is a broken promise).

The default suite covers every name but the largest graphs (LARGEST: tens of seconds
each on 2 cores, in Keras' graph construction, which does not depend on the input
size); ``python -m pytest -m slow tests/models/test_zoo.py`` covers those, and is part of
the release checks (docs/models.md).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from model_checks import check_builds_and_trains, check_keras_round_trip, trainable_count
from param_reference import densenet_reference_count, reference_count

from keras_resnet.models.factory import create_model
from keras_resnet.models.registry import get_record, records

NAMES = [r.name for r in records(include_private=True)]
# The largest graphs run with -m slow (build + step + save + load: 13-70 s each with
# 2 pytest-xdist workers on 2 cores, in Keras' graph construction, which does not
# depend on the input size): the 152- to 1202-layer nets, the DenseNets from 201
# layers up and the widest 101-layer nets. Every block kind, stem, shortcut and family
# stays in the default suite through its smaller members (resnet101, the 164-layer
# nets, DenseNet-161/169).
DEEP = ("152", "1001", "1202")
LARGEST = {n for n in NAMES if any(d in n for d in DEEP)}
LARGEST |= {"densenet201", "densenet264", "densenet_bc190_k40", "densenet_bc250_k24"}
LARGEST |= {"wide_resnet101_2", "resnext101_64x4d"}  # the widest 101-layer nets
# Paper figures in millions (rounded in the papers); the exact values come from the
# independent summation in param_reference.py.
PAPER_MILLIONS = {
    "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85, "resnet110": 1.7,
    "resnet1202": 19.4, "preact_resnet164": 1.7,
    "resnext29_8x64d": 34.4, "resnext29_16x64d": 68.1, "wrn16_8": 11.0, "wrn40_4": 8.9,
}  # fmt: skip
# He et al. 2016 count conv and FC weights only (no BN affine parameters): ResNet-1001 has
# 10,178,490 conv/FC weights ("10.2M") and 10,327,706 trainable parameters in all.
PAPER_MILLIONS_CONV_FC = {"preact_resnet1001": 10.2}
SIZE = 32  # every net's total stride is <= 32: the smallest input all of them take


def _reference(name: str) -> int:
    record = get_record(name)
    spec = {**record.arch, "classes": record.classes}
    if record.family == "densenet":
        return densenet_reference_count(spec)
    return reference_count(spec)


def _check_published(name: str, model: keras.Model) -> None:
    """The count against the registry, the papers and keras.applications."""
    record = get_record(name)
    count = trainable_count(model)
    assert count == _reference(name)
    if record.params is not None:
        assert count == record.params, record.params_source
    if name in PAPER_MILLIONS:  # papers round or truncate to the last digit shown
        tolerance = 0.1 if PAPER_MILLIONS[name] >= 1 else 0.01
        assert abs(count / 1e6 - PAPER_MILLIONS[name]) < tolerance
    if name in PAPER_MILLIONS_CONV_FC:
        kinds = (keras.layers.Conv2D, keras.layers.Dense)
        conv_fc = sum(
            int(np.prod(w.shape))
            for layer in model.layers
            if isinstance(layer, kinds)
            for w in layer.trainable_weights
        )
        assert abs(conv_fc / 1e6 - PAPER_MILLIONS_CONV_FC[name]) < 0.05
    if "keras_applications" in record.weights:
        builder = getattr(keras.applications, record.weights["keras_applications"])
        ref = builder(weights=None, input_shape=(SIZE, SIZE, 3))
        assert count == trainable_count(ref)
        assert model.count_params() == ref.count_params()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in LARGEST else []) for n in NAMES]
)
def test_listed_model_builds_trains_and_loads_in_safe_mode(name, tmp_path):
    record = get_record(name)
    shape = (SIZE, SIZE, 3)
    model = create_model(name, input_shape=shape)
    assert model.name == name.lstrip("_")
    assert model.output_shape == (None, record.classes)
    _check_published(name, model)
    x = check_builds_and_trains(model, shape, record.classes)
    check_keras_round_trip(model, x, tmp_path)
    keras.backend.clear_session()  # free the graph before the next name


def test_paper_table_names_exist():
    assert set(PAPER_MILLIONS) | set(PAPER_MILLIONS_CONV_FC) <= set(NAMES)
    assert LARGEST <= set(NAMES)
