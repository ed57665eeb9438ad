"""Run a layer forward and backward on the current Keras backend, and run a comparison
function of a test module on another backend in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest


def require_backend(backend: str) -> None:
    """Skip a test whose Keras backend is not installed; fail instead when the
    environment sets ``KERAS_RESNET_REQUIRE_BACKENDS`` (CI does: there every backend
    test must run)."""
    module = "tensorflow" if backend == "tensorflow" else backend
    if importlib.util.find_spec(module) is not None:
        return
    if os.environ.get("KERAS_RESNET_REQUIRE_BACKENDS"):
        pytest.fail(f"{module} is not installed but KERAS_RESNET_REQUIRE_BACKENDS is set")
    pytest.skip(f"{module} is not installed (pip install {module}) to test KERAS_BACKEND={backend}")


def outputs_and_grads(layer, x, w, **call_kwargs) -> list[np.ndarray]:
    """Output, input gradient and weight gradients of ``sum(layer(x) * w)``, then the
    layer's non-trainable weights after the call (e.g. updated moving statistics)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **call_kwargs)
            loss = tf.reduce_sum(y * w)
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        state = [v.value for v in layer.non_trainable_variables]
        return [np.asarray(t) for t in [y, *grads, *state]]
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(xx, trainable):
            y, state = layer.stateless_call(trainable, non_trainable, xx, **call_kwargs)
            return (y * w).sum(), (y, state)

        trainable = [v.value for v in layer.trainable_variables]
        (_, (y, state)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            x, trainable
        )
        return [np.asarray(t) for t in [y, grads[0], *grads[1], *state]]
    import torch

    xx = torch.tensor(x, requires_grad=True)
    y = layer(xx, **call_kwargs)
    (y * torch.tensor(w)).sum().backward()
    grads = [xx.grad] + [v.value.grad for v in layer.trainable_variables]
    state = [v.value for v in layer.non_trainable_variables]
    return [t.detach().cpu().numpy() for t in [y, *grads, *state]]


def run_on_backend(backend: str, module: str, function: str):
    """``module.function()`` (JSON-serializable result) under ``KERAS_BACKEND=backend``."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    folder = os.path.dirname(sys.modules[module].__file__)  # the calling test's folder
    script = (
        f"import sys, json; sys.path[:0] = {[os.path.dirname(__file__), folder]!r}; "
        f"from {module} import {function}; print(json.dumps({function}()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
