"""Pick a ``tf.distribute`` strategy by name and check the global batch size."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from keras_resnet.training.config import STRATEGIES
from keras_resnet.utils.checks import check_choice

logger = logging.getLogger("keras_resnet.training")
_MULTI_WORKER: Any = None


def tf_config() -> dict[str, Any]:
    """The ``TF_CONFIG`` environment variable, parsed (``{}`` when unset).

    The one reader of ``TF_CONFIG``: the strategy choice and the chief test use it.

    Example:
        >>> import os
        >>> os.environ["TF_CONFIG"] = '{"cluster": {"worker": ["a:1", "b:2"]}}'
        >>> len(tf_config()["cluster"]["worker"])
        2
        >>> del os.environ["TF_CONFIG"]
        >>> tf_config()
        {}
    """
    value = os.environ.get("TF_CONFIG") or "{}"
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"TF_CONFIG is not a JSON object. Received: TF_CONFIG={value!r}")
    return parsed


def _tf_config_workers() -> int:
    cluster = tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def uses_multi_worker(strategy: str) -> bool:
    """Whether the strategy name means ``MultiWorkerMirroredStrategy`` here.

    Example:
        >>> uses_multi_worker("multi_worker"), uses_multi_worker("none")
        (True, False)
    """
    return strategy == "multi_worker" or (strategy == "auto" and _tf_config_workers() > 1)


def get_strategy(name: str = "auto") -> Any:
    """A ``tf.distribute.Strategy`` for ``name``.

    Args:
        name: ``"none"`` (the default strategy, one device), ``"mirrored"`` (all local
            GPUs, or all logical CPU devices when there is no GPU), ``"multi_worker"``
            (``MultiWorkerMirroredStrategy``; cluster from ``TF_CONFIG``), ``"tpu"``
            (``TPUStrategy`` on the TPU found by ``TPUClusterResolver``) or ``"auto"``
            (TPU if present, else multi-worker if ``TF_CONFIG`` names more than one
            worker, else mirrored over several GPUs, else none).

    Returns:
        The strategy; build and compile the model inside ``strategy.scope()``.

    Example:
        >>> get_strategy("none").num_replicas_in_sync
        1
    """
    check_choice("strategy", name, STRATEGIES)
    import tensorflow as tf

    if name == "auto":
        if tf.config.list_logical_devices("TPU"):
            name = "tpu"
        elif _tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
        logger.info("strategy='auto' -> %s", name)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy='multi_worker' needs the TF_CONFIG environment variable "
                "(cluster and task of this worker). Received: TF_CONFIG unset"
            )
        # One per program: TF configures the collective ops once, at startup, and a
        # second instance re-initialises the cluster (and hangs), so reuse the first.
        global _MULTI_WORKER
        try:
            _MULTI_WORKER = _MULTI_WORKER or tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            if "program startup" not in str(err):
                raise
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before TensorFlow runs anything "
                "(no tensor, dataset or model yet): call get_strategy('multi_worker') first "
                "(later calls reuse the same cluster setup), or pass the data set by name "
                f"to train(). TensorFlow said: {err}"
            ) from None
        return _MULTI_WORKER
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"strategy='tpu' but no TPU was found: {err}") from None
    return tf.distribute.TPUStrategy(resolver)


def check_batch_size(batch_size: int, strategy: Any) -> int:
    """Check that the global ``batch_size`` splits evenly across the replicas.

    Args:
        batch_size: Global batch size.
        strategy: A ``tf.distribute.Strategy``.

    Returns:
        The per-replica batch size.

    Example:
        >>> import tensorflow as tf
        >>> check_batch_size(64, tf.distribute.get_strategy())
        64
    """
    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must be divisible by the number of "
            f"replicas ({replicas}). Received: batch_size={batch_size}"
        )
    return batch_size // replicas
