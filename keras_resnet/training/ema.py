"""An exponential moving average (EMA) of a model's weights that is safe for any run length.

:class:`ModelEMA` averages every float variable of the model after each optimizer
step: the trainable weights *and* the BatchNormalization moving statistics, so the
averaged network normalizes with statistics that belong to it (timm's ``ModelEmaV2``
averages the whole state dict the same way). The decay warms up as
``min(decay, (1 + step) / (10 + step))`` (``tf.train.ExponentialMovingAverage``'s
``num_updates`` rule, used by TF Model Garden and timm), so the first steps, taken
from random weights, stop counting after a few dozen updates. At the end of
training it validates the raw and the averaged weights on the same data and keeps
the better, saying which.

Keras 3 only offers the optimizer's ``use_ema``, which has none of this: a fixed
momentum (after 66 steps at 0.99 half of the average is still the first step's
weights), trainable variables only (the BN statistics stay those of the raw
weights), and an unconditional swap at the end of ``fit``, so a short run can end
with an average far worse than its raw weights.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_resnet.training.fitting import evaluate_model
from keras_resnet.training.messages import say

# Batches of the training split used for the end-of-run check when a run has no
# validation split (cached, so raw and averaged weights see the same augmented images).
TRAIN_CHECK_BATCHES = 50


def ema_decay(decay: float, step: int, *, warmup: bool = True) -> float:
    """The EMA decay used at optimizer step ``step`` (counted from 1).

    Args:
        decay: The target decay in (0, 1), e.g. ``0.99``.
        step: Optimizer steps taken so far, this one included.
        warmup: Use ``min(decay, (1 + step) / (10 + step))``; ``False``: ``decay``.

    Returns:
        The decay for this update: the average becomes
        ``decay * average + (1 - decay) * weights``.

    Example:
        >>> round(ema_decay(0.99, 1), 4), round(ema_decay(0.99, 90), 4), ema_decay(0.99, 10**6)
        (0.1818, 0.91, 0.99)
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"`decay` must be in (0, 1). Received: decay={decay!r}")
    return float(min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay)


