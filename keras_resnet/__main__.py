"""``python -m keras_resnet`` runs the command line interface.

TensorFlow's start-up notices are hidden by ``keras_resnet/__init__.py``
(:func:`keras_resnet._startup.cli_startup`), which runs before this module.
"""

from keras_resnet.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
