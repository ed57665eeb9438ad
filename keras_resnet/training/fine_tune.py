"""Fine-tuning in two phases inside one ``model.fit``: one history, one resume path.

Phase 1 (``head_epochs``) trains the classifier with the backbone frozen; phase 2
unfreezes all stages or the last ``unfreeze`` stages at ``backbone_lr_scale`` times
the learning rate, with warm-up and cosine decay. BatchNormalization stays in
inference mode throughout (``trainable=False``, as the Keras transfer-learning guide
advises: its statistics came from the pretraining data and a small data set would
wreck them).

Keras cannot change a compiled model's trainable set mid-``fit``, so
:class:`FineTunePhases` flips the ``trainable`` flags at the phase boundary and
rebuilds the train function; the optimizer is built up front with every variable
that will ever train, so its state (and ``BackupAndRestore``) covers both phases and
a run killed in either phase resumes where it stopped.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from keras_resnet.optimizers import TwoPhase, WarmUp

_STAGE = re.compile(r"^stage(\d+)_")


def fine_tune_schedule(config: Any, steps_per_epoch: int) -> TwoPhase:
    """The learning rate of a fine-tuning run: constant for the head, then warm-up + cosine.

    Args:
        config: A ``TrainConfig`` with ``head_epochs > 0``.
        steps_per_epoch: Optimizer steps per epoch.

    Example:
        >>> from keras_resnet.training import get_recipe
        >>> lr = fine_tune_schedule(get_recipe("fine_tune", epochs=4, head_epochs=2), 10)
        >>> float(lr(0)) > float(lr(20)) > 0
        True
    """
    switch = config.head_epochs * steps_per_epoch
    peak = config.peak_learning_rate * config.backbone_lr_scale
    later_steps = max(1, (config.epochs - config.head_epochs) * steps_per_epoch)
    second: Any = keras.optimizers.schedules.CosineDecay(
        peak, decay_steps=later_steps, alpha=config.min_lr_fraction
    )
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup:
        second = WarmUp(second, warmup_steps=warmup)
    return TwoPhase(config.peak_learning_rate, second, switch)


def backbone_layers(model: keras.Model, unfreeze: int | str) -> tuple[list[Any], list[Any]]:
    """Split the weighted non-BN layers into (always trained, trained in phase 2).

    The head (``predictions``) is always trained. ``unfreeze="all"`` adds every other
    layer to phase 2; an integer N adds the layers of the last N stages
    (``stage{k}_...``).

    Example:
        >>> from keras_resnet import create_model
        >>> head, later = backbone_layers(create_model("_tiny"), 1)
        >>> [layer.name for layer in head], sorted({layer.name[:6] for layer in later})
        (['predictions'], ['stage2'])
    """
    weighted = [
        layer
        for layer in model.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    head = [layer for layer in weighted if layer.name == "predictions"]
    if not head:
        raise ValueError(
            f"Fine-tuning needs a classifier layer named 'predictions'; model {model.name!r} "
            "has none (build it with include_top=True)"
        )
    rest = [layer for layer in weighted if layer.name != "predictions"]
    if unfreeze == "all":
        return head, rest
    stages = sorted({int(m[1]) for layer in rest if (m := _STAGE.match(layer.name))})
    chosen = set(stages[len(stages) - unfreeze :]) if unfreeze else set()
    later = [layer for layer in rest if (m := _STAGE.match(layer.name)) and int(m[1]) in chosen]
    return head, later


class FineTunePhases(keras.callbacks.Callback):
    """Freeze the backbone for ``head_epochs``, then unfreeze the chosen stages.

    Call :meth:`prepare` after ``compile`` (it builds the optimizer for both phases).

    Args:
        head_epochs: Epochs of phase 1.
        unfreeze: ``"all"`` or the number of last stages unfrozen in phase 2.

    Example:
        >>> from keras_resnet import create_model
        >>> model = create_model("_tiny", input_shape=(8, 8, 3))
        >>> model.compile("adam", "sparse_categorical_crossentropy")
        >>> phases = FineTunePhases(head_epochs=1, unfreeze="all")
        >>> phases.prepare(model)
        >>> len(model.trainable_weights)
        2
    """

    def __init__(self, head_epochs: int, unfreeze: int | str = "all") -> None:
        super().__init__()
        self.head_epochs = head_epochs
        self.unfreeze = unfreeze
        self._phase: int | None = None

    def prepare(self, model: keras.Model) -> None:
        """Freeze BN, build the optimizer over both phases' variables, enter phase 1."""
        self._head, self._later = backbone_layers(model, self.unfreeze)
        for layer in model.layers:
            if layer.weights:
                layer.trainable = False
        for layer in self._head + self._later:
            layer.trainable = True
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for layer in self._later:
            layer.trainable = False
        self._phase = 1

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        phase = 1 if epoch < self.head_epochs else 2
        if phase != self._phase:  # also on resuming a run killed in phase 2
            for layer in self._later:
                layer.trainable = phase == 2
            self._phase = phase
            self.model.make_train_function(force=True)


def check_fine_tune_weights(model: Any, config: Any, model_kwargs: dict[str, Any]) -> None:
    """Refuse fine-tuning (``head_epochs > 0``) of a zoo-name model without weights.

    Fine-tuning freezes the backbone and its BatchNormalization statistics, so a random
    backbone would stay random. A ``keras.Model`` passed as ``model`` is not checked:
    its weights may already be loaded.

    Args:
        model: The ``model`` given to ``train()``.
        config: The ``TrainConfig`` of the run.
        model_kwargs: ``create_model`` keyword arguments (``weights`` among them).

    Example:
        >>> from keras_resnet.training import get_recipe
        >>> recipe = get_recipe("fine_tune")
        >>> check_fine_tune_weights("resnet20", recipe, {"weights": "run.keras"})  # fine
        >>> check_fine_tune_weights("resnet20", recipe, {})
        Traceback (most recent call last):
        ValueError: Fine-tuning (head_epochs > 0, recipe 'fine_tune') freezes the backbone ...
    """
    if config.head_epochs and isinstance(model, str) and model_kwargs.get("weights") is None:
        raise ValueError(
            f"Fine-tuning (head_epochs > 0, recipe {config.recipe!r}) freezes the backbone and "
            "its BatchNormalization statistics, so it needs pretrained weights: pass `weights` "
            "(--weights FILE), or train from scratch with another recipe or head_epochs=0. "
            f"Received: head_epochs={config.head_epochs}, weights=None"
        )
