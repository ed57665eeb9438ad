"""The input and head of every builder (ResNet, DenseNet): checks, input, pooling, classifier.

Arguments follow ``keras.applications`` (``include_top``, ``input_shape``,
``input_tensor``, ``pooling``, ``classes``, ``classifier_activation``), documented
once in :data:`HEAD_ARGS`; :func:`with_weights` loads pretrained weights into a
built model.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from keras_resnet.layers import SpatialPyramidPooling
from keras_resnet.models.naming import PREDICTIONS
from keras_resnet.utils.checks import check_bool, check_choice, check_int, check_rate

POOLINGS = (None, "avg", "max", "spp")
# Spatial pyramid pooling grids (He et al. 2014): 1x1, 2x2 and 4x4 bins.
SPP_LEVELS = (1, 2, 4)


def check_head(
    include_top: bool,
    input_shape: Any,
    pooling: str | None,
    classes: int,
    classifier_activation: Any,
    head_dropout: float,
) -> None:
    """Check the input and head arguments of a builder (``ValueError`` / ``TypeError``).

    Example:
        >>> check_head(True, (32, 32, 3), "avg", 10, "softmax", 0.0)
        >>> check_head(True, (32, 32), "avg", 10, "softmax", 0.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `input_shape` must have rank 3 ...
    """
    check_bool("include_top", include_top)
    check_choice("pooling", pooling, POOLINGS)
    if include_top:
        check_int("classes", classes, min_value=1)
    if isinstance(classifier_activation, str):
        try:
            keras.activations.get(classifier_activation)
        except ValueError as err:
            raise ValueError(
                "`classifier_activation` is not a Keras activation. "
                f"Received: classifier_activation={classifier_activation!r}"
            ) from err
    elif classifier_activation is not None and not callable(classifier_activation):
        raise TypeError(
            "`classifier_activation` must be None, a name such as 'softmax', or a callable. "
            f"Received: classifier_activation={classifier_activation!r}"
        )
    check_rate("head_dropout", head_dropout)
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                "`input_shape` must have rank 3 (height, width, channels), channels last. "
                f"Received: input_shape={input_shape!r}"
            )
        if not isinstance(shape[-1], int) or shape[-1] < 1:
            raise ValueError(
                "`input_shape` needs a known positive channel count. "
                f"Received: input_shape={input_shape!r}"
            )
        if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape[:2]):
            raise ValueError(
                "`input_shape` spatial sizes must be positive integers or None. "
                f"Received: input_shape={input_shape!r}"
            )


def _pool(x, pooling: str):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return SpatialPyramidPooling(SPP_LEVELS, name="spp")(x)


# The input and head arguments of every builder (ResNet, DenseNet), documented once.
HEAD_ARGS = """include_top: Add the classifier (pooling + ``Dense(classes)``).
        input_shape: ``(height, width, channels)``; spatial sizes may be ``None``.
            Defaults to ``(None, None, 3)``.
        input_tensor: Optional Keras tensor to use as the model input.
        pooling: ``None``, ``"avg"``, ``"max"`` or ``"spp"`` (spatial pyramid over
            1x1, 2x2, 4x4 grids). With ``include_top`` it defaults to ``"avg"``;
            without, ``None`` returns the last feature map.
        classes: Number of classes of the classifier.
        classifier_activation: Activation of the classifier (``None`` for logits);
            it always computes in float32, also under mixed-precision policies.
        head_dropout: Dropout rate before the classifier.
        name: Model name."""


def with_weights(model: keras.Model, weights: str | None) -> keras.Model:
    """``model`` after loading ``weights`` into it, all or nothing (``None``: as built).

    Example:
        >>> import os, tempfile
        >>> arch = dict(block="basic", stage_depths=(1,), stage_widths=(4,), stem="cifar",
        ...             stem_width=4, input_shape=(8, 8, 3), classes=2)
        >>> from keras_resnet.models.resnet.builder import ResNet
        >>> trained = ResNet(**arch)
        >>> path = os.path.join(tempfile.mkdtemp(), "trained.keras")
        >>> trained.save(path)
        >>> fresh = with_weights(ResNet(**arch), path)
        >>> all(bool((a == b).all()) for a, b in zip(fresh.get_weights(), trained.get_weights()))
        True
    """
    if weights is not None:
        from keras_resnet.weights import load_weights  # weights reads files: import on use

        load_weights(model, weights)
    return model


def model_inputs(
    input_shape: Any,
    input_tensor: Any,
    total_stride: int,
    include_top: bool,
    pooling: str | None,
    classes: int,
) -> tuple[Any, Any]:
    """The model input and the tensor to build on, checked against ``total_stride``.

    Example:
        >>> inputs, x = model_inputs((32, 32, 3), None, 8, True, None, 10)
        >>> tuple(x.shape)
        (None, 32, 32, 3)
    """
    if input_tensor is None:
        x = inputs = keras.Input(shape=tuple(input_shape) if input_shape else (None, None, 3))
    else:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise TypeError(
                "`input_tensor` must be a Keras tensor (e.g. from keras.Input). "
                f"Received: input_tensor={type(input_tensor).__name__}"
            )
        inputs = keras.utils.get_source_inputs(input_tensor)
        x = input_tensor
        check_head(include_top, tuple(x.shape[1:]), pooling, classes, None, 0.0)
    for d in x.shape[1:3]:
        if d is not None and d < total_stride:
            raise ValueError(
                f"Input of {x.shape[1]}x{x.shape[2]} is too small: this network downsamples "
                f"by {total_stride}, so height and width must be at least "
                f"{total_stride}. Received: input_shape={tuple(x.shape[1:])}"
            )
    return inputs, x


def head(
    x: Any,
    include_top: bool,
    pooling: str | None,
    classes: int,
    classifier_activation: Any,
    head_dropout: float,
) -> Any:
    """Pooling and the classifier, whose output is float32 under mixed precision.

    Example:
        >>> y = head(keras.Input((4, 4, 8)), True, "avg", 3, "softmax", 0.0)
        >>> tuple(y.shape), y.dtype
        ((None, 3), 'float32')
    """
    if include_top:
        x = _pool(x, pooling or "avg")
        if head_dropout:
            x = layers.Dropout(head_dropout, name="head_dropout")(x)
        x = layers.Dense(classes, name=PREDICTIONS)(x)
        # float32 output under mixed precision (numerically safe softmax and losses).
        x = layers.Activation(classifier_activation or "linear", dtype="float32", name="probs")(x)
    elif pooling:
        x = _pool(x, pooling)
    return x
