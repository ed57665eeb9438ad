"""Training passes whose randomness is a function of ``(seed, epoch)`` only.

A training pipeline built by :func:`epoch_passes` reads its epoch counter once, when a
pass begins, and advances it: every random choice of the pass (order, augmentation)
is drawn from stateless seeds folded from ``(seed, epoch)``, so the epochs differ from
each other, and a process that starts at epoch k (a resumed run) sees the data an
uninterrupted run saw in epoch k once :func:`set_train_epoch` has set the counter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

_COUNTER = "keras_resnet_epoch_counter"  # the attribute holding a pipeline's counter


def fold(key: tf.Tensor, data: int | tf.Tensor) -> tf.Tensor:
    """A new ``(2,)`` int64 stateless seed from ``key`` and an integer.

    Example:
        >>> key = tf.constant([3, 0], tf.int64)
        >>> bool(tf.reduce_all(fold(key, 1) == fold(key, 1)))
        True
        >>> bool(tf.reduce_all(fold(key, 1) == fold(key, 2)))
        False
    """
    return tf.random.experimental.stateless_fold_in(key, tf.cast(data, tf.int64))


def base_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one when it is None (fresh randomness each process).

    Example:
        >>> base_seed(7)
        7
        >>> 0 <= base_seed(None) < 2**31
        True
    """
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().generate_state(1)[0] % 2**31)


def epoch_passes(
    seed: int | None, one_epoch: Callable[[tf.Tensor], tf.data.Dataset], batches: int
) -> tf.data.Dataset:
    """A dataset whose every pass is ``one_epoch(key)`` for the pass's epoch.

    ``key`` is the ``(2,)`` int64 seed ``(base_seed(seed), epoch)``; ``epoch`` is read
    from the dataset's counter when the pass begins, which then advances by one.
    Transformations applied afterwards keep the counter only when the result is
    passed through :func:`with_counter`.

    Args:
        seed: The pipeline's seed (None: a fresh one).
        one_epoch: ``key -> tf.data.Dataset`` of one epoch.
        batches: The elements of a pass (its cardinality).

    Example:
        >>> ds = epoch_passes(0, lambda key: tf.data.Dataset.from_tensors(key[1]), 1)
        >>> [int(next(iter(ds))) for _ in range(3)]
        [0, 1, 2]
    """
    base = tf.constant(base_seed(seed), tf.int64)
    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_epoch")

    def start(_: tf.Tensor) -> tf.Tensor:
        return counter.assign_add(1) - 1  # read once a pass, when it begins

    ds = tf.data.Dataset.range(1).map(start)
    ds = ds.flat_map(lambda epoch: one_epoch(tf.stack([base, epoch])))
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    setattr(ds, _COUNTER, counter)
    return ds


