"""keras_resnet: residual networks for Keras 3.

The model code (blocks, builder, zoo) imports only ``keras`` and works on every
Keras backend. Data, training, tuning and export need TensorFlow; their names are
loaded lazily on first use, so ``import keras_resnet`` stays light and backend-neutral.
Importing the package registers every serializable object the toolkit saves (its
layers, learning-rate schedules and optimizer), so ``keras.saving.load_model(path,
safe_mode=True)`` loads the models it wrote, in any process; it changes nothing else
in the process. The deepest networks need a higher recursion limit, which building
them or :func:`load_keras_model` sets (:mod:`keras_resnet.models.depth`).

Example:
    >>> import keras_resnet
    >>> model = keras_resnet.create_model("resnet20", input_shape=(32, 32, 3))
    >>> model.count_params() > 0
    True
"""

from __future__ import annotations

import importlib
import sys

from keras_resnet._startup import cli_startup

# Only in the process that is `python -m keras_resnet` / `keras-resnet` (sys.orig_argv):
# load TensorFlow quietly, before Keras. Any other program that imports us is untouched.
cli_startup(sys.orig_argv, sys.argv)

# Registration happens when these modules are imported (Keras-only, no TensorFlow).
from keras_resnet import layers as _layers  # noqa: F401, E402
from keras_resnet import optimizers as _optimizers  # noqa: F401, E402

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    # models and zoo
    "ResNet": "keras_resnet.models.resnet.builder",
    "ResNetConfig": "keras_resnet.models.resnet.config",
    "DenseNet": "keras_resnet.models.densenet.builder",
    "DenseNetConfig": "keras_resnet.models.densenet.config",
    "create_model": "keras_resnet.models.factory",
    "list_models": "keras_resnet.models.registry",
    "get_record": "keras_resnet.models.registry",
    "register": "keras_resnet.models.registry",
    "ModelRecord": "keras_resnet.models.registry",
    "model_spec": "keras_resnet.models.resnet.zoo",
    "load_keras_applications_weights": "keras_resnet.weights",
    "from_keras_applications": "keras_resnet.models.factory",
    "model_table": "keras_resnet.analysis.tables",
    "count_flops": "keras_resnet.analysis.tables",
    # analysis
    "zoo_table": "keras_resnet.analysis.tables",
    "gradient_norms": "keras_resnet.analysis.gradients",
    "GradientNormHistory": "keras_resnet.analysis.gradients",
    "PUBLISHED_PARAMS": "keras_resnet.analysis",
    "published_params": "keras_resnet.analysis.tables",
    "list_blocks": "keras_resnet.analysis.lesion",
    "delete_blocks": "keras_resnet.analysis.lesion",
    "lesion_study": "keras_resnet.analysis.lesion",
    "lesion_curve": "keras_resnet.analysis.lesion",
    # training
    "TrainConfig": "keras_resnet.training",
    "get_recipe": "keras_resnet.training",
    "list_recipes": "keras_resnet.training",
    "default_recipe": "keras_resnet.training",
    "train": "keras_resnet.training",
    "evaluate": "keras_resnet.training",
    "make_optimizer": "keras_resnet.training",
    "make_schedule": "keras_resnet.training",
    "make_callbacks": "keras_resnet.training",
    "make_loss": "keras_resnet.training",
    "make_metrics": "keras_resnet.training",
    "resolve_precision": "keras_resnet.training",
    "get_strategy": "keras_resnet.training",
    # tuning
    "ResNetHyperModel": "keras_resnet.tuning",
    "DenseNetHyperModel": "keras_resnet.tuning.densenet",
    "make_tuner": "keras_resnet.tuning",
    "trial_results": "keras_resnet.tuning",
    "tune": "keras_resnet.tuning",
    # data
    "DataConfig": "keras_resnet.data",
    "DatasetInfo": "keras_resnet.data",
    "Datasets": "keras_resnet.data",
    "get_datasets": "keras_resnet.data",
    "from_arrays": "keras_resnet.data",
    "list_datasets": "keras_resnet.data",
    # export
    "export_run": "keras_resnet.export.saved_model",
    "export_saved_model": "keras_resnet.export.saved_model",
    "save_keras_model": "keras_resnet.saving",
    "load_keras_model": "keras_resnet.saving",
    "export_tflite": "keras_resnet.export.tflite",
    "normalize_images": "keras_resnet.export.saved_model",
    # serving (running exported models)
    "run_tflite": "keras_resnet.export.serving",
    "load_run_preprocessing": "keras_resnet.export.serving",
    "predict_images": "keras_resnet.export.serving",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_resnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
