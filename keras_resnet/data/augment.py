"""Augmentation presets and options, as batched (vectorized) or per-example TF ops.

The presets (``cifar``, ``imagenet``, ``mnist``) use stateless ``tf.image`` /
``tf.random.stateless_*`` ops: every batch gets its own seed, folded from the
pipeline's ``(seed, epoch)`` (:mod:`keras_resnet.data.epochs`), so a training pipeline
is reproducible for a given ``seed`` even with ``num_parallel_calls=AUTOTUNE``, and
different in every epoch. The optional extras (RandAugment, MixUp, CutMix,
RandomErasing) are the Keras preprocessing layers themselves.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import tensorflow as tf

PRESETS = ("auto", "cifar", "imagenet", "mnist", "none")
EVAL_CROP_FRACTION = 0.875  # imagenet eval: resize to size/0.875, center-crop size


def shift_flip_batch(
    images: tf.Tensor, seed: tf.Tensor, max_shift: int, flip: bool = False
) -> tf.Tensor:
    """Shift each image by its own random integer offset (zero fill), maybe mirror it.

    Equals "pad ``max_shift`` pixels with zeros, take a random crop of the original
    size" (the CIFAR recipe), plus a left-right flip with probability 1/2 when
    ``flip``. It is done for the whole batch with one gather per axis, the flip folded
    into the column indices: half the CPU time of ``keras.layers.RandomTranslation`` +
    ``RandomFlip`` (a projective-transform op plus a select), and the offsets come from
    a stateless seed, so results are reproducible under a parallel ``tf.data`` map
    (the Keras layers draw from a stateful generator).

    Args:
        images: tensor ``(B, H, W, C)`` of any dtype (uint8 is cheapest).
        seed: int tensor of shape ``(2,)``.
        max_shift: int >= 0, largest shift in pixels along each axis.
        flip: bool, also mirror about half of the images left-right.

    Returns:
        The augmented batch, same shape and dtype.

    Example:
        >>> x = tf.ones((2, 8, 8, 1), tf.uint8)
        >>> shift_flip_batch(x, tf.constant([1, 2]), 2, flip=True).shape
        TensorShape([2, 8, 8, 1])
    """
    if max_shift <= 0 and not flip:
        return images
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offsets = tf.random.stateless_uniform(
        (batch, 2), seed=seeds[0], minval=0, maxval=2 * max_shift + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(height)[None]
    cols = tf.range(width)[None]
    if flip:
        mirror = tf.random.stateless_uniform((batch, 1), seed=seeds[1]) < 0.5
        cols = tf.where(mirror, width - 1 - cols, cols)
    cols = offsets[:, 1:] + cols
    if max_shift > 0:
        images = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
        images = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def random_resized_crop(image: tf.Tensor, seed: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Inception-style random-resized-crop of one image (area 8-100%, ratio 3/4-4/3).

    Args:
        image: tensor ``(H, W, C)`` of any size.
        seed: int tensor of shape ``(2,)``.
        size: ``(height, width)`` of the output.

    Returns:
        float32 tensor ``(size[0], size[1], C)`` in the input's value range.

    Example:
        >>> out = random_resized_crop(tf.ones((40, 50, 3)), tf.constant([0, 1]), (32, 32))
        >>> out.shape
        TensorShape([32, 32, 3])
    """
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, size, method="bilinear", antialias=True)


def resize_center_crop(
    image: tf.Tensor, size: tuple[int, int], crop_fraction: float = EVAL_CROP_FRACTION
) -> tf.Tensor:
    """Evaluation transform: resize the shorter side to ``size/crop_fraction``, center-crop.

    Args:
        image: tensor ``(H, W, C)`` of any size.
        size: ``(height, width)`` of the output.
        crop_fraction: float in ``(0, 1]``, 0.875 for the ImageNet recipe (256 -> 224).

    Returns:
        float32 tensor ``(size[0], size[1], C)``.

    Example:
        >>> resize_center_crop(tf.ones((40, 60, 3)), (32, 32)).shape
        TensorShape([32, 32, 3])
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.cast(max(size), tf.float32) / crop_fraction
    scale = target / tf.reduce_min(shape)
    new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    new = tf.maximum(new, tf.constant(size, tf.int32))
    resized = tf.image.resize(image, new, method="bilinear", antialias=True)
    top = (new[0] - size[0]) // 2
    left = (new[1] - size[1]) // 2
    return tf.image.crop_to_bounding_box(resized, top, left, size[0], size[1])


def batch_preset(preset: str, image_size: tuple[int, int]):
    """Return ``fn(images, seed) -> images`` for the batched part of a preset, or None.

    Args:
        preset: one of ``"cifar"``, ``"mnist"``, ``"imagenet"``, ``"none"``.
        image_size: ``(height, width)`` of the batch.

    Returns:
        A function of a ``(B, H, W, C)`` batch and a ``(2,)`` seed, or None.

    Example:
        >>> fn = batch_preset("cifar", (32, 32))
        >>> fn(tf.zeros((4, 32, 32, 3), tf.uint8), tf.constant([0, 1])).shape
        TensorShape([4, 32, 32, 3])
    """
    # shift as a fraction of the height, at least 1 px: cifar pads 4 at 32x32; mnist ~10%
    # (3 px at 28, 1 px at 8) and never flips; imagenet only flips (its random-resized-crop
    # ran per example before batching)
    fraction = {"cifar": 4 / 32, "mnist": 0.1, "imagenet": 0.0}.get(preset)
    if fraction is None:
        return None
    shift = max(1, math.floor(image_size[0] * fraction + 0.5)) if fraction else 0
    return functools.partial(shift_flip_batch, max_shift=shift, flip=preset != "mnist")


def keras_option_layers(options: Any, seed: int | None, num_classes: int) -> tuple[list, list]:
    """Build the Keras preprocessing layers for the optional extras.

    Images are in [0, 255] when RandAugment/RandomErasing run; MixUp/CutMix run on
    normalized images with one-hot labels.

    Args:
        options: a :class:`~keras_resnet.data.DataConfig` (or any object with its
            ``rand_augment``, ``random_erasing``, ``mixup`` and ``cutmix`` fields: False,
            True, a positive number or a dict of the layer's keyword arguments).
        seed: int or None, seed of the layers' generators.
        num_classes: int, number of classes.

    Returns:
        ``(pixel_layers, mix_layers)``: two lists of Keras layers.

    Example:
        >>> from keras_resnet.data import DataConfig
        >>> pixel, mix = keras_option_layers(DataConfig(mixup=0.2), 0, 10)
        >>> len(pixel), type(mix[0]).__name__
        (0, 'MixUp')
    """
    import keras

    def build(layer: type, value: Any, key: str, **defaults: Any) -> keras.Layer:
        # value: True (the layer's defaults), a number (its `key` argument) or a kwargs dict
        if not isinstance(value, dict):
            value = {} if value is True else {key: float(value)}
        return layer(seed=seed, **{**defaults, **value})

    pixel = [
        (keras.layers.RandAugment, options.rand_augment),
        (keras.layers.RandomErasing, options.random_erasing),
    ]
    mix = [
        (keras.layers.MixUp, options.mixup, "alpha"),
        (keras.layers.CutMix, options.cutmix, "factor"),
    ]
    return (
        [build(layer, value, "factor", value_range=(0, 255)) for layer, value in pixel if value],
        [build(layer, value, key) for layer, value, key in mix if value],
    )
