"""Residual block builders: plain functions ``tensor -> tensor`` (Keras only).

- :func:`basic_block`: two 3x3 convs (He et al. 2015); pre-activation form with
  ``preact=True`` (He et al. 2016); grouped 3x3 with ``groups``; dropout between the
  convs for Wide ResNets (Zagoruyko & Komodakis 2016).
- :func:`bottleneck_block`: 1x1 -> 3x3 -> 1x1 with expansion 4; ResNeXt through
  ``groups``/``base_width`` (Xie et al. 2017); stride on the 3x3 (v1.5) or on the first
  1x1 (v1).
- :func:`shortcut`: the one place that decides the shortcut path.

Every block supports stochastic depth (Huang et al. 2016) through a per-example
``Dropout`` of the whole branch, squeeze-and-excitation (Hu et al. 2018), zero-init of
the last BN gamma (Goyal et al. 2017), and the shortcut kinds of
:mod:`keras_resnet.models.resnet.config`.
Layer names are ``{name}_{part}`` (e.g. ``stage2_block1_conv2``): they are part of the
weight format.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_resnet.layers import HighwayGate, ZeroPadShortcut
from keras_resnet.models.naming import (
    ADD,
    BN,
    CONV,
    DROP_PATH,
    DROPOUT,
    GATE,
    HIGHWAY,
    OUT,
    PREACT,
    SHORTCUT_BN,
    SHORTCUT_CONV,
    SHORTCUT_PAD,
    SHORTCUT_POOL,
    part,
)
from keras_resnet.models.ops import batch_norm, bn_relu, conv2d, fill_doc
from keras_resnet.models.resnet.config import SHORTCUT_ALIASES, SHORTCUTS, STRIDE_IN
from keras_resnet.utils.checks import check_choice

# Highway networks start biased towards carrying the input (Srivastava et al. 2015).
HIGHWAY_GATE_BIAS = -1.0


def shortcut(
    x,
    filters: int,
    *,
    strides: int = 1,
    kind: str | None = "projection",
    preact_input=None,
    use_bias: bool = False,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    name: str,
):
    """The shortcut path of a residual block; the rule is written only here.

    Identity when the shape is unchanged (except ``"projection_all"``, option C);
    otherwise the configured kind. Parameterized shortcuts (projections) read
    ``preact_input`` when given (pre-activation blocks share the first BN-ReLU, as in
    He et al. 2016 and keras.applications ResNetV2), without a BN of their own;
    parameter-free ones read the raw ``x``.

    Args:
        x: Block input.
        filters: Output channels of the block.
        strides: Spatial stride of the block.
        kind: ``"projection"``, ``"projection_all"``, ``"zero_pad"``, ``"avg_down"``,
            ``"highway"`` (projection where needed; the gate lives in the block) or
            ``None`` (plain: returns ``None``).
        preact_input: Pre-activated input of a pre-activation block, or ``None``.
        use_bias: Bias on the projection convolution.
        bn_epsilon: BN epsilon of the projection.
        bn_momentum: BN momentum of the projection.
        name: Prefix; layers are ``{name}_shortcut_conv`` etc.

    Returns:
        The shortcut tensor, or ``None`` for plain networks.

    Example:
        >>> inputs = keras.Input((8, 8, 16))
        >>> tuple(shortcut(inputs, 32, strides=2, kind="zero_pad", name="b").shape)
        (None, 4, 4, 32)
    """
    kind = SHORTCUT_ALIASES.get(kind, kind)
    if kind != "subsample":  # internal: keras.applications ResNetV2 layout (_block_plan)
        check_choice("shortcut", kind, SHORTCUTS + tuple(SHORTCUT_ALIASES))
    if kind is None:
        return None
    if x.shape[-1] == filters and strides == 1 and kind != "projection_all":
        return x
    if kind == "zero_pad":
        return ZeroPadShortcut(filters, strides, name=part(name, SHORTCUT_PAD))(x)
    if kind == "subsample" and x.shape[-1] == filters:
        # keras.applications ResNetV2: a strided block keeps channels and subsamples x.
        return layers.MaxPooling2D(1, strides=strides, name=part(name, SHORTCUT_POOL))(x)
    source = x if preact_input is None else preact_input
    if kind == "avg_down" and strides > 1:
        source = layers.AveragePooling2D(
            2, strides=strides, padding="same", name=part(name, SHORTCUT_POOL)
        )(source)
        strides = 1
    out = conv2d(
        source, filters, 1, strides=strides, use_bias=use_bias, name=part(name, SHORTCUT_CONV)
    )
    if preact_input is None:
        out = batch_norm(
            out, epsilon=bn_epsilon, momentum=bn_momentum, name=part(name, SHORTCUT_BN)
        )
    return out


def _squeeze_excite(x, ratio: float, name: str):
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Conv2D(
        max(1, int(channels * ratio)), 1, activation="relu", name=f"{name}_se_reduce"
    )(s)
    s = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_se_expand")(s)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def _enter(x, out_channels: int, strides: int, kind, preact: bool, bias: bool, bn_kw, name):
    """A block's entry: the pre-activation (if any) and the shortcut tensor."""
    preact_input = bn_relu(x, bn_kw, part(name, PREACT)) if preact else None
    short = shortcut(
        x,
        out_channels,
        strides=strides,
        kind=kind,
        preact_input=preact_input,
        use_bias=bias,
        bn_epsilon=bn_kw["epsilon"],
        bn_momentum=bn_kw["momentum"],
        name=name,
    )
    return (x if preact_input is None else preact_input), short


