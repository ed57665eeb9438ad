"""keras_resnet: residual networks for Keras 3.

The model code (blocks, builder, zoo) imports only ``keras`` and works on every
Keras backend. Data, training, tuning and export need TensorFlow; their names are
loaded lazily on first use, so ``import keras_resnet`` stays light and backend-neutral.
Importing the package registers every serializable object the toolkit saves (its
layers, learning-rate schedules and optimizer), so ``keras.saving.load_model(path,
safe_mode=True)`` loads any model it wrote, in any process.

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

cli_startup(sys.argv)  # `python -m keras_resnet`: load TensorFlow quietly, before Keras

# Registration happens when these modules are imported (Keras-only, no TensorFlow).
from keras_resnet import layers as _layers  # noqa: F401, E402
from keras_resnet import lr_schedules as _lr_schedules  # noqa: F401, E402
from keras_resnet import optimizers as _optimizers  # noqa: F401, E402
from keras_resnet.graph import ensure_recursion_limit as _ensure_recursion_limit  # noqa: E402

# The deepest networks need more Python frames to build and load (keras_resnet.graph).
_ensure_recursion_limit()

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    # models and zoo
    "ResNet": "keras_resnet.models",
    "ResNetConfig": "keras_resnet.config",
    "DenseNet": "keras_resnet.densenet",
    "DenseNetConfig": "keras_resnet.densenet",
    "create_model": "keras_resnet.registry",
    "list_models": "keras_resnet.registry",
    "get_record": "keras_resnet.registry",
    "register": "keras_resnet.registry",
    "ModelRecord": "keras_resnet.registry",
    "model_spec": "keras_resnet.zoo",
    "load_keras_applications_weights": "keras_resnet.weights",
    "from_keras_applications": "keras_resnet.weights",
    "model_table": "keras_resnet.analysis",
    "count_flops": "keras_resnet.analysis",
    # analysis
    "zoo_table": "keras_resnet.analysis",
    "gradient_norms": "keras_resnet.analysis",
    "GradientNormHistory": "keras_resnet.analysis",
    "PUBLISHED_PARAMS": "keras_resnet.analysis",
    "published_params": "keras_resnet.analysis",
    "list_blocks": "keras_resnet.lesion",
    "delete_blocks": "keras_resnet.lesion",
    "lesion_study": "keras_resnet.lesion",
    "lesion_curve": "keras_resnet.lesion",
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
    "DenseNetHyperModel": "keras_resnet.densenet_tuning",
    "make_tuner": "keras_resnet.tuning",
    "trial_results": "keras_resnet.tuning",
    # data
    "DataConfig": "keras_resnet.data",
    "DatasetInfo": "keras_resnet.data",
    "Datasets": "keras_resnet.data",
    "get_datasets": "keras_resnet.data",
    "from_arrays": "keras_resnet.data",
    "list_datasets": "keras_resnet.data",
    # export
    "export_saved_model": "keras_resnet.export",
    "save_keras_model": "keras_resnet.export",
    "load_keras_model": "keras_resnet.export",
    "export_tflite": "keras_resnet.export",
    "normalize_images": "keras_resnet.export",
    # serving (running exported models)
    "run_tflite": "keras_resnet.serving",
    "load_run_preprocessing": "keras_resnet.serving",
    "predict_images": "keras_resnet.serving",
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
