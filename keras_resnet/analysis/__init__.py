"""Model analysis: parameter/MAC tables, gradient norms and lesion studies."""

from keras_resnet.analysis.gradients import GradientNormHistory, gradient_norms
from keras_resnet.analysis.lesion import delete_blocks, lesion_curve, lesion_study, list_blocks
from keras_resnet.analysis.tables import (
    count_flops,
    format_table,
    model_table,
    published_params,
    with_input_shape,
    zoo_table,
)

__all__ = [
    "GradientNormHistory",
    "count_flops",
    "delete_blocks",
    "format_table",
    "gradient_norms",
    "lesion_curve",
    "lesion_study",
    "list_blocks",
    "model_table",
    "published_params",
    "with_input_shape",
    "zoo_table",
]


def __getattr__(name: str):
    if name == "PUBLISHED_PARAMS":  # read from the registry on use
        return published_params()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
