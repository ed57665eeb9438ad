"""A quiet TensorFlow start-up for the command line.

TensorFlow 2.21 prints its start-up notices (oneDNN, "Could not find cuda drivers",
CPU features, ``failed call to cuInit ... (303)`` on a machine without a GPU) from
C++ before Abseil logging is initialised, where ``TF_CPP_MIN_LOG_LEVEL`` does not
reach ("All log messages before absl::InitializeLog() is called are written to
STDERR"), so the only way to hide them is to hold the
process's stderr (file descriptor 2) while TensorFlow loads and finds its devices,
then pass on every line that is not one of those notices.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Start-up notices of a CPU-only TensorFlow: the Abseil preamble, INFO/WARNING lines
# in Abseil's format, CUDA errors and the CPU-feature notice's second line. Anything
# else (e.g. a real error) is passed on.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\]"
    r"|E\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*(cuInit|CUDA|cuDNN|cuFFT|cuBLAS)"
    r"|To enable the following instructions:)"
)


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's start-up notices on a CPU-only machine.

    Args:
        line: One line of stderr.

    Example:
        >>> is_startup_noise("E0000 00:00:1796.1   9497 cuda_platform.cc:52] failed call "
        ...                  "to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)")
        True
        >>> is_startup_noise("Traceback (most recent call last):")
        False
    """
    return bool(_NOISE.match(line))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Hold file descriptor 2 and pass on only the lines that are not start-up noise.

    Example:
        >>> import contextlib, io
        >>> passed_on = io.StringIO()
        >>> with contextlib.redirect_stderr(passed_on), filtered_stderr():
        ...     _ = os.write(2, b"I0000 00:00:1.5  7 port.cc:153] oneDNN custom operations\\n")
        ...     _ = os.write(2, b"a real error\\n")
        >>> passed_on.getvalue()  # the notice is dropped
        'a real error\\n'
    """
    sys.stderr.flush()
    saved = os.dup(2)
    # A crash while fd 2 is held would take its report down with the held file: the
    # fault handler writes to the real stderr meanwhile.
    report = os.fdopen(os.dup(saved), "w")
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable(file=report)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if was_enabled:
                faulthandler.enable(file=sys.__stderr__)  # fd 2, restored above
            else:
                faulthandler.disable()
            report.close()
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = [ln for ln in text.splitlines(keepends=True) if not is_startup_noise(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def is_command_line(orig_argv: list[str], argv: list[str]) -> bool:
    """Whether this process is keras_resnet's command line and nothing else.

    True for ``python [options] -m keras_resnet ...`` (``sys.orig_argv``) and for the
    ``keras-resnet`` script; a program that imports keras_resnet, also one started with
    ``python -m`` another module, gets False.

    Args:
        orig_argv: ``sys.orig_argv``, the interpreter's own command line.
        argv: ``sys.argv``.

    Example:
        >>> is_command_line(["python", "-X", "dev", "-m", "keras_resnet", "train"], ["-m"])
        True
        >>> is_command_line(["python", "-m", "my_tool"], ["-m"])
        False
    """
    args = iter(orig_argv[1:])
    for arg in args:
        if arg in ("-X", "-W"):
            next(args, None)  # the option's value
        elif arg == "-m":
            return next(args, None) == "keras_resnet"
        elif arg.startswith("-m"):
            return arg[2:] == "keras_resnet"
        elif arg == "-c" or not arg.startswith("-"):
            break  # a script or -c: the rest are the program's own arguments
    return os.path.basename(argv[0] if argv else "") == "keras-resnet"


def cli_startup(orig_argv: list[str], argv: list[str]) -> None:
    """Quiet start-up when this process is the command line, before anything loads Keras.

    A process that :func:`is_command_line` gets :func:`quiet_startup`, unless
    ``--verbose`` is among its arguments; any other process is left exactly as it was.

    Args:
        orig_argv: ``sys.orig_argv``.
        argv: ``sys.argv``.

    Example:
        >>> environment = dict(os.environ)
        >>> cli_startup(["python", "my_script.py"], ["my_script.py"])  # not the command line
        >>> dict(os.environ) == environment
        True
    """
    if is_command_line(orig_argv, argv):
        quiet_startup(verbose="--verbose" in orig_argv[1:] + argv[1:])


def keras_backend_name() -> str:
    """The Keras backend this process will use, read as Keras reads it, without importing it.

    ``KERAS_BACKEND`` if set, else ``backend`` in ``$KERAS_HOME/keras.json`` (default
    ``~/.keras/keras.json``), else ``"tensorflow"``.

    Example:
        >>> os.environ["KERAS_BACKEND"] = "jax"
        >>> keras_backend_name()
        'jax'
        >>> del os.environ["KERAS_BACKEND"]
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def quiet_startup(verbose: bool = False) -> None:
    """Load TensorFlow without its start-up notices (unless ``verbose``).

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (INFO and WARNING from C++ off, unless already
    set), imports TensorFlow and lists its devices (where ``cuInit`` is called)
    with stderr held by :func:`filtered_stderr`, and sets the ``tensorflow`` Python
    logger to errors only. Does nothing with ``verbose``, once TensorFlow is loaded,
    or when Keras will run on another backend: TensorFlow loaded ahead of the PyTorch
    backend can crash the process.

    Args:
        verbose: Leave TensorFlow's logging as it is.

    Example:
        >>> quiet_startup()
        >>> "tensorflow" in sys.modules
        True
    """
    if verbose or "tensorflow" in sys.modules or keras_backend_name() != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
