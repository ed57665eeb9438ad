"""Augmentation presets and options, as batched (vectorized) or per-example TF ops.

The presets (``cifar``, ``imagenet``, ``mnist``) use stateless ``tf.image`` /
``tf.random.stateless_*`` ops driven by seeds that come from
``tf.data.Dataset.random``: every batch gets its own seed, so a training pipeline is
reproducible for a given ``seed`` even with ``num_parallel_calls=AUTOTUNE``, and
different in every epoch. The optional extras (RandAugment, MixUp, CutMix,
RandomErasing) are the Keras preprocessing layers themselves.
"""

from __future__ import annotations

import math

import tensorflow as tf

PRESETS = ("auto", "cifar", "imagenet", "mnist", "none")
EVAL_CROP_FRACTION = 0.875  # imagenet eval: resize to size/0.875, center-crop size


def translate_batch(images: tf.Tensor, seed: tf.Tensor, max_shift: int) -> tf.Tensor:
    """Shift every image of a batch by its own random integer offset, zero-filled.

    Equivalent to "pad ``max_shift`` pixels with zeros, then take a random crop of
    the original size" (the CIFAR recipe), done for the whole batch in one op.
    ``keras.layers.RandomTranslation`` applies the same op, but draws its offsets
    from a stateful generator, which is not reproducible under a parallel
    ``tf.data`` map; here the offsets come from a stateless seed.

    Args:
        images: float tensor ``(B, H, W, C)``.
        seed: int tensor of shape ``(2,)``.
        max_shift: int, largest shift in pixels along each axis.

    Returns:
        The shifted batch, same shape and dtype.

    Example:
        >>> x = tf.ones((2, 8, 8, 1))
        >>> translate_batch(x, tf.constant([1, 2]), 2).shape
        TensorShape([2, 8, 8, 1])
    """
    if max_shift <= 0:
        return images
    batch = tf.shape(images)[0]
    shifts = tf.random.stateless_uniform(
        (batch, 2), seed=seed, minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32
    )
    shifts = tf.cast(shifts, tf.float32)
    ones, zeros = tf.ones((batch, 1)), tf.zeros((batch, 1))
    # projective transform mapping output (x, y) to input (x - dx, y - dy)
    transforms = tf.concat(
        [ones, zeros, -shifts[:, :1], zeros, ones, -shifts[:, 1:], zeros, zeros], axis=1
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def flip_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flip each image of a batch left-right with probability 1/2 (stateless).

    Args:
        images: tensor ``(B, H, W, C)``.
        seed: int tensor of shape ``(2,)``.

    Returns:
        The batch with about half of its images mirrored.

    Example:
        >>> flip_batch(tf.ones((4, 8, 8, 3)), tf.constant([0, 1])).shape
        TensorShape([4, 8, 8, 3])
    """
    coin = tf.random.stateless_uniform((tf.shape(images)[0], 1, 1, 1), seed=seed) < 0.5
    return tf.where(coin, tf.reverse(images, axis=[2]), images)


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


def shift_for(size: int, fraction: float) -> int:
    """Pixels of shift for a side of ``size`` pixels (at least 1)."""
    return max(1, int(math.floor(size * fraction + 0.5)))


def batch_preset(preset: str, image_size: tuple[int, int]):
    """Return ``fn(images_float, seed) -> images`` for the batched part of a preset."""
    height = image_size[0]
    if preset == "cifar":
        pad = shift_for(height, 4 / 32)  # pad 4 at 32x32

        def fn(images, seed):
            seeds = tf.random.experimental.stateless_split(seed, 2)
            return flip_batch(translate_batch(images, seeds[0], pad), seeds[1])

        return fn
    if preset == "mnist":
        shift = shift_for(height, 0.1)  # ~10% of the side: 3 px at 28, 1 px at 8

        def fn(images, seed):
            return translate_batch(images, seed, shift)

        return fn
    if preset == "imagenet":
        return lambda images, seed: flip_batch(images, seed)
    return None


def keras_option_layers(options: dict, seed: int | None, num_classes: int) -> list:
    """Build the Keras preprocessing layers for the optional extras.

    ``rand_augment``: True or a dict of ``keras.layers.RandAugment`` kwargs;
    ``random_erasing``: probability (float) or dict of ``RandomErasing`` kwargs;
    ``mixup``: alpha (float) or dict; ``cutmix``: factor (float) or dict.
    Images are in [0, 255] when RandAugment/RandomErasing run.
    """
    import keras

    def kwargs(value, key):
        if isinstance(value, dict):
            return dict(value)
        if value is True:
            return {}
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return {key: float(value)}
        raise ValueError(
            f"Augmentation option must be True, a positive number or a dict of layer "
            f"arguments. Received: {value!r}"
        )

    pixel_layers, mix_layers = [], []
    if options.get("rand_augment"):
        kw = kwargs(options["rand_augment"], "factor")
        kw.setdefault("value_range", (0, 255))
        pixel_layers.append(keras.layers.RandAugment(seed=seed, **kw))
    if options.get("random_erasing"):
        kw = kwargs(options["random_erasing"], "factor")
        kw.setdefault("value_range", (0, 255))
        pixel_layers.append(keras.layers.RandomErasing(seed=seed, **kw))
    if options.get("mixup"):
        mix_layers.append(keras.layers.MixUp(seed=seed, **kwargs(options["mixup"], "alpha")))
    if options.get("cutmix"):
        mix_layers.append(keras.layers.CutMix(seed=seed, **kwargs(options["cutmix"], "factor")))
    return pixel_layers, mix_layers
