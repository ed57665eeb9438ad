"""``python -m keras_resnet`` runs the command line interface.

TensorFlow loads with ``keras_resnet/__init__.py``, which runs before this module, so
the start-up notices are hidden there (:func:`keras_resnet._startup.cli_startup`),
only when ``sys.orig_argv`` shows that this process is the command line.
"""

from keras_resnet.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