def _merge(branch, short, gate_input, *, strides, kind, preact, drop_path, se_ratio, name):
    """The one merge step: SE, stochastic depth, add (or highway gate), final ReLU."""
    if se_ratio:
        branch = _squeeze_excite(branch, se_ratio, name)
    if drop_path:
        # Stochastic depth: drop the whole branch per example; Dropout's inverted
        # scaling during training equals scaling by p_l at test time.
        drop = layers.Dropout(drop_path, noise_shape=(None, 1, 1, 1), name=part(name, DROP_PATH))
        branch = drop(branch)
    if short is None:
        out = branch
    elif kind == "highway":
        gate = layers.Conv2D(
            branch.shape[-1],
            1,
            strides=strides,
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(HIGHWAY_GATE_BIAS),
            name=part(name, GATE),
        )(gate_input)
        out = HighwayGate(name=part(name, HIGHWAY))([gate, branch, short])
    else:
        out = layers.Add(name=part(name, ADD))([short, branch])
    return out if preact else layers.ReLU(name=part(name, OUT))(out)


# The arguments both blocks take, documented once (keras.applications formats its
# builders' docstrings from one template the same way).
_SHARED_ARGS = """shortcut: Shortcut kind used where the shape changes (see :func:`shortcut`).
        preact: Pre-activation form (He et al. 2016).
        drop_path: Probability of dropping the branch (stochastic depth).
        se_ratio: Squeeze-and-excitation ratio (0 = off).
        zero_init_last_bn: Zero-init the last BN gamma (last conv if ``preact``).
        use_bias: keras.applications-style conv biases (on the convs not followed by a
            BN in pre-activation blocks, on every conv otherwise).
        bn_epsilon: BN epsilon.
        bn_momentum: BN momentum."""


@fill_doc(shared_args=_SHARED_ARGS)
def basic_block(
    x,
    filters: int,
    *,
    strides: int = 1,
    groups: int = 1,
    shortcut: str | None = "projection",
    preact: bool = False,
    drop_path: float = 0.0,
    dropout: float = 0.0,
    se_ratio: float = 0.0,
    zero_init_last_bn: bool = False,
    use_bias: bool = False,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    name: str,
):
    """Basic residual block: two 3x3 convolutions (He et al. 2015).

    Post-activation: ``relu(shortcut(x) + bn(conv(relu(bn(conv(x))))))``. With
    ``preact=True``: ``shortcut + conv(relu(bn(conv(relu(bn(x))))))`` (He et al. 2016;
    Wide ResNet blocks add ``dropout`` between the convs).

    Args:
        x: Input tensor (NHWC).
        filters: Output channels (expansion 1).
        strides: Stride of the first 3x3 convolution.
        groups: Groups of the first 3x3 convolution.
        dropout: Dropout rate between the convolutions.
        {shared_args}
        name: Layer name prefix, e.g. ``"stage1_block1"``.

    Returns:
        The block output tensor.

    Example:
        >>> inputs = keras.Input((8, 8, 16))
        >>> y = basic_block(inputs, 32, strides=2, shortcut="zero_pad", name="b")
        >>> tuple(y.shape)
        (None, 4, 4, 32)
    """
    bn_kw = {"epsilon": bn_epsilon, "momentum": bn_momentum}
    entry, short = _enter(x, filters, strides, shortcut, preact, use_bias, bn_kw, name)
    y = conv2d(entry, filters, 3, strides=strides, groups=groups,
               use_bias=use_bias and not preact, name=part(name, CONV, 1))  # fmt: skip
    y = bn_relu(y, bn_kw, name, 1)
    if dropout:
        y = layers.Dropout(dropout, name=part(name, DROPOUT))(y)
    y = conv2d(y, filters, 3, use_bias=use_bias, zero_init=preact and zero_init_last_bn,
               name=part(name, CONV, 2))  # fmt: skip
    if not preact:
        y = batch_norm(y, **bn_kw, zero_init=zero_init_last_bn, name=part(name, BN, 2))
    return _merge(y, short, entry, strides=strides, kind=shortcut, preact=preact,
                  drop_path=drop_path, se_ratio=se_ratio, name=name)  # fmt: skip


