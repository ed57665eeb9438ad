"""Build models by name: :func:`create_model` (a registry record's defaults, then the
caller's overrides, then pretrained weights) and :func:`from_keras_applications`."""

from __future__ import annotations

from typing import Any

import keras

from keras_resnet.models.registry import get_record
from keras_resnet.utils.checks import check_choice


def create_model(name: str, /, **overrides: Any) -> keras.Model:
    """Build the named variant: the record's defaults, then ``overrides``.

    Args:
        name: A name from :func:`list_models` (positional, so that ``name=`` in
            ``overrides`` renames the model).
        **overrides: Any argument of the record's builder (architecture fields or
            head/input arguments such as ``classes`` and ``input_shape``), and
            ``weights``: a pretrained checkpoint loaded all or nothing after building
            (see :func:`keras_resnet.weights.load_weights`).

    Returns:
        A functional ``keras.Model`` named ``name`` unless overridden.

    Example:
        >>> model = create_model("resnet20", classes=100, input_shape=(32, 32, 3))
        >>> tuple(model.output.shape)
        (None, 100)
    """
    record = get_record(name)
    weights = overrides.pop("weights", None)
    if weights is None:
        return record.builder(**dict(record.spec(), **overrides))
    from keras_resnet.weights import checkpoint_arch, load_weights  # reads files: on use

    model = record.builder(**{**record.spec(), **checkpoint_arch(weights, name), **overrides})
    load_weights(model, weights, variant=name)
    return model


def from_keras_applications(
    application: str,
    *,
    weights: str | None = "imagenet",
    include_top: bool = True,
    input_shape: tuple[int, int, int] | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """Build a keras_resnet model holding the weights of a ``keras.applications`` ResNet.

    Args:
        application: ``"ResNet50"``, ``"ResNet101"``, ``"ResNet152"``, ``"ResNet50V2"``,
            ``"ResNet101V2"``, ``"ResNet152V2"``, ``"DenseNet121"``, ``"DenseNet169"``
            or ``"DenseNet201"``.
        weights: ``"imagenet"`` (downloads the published weights; needs internet), a
            weights file path, or ``None`` (random initialization).
        include_top: Include the classifier.
        input_shape: Input shape (defaults to 224x224x3 with the top, else any size).
        classes: Classes of the classifier (1000 for ImageNet weights).
        classifier_activation: Activation of the classifier.

    Returns:
        The matching ``*_keras`` variant with the copied weights.

    Example:
        >>> model = from_keras_applications("ResNet50", weights=None, input_shape=(32, 32, 3))
        >>> model.name
        'resnet50_keras'
    """
    from keras_resnet.weights.keras_applications import (
        KERAS_DENSENET_BN,
        keras_applications_variants,
        load_keras_applications_weights,
    )

    variants = keras_applications_variants()
    check_choice("application", application, variants)
    shape = input_shape or ((224, 224, 3) if include_top else (None, None, 3))
    # The head arguments both models are built with.
    head = {
        "include_top": include_top,
        "input_shape": shape,
        "classes": classes,
        "classifier_activation": classifier_activation,
    }
    source = getattr(keras.applications, application)(weights=weights, **head)
    bn = KERAS_DENSENET_BN if application.startswith("DenseNet") else {}
    model = create_model(variants[application], **bn, **head)
    return load_keras_applications_weights(model, source)
