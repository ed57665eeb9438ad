"""DenseNet (Huang et al. 2017): config, dense blocks and transitions, builder, zoo."""
