"""``python -m keras_resnet`` runs the command line interface."""

import os

# TensorFlow's C++ start-up chatter (CPU feature notices) drowns the command's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnet.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