def with_counter(ds: tf.data.Dataset, source: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` (made from ``source`` by ``map``, ``prefetch``, ...) with ``source``'s counter.

    Example:
        >>> passes = epoch_passes(0, lambda key: tf.data.Dataset.from_tensors(key[1]), 1)
        >>> ds = with_counter(passes.map(lambda e: e + 10), passes)
        >>> set_train_epoch(ds, 5), int(next(iter(ds)))
        (True, 15)
    """
    counter = getattr(source, _COUNTER, None)
    if counter is not None:
        setattr(ds, _COUNTER, counter)
    return ds


def set_train_epoch(train: Any, epoch: int) -> bool:
    """Make the next pass over a training pipeline epoch ``epoch`` (counted from 0).

    Each pass over the ``train`` pipeline of :func:`~keras_resnet.data.get_datasets`
    (or :func:`~keras_resnet.data.from_arrays`) shuffles and augments as a function of
    ``(seed, epoch)`` only, where ``epoch`` counts the passes begun in this process.
    Setting it at each epoch's start, as ``keras_resnet.training.train`` does, gives
    every epoch the data it has in an uninterrupted run, also in a resumed run and
    whatever extra passes ``model.fit`` makes.

    Args:
        train: A ``train`` pipeline; anything else is left as it is.
        epoch: int >= 0, the epoch the next pass stands for.

    Returns:
        True when ``train`` has an epoch counter (and it was set).

    Example:
        >>> from keras_resnet.data import get_datasets
        >>> train = get_datasets("digits", batch_size=64, seed=1).train
        >>> labels = [next(iter(train))[1].numpy() for _ in range(2)]  # epochs 0 and 1
        >>> bool((labels[0] != labels[1]).any())
        True
        >>> set_train_epoch(train, 1), bool((next(iter(train))[1].numpy() == labels[1]).all())
        (True, True)
        >>> set_train_epoch(tf.data.Dataset.range(3), 1)
        False
    """
    counter = getattr(train, _COUNTER, None)
    if counter is None:
        return False
    epoch = int(epoch)
    if epoch < 0:
        raise ValueError(f"`epoch` must be >= 0. Received: epoch={epoch}")
    counter.assign(epoch)
    return True


def shuffled(ds: tf.data.Dataset, buffer: int, seed: tf.Tensor) -> tf.data.Dataset:
    """``ds.shuffle(buffer)`` in the order the ``(2,)`` int64 stateless ``seed`` gives.

    Unlike ``Dataset.shuffle``, the order depends on ``seed`` alone, not on TF's
    global seed, and ``seed`` may be a tensor computed in a ``tf.data`` function.

    Example:
        >>> ds = tf.data.Dataset.range(6)
        >>> a = [int(v) for v in shuffled(ds, 6, tf.constant([1, 2], tf.int64))]
        >>> sorted(a), a == [int(v) for v in shuffled(ds, 6, tf.constant([1, 2], tf.int64))]
        ([0, 1, 2, 3, 4, 5], True)
    """
    # the op's two seeds, never both 0 (that would ask the kernel for random ones)
    seeds = tf.random.stateless_uniform([2], seed, minval=1, maxval=2**62, dtype=tf.int64)
    specs = tf.nest.flatten(ds.element_spec)
    variant = tf.raw_ops.ShuffleDatasetV3(
        input_dataset=tf.data.experimental.to_variant(ds),
        buffer_size=tf.constant(buffer, tf.int64),
        seed=seeds[0],
        seed2=seeds[1],
        seed_generator=tf.raw_ops.DummySeedGenerator(),
        output_types=[spec.dtype for spec in specs],
        output_shapes=[spec.shape for spec in specs],
        reshuffle_each_iteration=False,
    )
    return tf.data.experimental.from_variant(variant, ds.element_spec)


def seed_states(layers: Sequence[Any]) -> list[Any]:
    """The state variables of the Keras ``SeedGenerator`` s the ``layers`` draw from.

    Under the TensorFlow backend only: under another one the layers draw in
    ``tf.data`` from TensorFlow-side generators that Keras makes on first use and no
    public accessor reaches, and the list is empty.

    Example:
        >>> import keras
        >>> len(seed_states([keras.layers.MixUp(seed=0), keras.layers.Dense(2)]))
        1
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return []
    found: dict[int, Any] = {}
    for layer in layers:
        for variable in layer.non_trainable_variables:
            if "seed_generator" in variable.path:
                found.setdefault(id(variable), variable)
    return list(found.values())


def reseed(states: Sequence[Any], seed: tf.Tensor) -> None:
    """Set each Keras seed-generator state from ``seed`` (one fold per state).

    Example:
        >>> import keras
        >>> states = seed_states([keras.layers.MixUp(seed=0)])
        >>> reseed(states, tf.constant([1, 2], tf.int64))
        >>> a = states[0].numpy().copy()
        >>> reseed(states, tf.constant([1, 2], tf.int64))
        >>> bool((states[0].numpy() == a).all())
        True
    """
    for j, state in enumerate(states):
        value = tf.random.stateless_uniform(
            [2], fold(seed, j), minval=None, maxval=None, dtype=tf.int64
        )
        state.assign(tf.cast(value, state.dtype))
