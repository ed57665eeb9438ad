"""Hyperparameter search over the ResNet family with KerasTuner.

:class:`ResNetHyperModel` (and ``DenseNetHyperModel``, both on :class:`ZooHyperModel`)
is a ``keras_tuner.HyperModel`` whose ``build(hp)`` maps
hyperparameters onto :func:`keras_resnet.create_model` and whose ``fit(hp, ...)``
trains with the recipe's optimizer, loss and callbacks; :func:`make_tuner` builds any
of KerasTuner's three tuners; :func:`trial_results` lists the trials, best first;
:func:`tune` runs a whole search and retrains the best trial.
"""

from keras_resnet.tuning.base import ZooHyperModel
from keras_resnet.tuning.resnet import ResNetHyperModel
from keras_resnet.tuning.run import tune
from keras_resnet.tuning.search import TUNERS, hyperparameter_names, make_tuner, trial_results
from keras_resnet.tuning.space import COST_FACTOR, TRAINING_HPS, default_space
from keras_resnet.tuning.trial import TimeBudget

__all__ = [
    "COST_FACTOR",
    "TRAINING_HPS",
    "TUNERS",
    "ResNetHyperModel",
    "TimeBudget",
    "default_space",
    "hyperparameter_names",
    "make_tuner",
    "trial_results",
    "tune",
    "ZooHyperModel",
]
