"""One module per command line command; see :mod:`keras_resnet.cli`."""
