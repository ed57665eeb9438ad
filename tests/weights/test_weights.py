"""keras.applications weight equivalence of the *_keras variants."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_resnet import create_model, from_keras_applications, load_keras_applications_weights
from keras_resnet.weights import keras_applications_variants

KERAS_APPLICATIONS = keras_applications_variants()


def _randomize_batch_norm(model: keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )


def _params(app):
    slow = "101" in app or "152" in app
    return pytest.param(app, marks=[pytest.mark.slow] if slow else [])


# DenseNet copies are tested in tests/models/test_densenet.py (their layer names differ)
@pytest.mark.parametrize(
    "application", [_params(a) for a in KERAS_APPLICATIONS if not a.startswith("DenseNet")]
)
def test_copied_weights_give_the_same_output(application):
    rng = np.random.default_rng(0)
    shape = (32, 32, 3)
    source = getattr(keras.applications, application)(
        weights=None, input_shape=shape, classifier_activation=None
    )
    _randomize_batch_norm(source, rng)
    model = create_model(
        KERAS_APPLICATIONS[application], input_shape=shape, classifier_activation=None
    )
    load_keras_applications_weights(model, source)
    x = rng.uniform(-1, 1, size=(2, *shape)).astype("float32")
    expected = source.predict(x, verbose=0)
    got = model.predict(x, verbose=0)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    # BN moving statistics (not trainable) are copied too
    ours = model.get_layer("stage3_block2_bn2").moving_variance.numpy()
    theirs = source.get_layer("conv4_block2_2_bn").moving_variance.numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert sum(int(np.prod(w.shape)) for w in model.weights) == source.count_params()


def test_from_keras_applications_builds_matching_variant():
    model = from_keras_applications(
        "ResNet50V2", weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    assert model.name == "resnet50v2_keras"
    assert model.output_shape == (None, 1, 1, 2048)


def test_mismatched_models_are_refused_without_partial_copy():
    source = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    model = create_model("resnet50", input_shape=(32, 32, 3))  # v1.5 layout, no biases
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match="Shape mismatch|no layer"):
        load_keras_applications_weights(model, source)
    for a, w in zip(before, model.weights):
        np.testing.assert_array_equal(a, w.numpy())


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: application='ResNet18'"):
        from_keras_applications("ResNet18", weights=None)
    with pytest.raises(TypeError, match="`source` must be a keras.Model"):
        load_keras_applications_weights(create_model("_tiny"), "resnet50.h5")
