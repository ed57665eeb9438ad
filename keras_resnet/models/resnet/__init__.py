"""ResNet, pre-activation ResNet, ResNeXt and Wide ResNet: config, blocks, builder, zoo."""
