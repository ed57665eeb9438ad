"""Models: the registry of named variants, the factory that builds them, the pieces both
families share (heads, convolution and normalization ops, layer names, depth limits) and
one subpackage per family (``resnet``, ``densenet``: config, blocks, builder, zoo)."""
