"""The state lines of a training run (resumed, finished, result)."""

from __future__ import annotations

import logging

logger = logging.getLogger("keras_resnet.training")


def say(message: str) -> None:
    """Print a run's state line to stdout, or log it when Keras' interactive logging is off.

    The same rule as Keras' progress messages (``keras.config.disable_interactive_logging()``
    sends both to ``logging``).

    Example:
        >>> say("Resuming the run")
        Resuming the run
    """
    import keras

    if keras.config.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logger.info(message)
