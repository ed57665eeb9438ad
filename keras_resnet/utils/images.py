"""Decoding image files: one function for the training folders and the serving graph.

Image folders (``dir:PATH`` data), the exported SavedModel's ``serve_bytes`` signature
and ``predict`` all decode with :func:`decode_image`, so a file the training data
reads is read the same way when the model serves it.
"""

from __future__ import annotations

import tensorflow as tf


def decode_image(data: tf.Tensor | bytes, channels: int) -> tf.Tensor:
    """Decode a JPEG, PNG, BMP or GIF file to a uint8 ``(height, width, channels)`` image.

    ``tf.io.decode_image`` refuses ``channels=1`` for GIF, BMP and CMYK JPEG files.
    Here each file is decoded with its own channels and then converted: gray to RGB
    with ``tf.image.grayscale_to_rgb``, RGB to gray with ``tf.image.rgb_to_grayscale``;
    an alpha channel is dropped and an animated GIF gives its first frame. Works
    eagerly and inside ``tf.data`` and ``tf.function`` graphs.

    Args:
        data: The encoded file, a scalar string tensor or bytes.
        channels: 1 (grayscale) or 3 (RGB).

    Returns:
        A uint8 tensor ``(height, width, channels)``.

    Raises:
        ValueError: ``channels`` is not 1 or 3.
        tf.errors.InvalidArgumentError: The data is not a readable image (empty,
            truncated, corrupt, or too large for TensorFlow's decoders).

    Example:
        >>> rgb = tf.io.encode_png(tf.constant([[[255, 0, 0], [0, 0, 255]]], tf.uint8))
        >>> decode_image(rgb, 1)[..., 0].numpy().tolist()
        [[76, 29]]
        >>> decode_image(tf.io.encode_png(tf.constant([[[7]]], tf.uint8)), 3).numpy().tolist()
        [[[7, 7, 7]]]
    """
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    image = tf.io.decode_image(data, expand_animations=False)  # 1 to 4 channels
    color = tf.shape(image)[-1] >= 3
    if channels == 1:
        out = tf.cond(
            color, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1]
        )
    else:
        out = tf.cond(
            color, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1])
        )
    return tf.ensure_shape(out, [None, None, channels])
