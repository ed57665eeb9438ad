"""precision="auto" / jit_compile="auto" come from measurements cached per device."""

from __future__ import annotations

import json

import pytest

from keras_resnet.training import auto_choice as A
from keras_resnet.training.auto_choice import resolve_jit_compile, resolve_precision


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "auto_choice.json"
    monkeypatch.setenv("KERAS_RESNET_AUTO_CACHE", str(path))
    return path


def test_cpu_keeps_measured_defaults_without_timing(cache):
    assert A.device_key() is None  # this machine has no GPU
    assert resolve_precision("auto") == "float32"
    assert resolve_jit_compile("auto") is False
    assert not cache.exists()


def test_auto_reads_the_cached_choice_for_this_device(cache, monkeypatch):
    monkeypatch.setattr(A, "device_key", lambda: "tensorflow:Fake GPU")
    rows = [
        dict(precision="float32", jit_compile=False, images_per_s=100.0, loss=2.3),
        dict(precision="mixed_bfloat16", jit_compile=True, images_per_s=300.0, loss=2.3),
        dict(precision="mixed_float16", jit_compile=True, images_per_s=900.0, loss=float("nan")),
    ]
    A.record_choice("tensorflow:Fake GPU", rows, "test")
    assert resolve_precision("auto") == "mixed_bfloat16"
    assert resolve_jit_compile("auto") is True
    assert json.loads(cache.read_text())["tensorflow:Fake GPU"]["source"] == "test"


def test_first_use_measures_once_and_caches(cache, monkeypatch):
    monkeypatch.setattr(A, "device_key", lambda: "tensorflow:Fake GPU")
    monkeypatch.setattr(
        A, "candidates", lambda key: [("float32", False), ("mixed_bfloat16", False)]
    )
    monkeypatch.setattr(
        A, "MEASURE_DEFAULTS", dict(model="_tiny", input_size=8, batch_size=4, steps=1)
    )
    calls = []
    real = A.time_training
    monkeypatch.setattr(A, "time_training", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = resolve_precision("auto")
    entry = json.loads(cache.read_text())["tensorflow:Fake GPU"]
    fastest = max(entry["measured"], key=lambda r: r["images_per_s"])
    assert first == entry["precision"] == fastest["precision"]
    assert len(calls) == 2
    assert resolve_jit_compile("auto") is False and len(calls) == 2  # cached, not re-timed


def test_no_finite_loss_is_refused(cache):
    rows = [dict(precision="float32", jit_compile=False, images_per_s=1.0, loss=float("inf"))]
    with pytest.raises(ValueError, match="finite loss"):
        A.record_choice("tensorflow:Fake GPU", rows, "test")
    assert not cache.exists()