@fill_doc(shared_args=_SHARED_ARGS)
def bottleneck_block(
    x,
    filters: int,
    *,
    strides: int = 1,
    groups: int = 1,
    base_width: int = 64,
    stride_in: str = "3x3",
    shortcut: str | None = "projection",
    preact: bool = False,
    drop_path: float = 0.0,
    dropout: float = 0.0,
    se_ratio: float = 0.0,
    zero_init_last_bn: bool = False,
    use_bias: bool = False,
    bn_epsilon: float = 1e-5,
    bn_momentum: float = 0.9,
    name: str,
):
    """Bottleneck block 1x1 -> 3x3 -> 1x1 (expansion 4); ResNeXt with ``groups > 1``.

    The inner width is ``int(filters * base_width / 64) * groups`` (timm), so
    ``groups=32, base_width=4`` gives ResNeXt-50 32x4d and ``base_width=128`` gives
    Wide ResNet-50-2.

    Args:
        x: Input tensor (NHWC).
        filters: Base width; the block outputs ``4 * filters`` channels.
        strides: Stride of the block.
        groups: Cardinality of the grouped 3x3 convolution.
        base_width: Width per group at 64 base channels.
        stride_in: ``"3x3"`` (ResNet v1.5, default) or ``"1x1"`` (v1).
        dropout: Dropout rate after the 3x3 convolution.
        {shared_args}
        name: Layer name prefix, e.g. ``"stage2_block1"``.

    Returns:
        The block output tensor.

    Example:
        >>> inputs = keras.Input((8, 8, 64))
        >>> y = bottleneck_block(inputs, 64, strides=2, groups=32, base_width=4, name="b")
        >>> tuple(y.shape)
        (None, 4, 4, 256)
    """
    check_choice("stride_in", stride_in, STRIDE_IN)
    bn_kw = {"epsilon": bn_epsilon, "momentum": bn_momentum}
    width = int(filters * base_width / 64) * groups
    stride1, stride3 = (strides, 1) if stride_in == "1x1" else (1, strides)
    inner_bias = use_bias and not preact
    entry, short = _enter(x, 4 * filters, strides, shortcut, preact, use_bias, bn_kw, name)
    y = conv2d(entry, width, 1, strides=stride1, use_bias=inner_bias, name=part(name, CONV, 1))
    y = bn_relu(y, bn_kw, name, 1)
    y = conv2d(y, width, 3, strides=stride3, groups=groups, use_bias=inner_bias,
               name=part(name, CONV, 2))  # fmt: skip
    y = bn_relu(y, bn_kw, name, 2)
    if dropout:
        y = layers.Dropout(dropout, name=part(name, DROPOUT))(y)
    y = conv2d(y, 4 * filters, 1, use_bias=use_bias, zero_init=preact and zero_init_last_bn,
               name=part(name, CONV, 3))  # fmt: skip
    if not preact:
        y = batch_norm(y, **bn_kw, zero_init=zero_init_last_bn, name=part(name, BN, 3))
    return _merge(y, short, entry, strides=strides, kind=shortcut, preact=preact,
                  drop_path=drop_path, se_ratio=se_ratio, name=name)  # fmt: skip