class ModelEMA(keras.callbacks.Callback):
    """Keep an EMA of the weights and BN statistics; keep it at the end only if better.

    After each training batch the average of every float variable of the model
    (``model.weights``: kernels, biases, BN gamma / beta and moving mean / variance)
    moves towards the current value with :func:`ema_decay`. With
    ``steps_per_execution > 1`` the decay is applied once per skipped step.

    At the end of training (after callbacks listed earlier, e.g. ``EarlyStopping``
    restoring its best weights) both sets of weights are evaluated on
    ``selection_data`` and the model keeps the better one: higher accuracy (ties:
    lower loss) when ``monitor`` is an accuracy, lower loss when it is a loss. Equal
    scores keep the average. Without ``selection_data`` the raw weights are kept
    (there is nothing to check the average on). :attr:`report` then says which
    weights were kept and both scores.

    With ``state_path`` the average is written there (atomically) after every epoch
    and read back when training resumes from the same optimizer step
    (``BackupAndRestore``, listed before this callback); without a matching saved
    average it restarts from the restored weights.

    Args:
        decay: Target decay in (0, 1) (``TrainConfig.ema_momentum``).
        warmup: Warm the decay up (see :func:`ema_decay`).
        selection_data: Batched data for the end-of-run check, or ``None``.
        selection_split: Name of that data in messages and :attr:`report`
            (``"validation"`` or ``"train"``).
        monitor: ``"accuracy"`` / ``"loss"`` (a ``val_`` prefix is ignored).
        state_path: File for the saved average (``.npz``), or ``None``.
        evaluate_fn: ``fn(model, data) -> {"accuracy", "loss"}``; default
            ``model.evaluate``. Multi-worker runs pass
            :func:`~keras_resnet.training.evaluate_distributed`.
        verbose: Print which weights were kept.

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...               metrics=["accuracy"])
        >>> x, y = np.ones((8, 2), "float32"), np.zeros(8, "int32")
        >>> ema = ModelEMA(0.9, selection_data=(x, y), verbose=0)
        >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[ema])
        >>> ema.report["weights"] in ("ema", "raw"), sorted(ema.report["weights_check"])
        (True, ['ema', 'metric', 'raw', 'split'])
    """

    def __init__(
        self,
        decay: float = 0.99,
        *,
        warmup: bool = True,
        selection_data: Any = None,
        selection_split: str = "validation",
        monitor: str = "accuracy",
        state_path: str | os.PathLike | None = None,
        evaluate_fn: Callable[[keras.Model, Any], dict[str, float]] | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__()
        ema_decay(decay, 1)  # validates decay
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.selection_data = selection_data
        self.selection_split = selection_split
        self.metric = monitor[4:] if monitor.startswith("val_") else monitor
        if self.metric not in ("accuracy", "loss"):
            raise ValueError(f"`monitor` must name accuracy or loss. Received: monitor={monitor!r}")
        self.state_path = os.fspath(state_path) if state_path is not None else None
        self.evaluate_fn = evaluate_fn
        self.verbose = verbose
        self.report: dict[str, Any] = {}
        self._variables: list[Any] = []
        self._average: list[Any] = []
        self._step = 0
        self._jax: _JaxAverage | None = None

    # -- the average ------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._variables = [v for v in self.model.weights if "float" in str(v.dtype)]
        self._average = [
            keras.Variable(keras.ops.convert_to_numpy(v), trainable=False, name=f"ema_{i}")
            for i, v in enumerate(self._variables)
        ]
        self._step = self._iterations()
        self._update = self._compile_update()
        if self._step > 0:  # resumed (BackupAndRestore ran before this callback)
            self._restore_state()
        self._jax = _JaxAverage.create(self) if keras.backend.backend() == "jax" else None

    def _compile_update(self) -> Callable[[Any], None]:
        def update(keep: Any) -> None:
            for average, variable in zip(self._average, self._variables, strict=True):
                average.assign(average * keep + variable.value * (1.0 - keep))

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # One graph call per batch instead of ~2 eager ops per variable.
            return tf.function(update)
        return update

    def _iterations(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        return int(keras.ops.convert_to_numpy(optimizer.iterations)) if optimizer else 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._jax is not None:
            if self._jax.update():
                return
            self._jax.flush()  # no trainer state (not model.fit): the generic path from here
            self._jax = None
        step = self._iterations()
        if step <= self._step:
            return
        keep = ema_decay(self.decay, step, warmup=self.warmup) ** (step - self._step)
        self._step = step
        self._update(keras.ops.convert_to_tensor(keep, "float32"))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._jax is not None:
            self._jax.flush()
        if self.state_path is None:
            return
        arrays = {f"v{i}": keras.ops.convert_to_numpy(a) for i, a in enumerate(self._average)}
        os.makedirs(os.path.dirname(self.state_path) or ".", exist_ok=True)
        tmp = f"{self.state_path}.tmp.npz"
        np.savez(tmp, epochs=epoch + 1, step=self._step, paths=self._paths(), **arrays)
        os.replace(tmp, self.state_path)

    def _paths(self) -> np.ndarray:
        return np.array([v.path for v in self._variables])

    def _restore_state(self) -> None:
        # The saved average belongs to the restored weights only if it was saved at
        # the same optimizer step (a backup that fell back to an older state is not).
        saved = None
        if self.state_path is not None and os.path.isfile(self.state_path):
            with contextlib.suppress(OSError, ValueError), np.load(self.state_path) as f:
                saved = {k: f[k] for k in f.files}
        if (
            saved is None
            or int(saved["step"]) != self._step
            or list(saved["paths"]) != list(self._paths())
        ):
            if self.verbose:
                say(f"EMA: no saved average for step {self._step}; restarting it from the weights.")
            return
        for i, average in enumerate(self._average):
            average.assign(saved[f"v{i}"])

    # -- the end-of-run check ------------------------------------------------------------

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._jax is not None:
            self._jax.flush()
        if not self._average:
            return
        if self.selection_data is None:
            self.report = {"weights": "raw", "weights_check": None}
            if self.verbose:
                say("EMA: no data to check the average on; keeping the raw weights.")
            return
        raw_values = [keras.ops.convert_to_numpy(v) for v in self._variables]
        raw = self._scores()
        self._assign(self._variables, [keras.ops.convert_to_numpy(a) for a in self._average])
        ema = self._scores()
        keep_ema = self._key(ema) >= self._key(raw)
        if not keep_ema:
            self._assign(self._variables, raw_values)
        self.report = {
            "weights": "ema" if keep_ema else "raw",
            "weights_check": {
                "split": self.selection_split,
                "metric": self.metric,
                "raw": raw,
                "ema": ema,
            },
        }
        if self.verbose:
            say(self.describe())

    def describe(self) -> str:
        """One line saying which weights were kept and why (after training).

        Example:
            >>> ema = ModelEMA()
            >>> ema.report = {"weights": "raw", "weights_check": {"split": "validation",
            ...     "metric": "accuracy", "raw": {"accuracy": 0.9, "loss": 0.3},
            ...     "ema": {"accuracy": 0.5, "loss": 1.2}}}
            >>> ema.describe()
            'EMA: kept the raw weights (validation accuracy 90.00 % raw, 50.00 % averaged)'
        """
        check = self.report.get("weights_check")
        if not check:
            return f"EMA: kept the {self.report.get('weights', 'raw')} weights (not checked)"
        kept = "averaged (EMA)" if self.report["weights"] == "ema" else "raw"
        metric = check["metric"]

        def show(scores: dict[str, float]) -> str:
            value = scores[metric]
            return f"{100 * value:.2f} %" if metric == "accuracy" else f"{value:.4f}"

        return (
            f"EMA: kept the {kept} weights ({check['split']} {metric} "
            f"{show(check['raw'])} raw, {show(check['ema'])} averaged)"
        )

    def _key(self, scores: dict[str, float]) -> tuple[float, ...]:
        if self.metric == "accuracy":
            return (scores["accuracy"], -scores["loss"])
        return (-scores["loss"],)

    def _scores(self) -> dict[str, float]:
        scores = (self.evaluate_fn or evaluate_model)(self.model, self.selection_data)
        return {"accuracy": float(scores["accuracy"]), "loss": float(scores["loss"])}

    @staticmethod
    def _assign(variables: Sequence[Any], values: Sequence[Any]) -> None:
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


class _JaxAverage:
    """The average of :class:`ModelEMA` on JAX, updated from the trainer's state.

    In ``model.fit`` on JAX the weights live in the trainer's state between epochs, and
    reading ``callback.model`` copies them all back into the model (Keras' state
    sync) and out again. Done after every batch, that cost more than the step. Here
    each update is one ``jax.jit`` call on the state arrays: no sync, no copy to the
    host, no wait for the step to finish. The keras variables of the average are
    written at the end of each epoch (:meth:`flush`).
    """

    def __init__(self, ema: ModelEMA, sources: list[tuple[int, int]], iteration: int) -> None:
        import jax
        import jax.numpy as jnp

        self.ema, self.sources, self.iteration = ema, sources, iteration
        self.average = [a.value for a in ema._average]  # jax arrays
        self.last = jnp.asarray(ema._step, "int32")
        decay, warmup = ema.decay, ema.warmup

        def update(average, state, step, last):
            count = step.astype("float32")
            rate = jnp.minimum(decay, (1.0 + count) / (10.0 + count)) if warmup else decay
            keep = jnp.asarray(rate, "float32") ** (step - last).astype("float32")
            new = [
                a * keep.astype(a.dtype) + state[kind][i] * (1 - keep).astype(a.dtype)
                for a, (kind, i) in zip(average, sources, strict=True)
            ]
            return new, jnp.maximum(step.astype("int32"), last)

        self._update = jax.jit(update)

    @classmethod
    def create(cls, ema: ModelEMA) -> _JaxAverage | None:
        """For a model trained by Keras' JAX trainer, else ``None`` (the generic path)."""
        model = ema._model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None or not hasattr(model, "jax_state_sync"):
            return None
        trainable = {id(v): i for i, v in enumerate(model.trainable_variables)}
        non_trainable = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        sources = []
        for v in ema._variables:
            if id(v) in trainable:
                sources.append((0, trainable[id(v)]))
            elif id(v) in non_trainable:
                sources.append((1, non_trainable[id(v)]))
            else:
                return None
        iteration = [i for i, v in enumerate(optimizer.variables) if v is optimizer.iterations]
        return cls(ema, sources, iteration[0]) if iteration else None

    def update(self) -> bool:
        """Average the state after this batch; ``False`` when there is no trainer state."""
        state = getattr(self.ema._model, "_jax_state", None)
        if not state or not state.get("optimizer_variables"):
            return False
        step = state["optimizer_variables"][self.iteration]
        arrays = (list(state["trainable_variables"]), list(state["non_trainable_variables"]))
        self.average, self.last = self._update(self.average, arrays, step, self.last)
        return True

    def flush(self) -> None:
        """Write the average into the keras variables (and the step into the callback)."""
        for variable, value in zip(self.ema._average, self.average, strict=True):
            variable.assign(value)
        self.ema._step = int(self.last)


def selection_data(datasets: Any) -> tuple[Any, str]:
    """The data a run checks raw against averaged weights on, and its name.

    The validation split when there is one. Otherwise the first
    :data:`TRAIN_CHECK_BATCHES` batches of the training split, augmented as in
    training and cached so that both sets of weights see the same images: this
    catches an average that is broken (as after a few epochs of a fixed-momentum
    average that still holds the first steps' weights), but cannot rank two good
    ones by how they generalise. The test split is never used.

    Args:
        datasets: A ``Datasets`` tuple (``train``, ``validation``, ...).

    Returns:
        ``(data, "validation")`` or ``(data, "train")``.

    Example:
        >>> from keras_resnet.data import get_datasets
        >>> selection_data(get_datasets("digits", batch_size=64, validation_fraction=0))[1]
        'train'
    """
    if datasets.validation is not None:
        return datasets.validation, "validation"
    return datasets.train.take(TRAIN_CHECK_BATCHES).cache(), "train"


def weights_report(callbacks: Sequence[keras.callbacks.Callback]) -> dict[str, Any]:
    """What a run's ``summary.json`` says about the weights it kept.

    Args:
        callbacks: The run's callbacks (a :class:`ModelEMA` among them or not).

    Returns:
        ``{"weights": "raw"}`` without EMA, else the :class:`ModelEMA` report:
        ``{"weights": "ema" | "raw", "weights_check": {"split", "metric", "raw",
        "ema"}}``.

    Example:
        >>> weights_report([])
        {'weights': 'raw'}
    """
    for callback in callbacks:
        if isinstance(callback, ModelEMA) and callback.report:
            return dict(callback.report)
    return {"weights": "raw"}
