"""Training: recipes, LR schedules, callbacks, precision, distribution and ``train()``."""

from keras_resnet.training.auto_choice import resolve_jit_compile, resolve_precision
from keras_resnet.training.callbacks import (
    LearningRateLogger,
    NonFiniteLossError,
    StopOnNaN,
    make_callbacks,
    plot_history,
    read_history,
)
from keras_resnet.training.config import (
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STRATEGIES,
    TrainConfig,
    default_recipe,
    get_recipe,
    list_recipes,
    load_config_file,
)
from keras_resnet.training.distribute import check_batch_size, get_strategy
from keras_resnet.training.distributed_loop import evaluate_distributed, fit_distributed, is_chief
from keras_resnet.training.evaluation import evaluate
from keras_resnet.training.factories import compile_model, make_loss, make_metrics, make_optimizer
from keras_resnet.training.fitting import evaluate_model, fit_model
from keras_resnet.training.precision import precision_scope
from keras_resnet.training.run import TrainResult, train
from keras_resnet.training.rundir import RunDir, RunFolderBusyError
from keras_resnet.training.schedules import make_schedule
from keras_resnet.training.summary import format_summary

__all__ = [
    "LearningRateLogger",
    "NonFiniteLossError",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "STRATEGIES",
    "StopOnNaN",
    "TrainConfig",
    "RunDir",
    "RunFolderBusyError",
    "TrainResult",
    "check_batch_size",
    "compile_model",
    "default_recipe",
    "evaluate",
    "evaluate_distributed",
    "evaluate_model",
    "fit_distributed",
    "fit_model",
    "format_summary",
    "get_recipe",
    "get_strategy",
    "is_chief",
    "list_recipes",
    "load_config_file",
    "make_callbacks",
    "make_loss",
    "make_metrics",
    "make_optimizer",
    "make_schedule",
    "plot_history",
    "precision_scope",
    "read_history",
    "resolve_jit_compile",
    "resolve_precision",
    "train",
]
