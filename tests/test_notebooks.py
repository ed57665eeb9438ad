"""Every notebook runs top to bottom in quick mode; committed notebooks are clean.

The notebooks are executed in a fresh ``python3`` kernel with ``KERAS_RESNET_QUICK=1``
(shorter training, smaller tables) in a temporary working directory; the executed
copies are discarded, so the committed outputs (from a full run) are never rewritten.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import HAVE_MNIST, MNIST_DIR, MNIST_ENV

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


# Ten notebooks in quick mode take several minutes on 2 cores: run with -m slow.
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")  # provides the "python3" kernel spec fallback
    if path.stem == "10_cifar10":  # the notebook reads the user's CIFAR files and checkpoints
        data = ROOT.parent / "shared" / "data"
        if not (data / "cifar10-subset").is_dir() or not (data / "cifar10-checkpoints").is_dir():
            pytest.skip(f"the CIFAR-10 subset and checkpoints are absent from {data}")
        monkeypatch.setenv("CIFAR10", str(data / "cifar10-subset"))
        monkeypatch.setenv("CIFAR10_CHECKPOINTS", str(data / "cifar10-checkpoints"))
        results = ROOT / "benchmarks" / "results" / "cifar_vs_pytorch.jsonl"
        monkeypatch.setenv("CIFAR10_BENCHMARK_RESULTS", str(results))
    if HAVE_MNIST:  # notebooks 08 and 09 read the MNIST IDX files from this folder
        monkeypatch.setenv(MNIST_ENV, str(MNIST_DIR))
    monkeypatch.setenv("KERAS_RESNET_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout's package, whatever is installed
    paths = [str(ROOT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors


_MACHINE_PATH = re.compile(r"(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\\\)")
# a single leading underscore (dunders such as __version__ are public)
# TensorFlow's C++ start-up log lines (Abseil format) and their preamble: log noise
_TF_LOG_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog"
    r"|[IEWF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\])",
    re.M,
)
_PRIVATE_USE = re.compile(r"keras_resnet(\.\w+)*\._(?!_)|from keras_resnet[.\w]* import _(?!_)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    with_outputs = [c for c in code if c.get("outputs")]
    assert code and len(with_outputs) >= len(code) / 2 and code[-1].get("outputs"), (
        "commit notebooks with the outputs of a full run"
    )
    for cell in code:
        source = "".join(cell["source"])
        assert not _PRIVATE_USE.search(source), f"private keras_resnet name used: {source[:200]}"
        assert "execution" not in cell.get("metadata", {}), "strip execution timestamps"
        for out in cell["outputs"]:
            assert out["output_type"] != "error", out
            text = json.dumps({k: v for k, v in out.get("data", {}).items() if k != "image/png"})
            text += "".join(out.get("text", []))
            assert not _MACHINE_PATH.search(text), f"machine path in output: {text[:300]}"
            assert not _TF_LOG_NOISE.search(text), f"TensorFlow log noise in output: {text[:300]}"
    assert path.stat().st_size < 1_500_000, "keep committed notebooks small"
