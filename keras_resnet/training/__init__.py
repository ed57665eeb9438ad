"""Training: recipes, LR schedules, callbacks, precision, distribution and ``train()``."""

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
from keras_resnet.training.factories import make_loss, make_metrics, make_optimizer
from keras_resnet.training.precision import (
    precision_scope,
    resolve_jit_compile,
    resolve_precision,
)
from keras_resnet.training.run import (
    TrainResult,
    evaluate,
    format_summary,
    prepare_run_dir,
    train,
)
from keras_resnet.training.schedules import EpochStepDecay, WarmUp, make_schedule

__all__ = [
    "EpochStepDecay",
    "LearningRateLogger",
    "NonFiniteLossError",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "STRATEGIES",
    "StopOnNaN",
    "TrainConfig",
    "TrainResult",
    "WarmUp",
    "check_batch_size",
    "default_recipe",
    "evaluate",
    "evaluate_distributed",
    "fit_distributed",
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
    "prepare_run_dir",
    "read_history",
    "resolve_jit_compile",
    "resolve_precision",
    "train",
]
