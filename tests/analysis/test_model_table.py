"""Per-stage parameter/MAC table and the `summary` command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

from keras_resnet import count_flops, create_model, model_table
from keras_resnet.analysis import format_table, with_input_shape
from keras_resnet.cli import main
from keras_resnet.commands.summary import ZOO_HEADER, zoo_row
from keras_resnet.models.registry import records


def test_resnet50_macs_match_torchvision():
    rows = model_table("resnet50", input_shape=(224, 224, 3))
    total = rows[-1]
    # torchvision metadata: ResNet-50 4.09 GFLOPs (multiply-adds) at 224 px.
    assert round(total["macs"] / 1e9, 2) == 4.09
    assert total["trainable_params"] == 25_557_032
    names = ["stem", "stage1", "stage2", "stage3", "stage4", "head", "total"]
    assert [r["name"] for r in rows] == names
    assert rows[3]["output_shape"] == (14, 14, 1024)  # stage3
    assert sum(r["params"] for r in rows[:-1]) == total["params"]


def test_resnet18_macs_and_model_with_unknown_size():
    assert round(count_flops("resnet18", input_shape=(224, 224, 3)) / 1e9, 2) == 1.81
    model = create_model("resnet18")  # spatial size unknown
    with pytest.raises(ValueError, match="pass `input_shape`"):
        model_table(model)
    assert round(count_flops(model, input_shape=(224, 224, 3)) / 1e9, 2) == 1.81
    assert with_input_shape(model, (64, 64, 3)).input_shape == (None, 64, 64, 3)


def test_grouped_conv_macs_are_divided_by_groups():
    dense = count_flops(create_model("_tiny", input_shape=(16, 16, 3)))
    grouped = count_flops(create_model("_tiny", groups=2, input_shape=(16, 16, 3)))
    # the two first 3x3 convs of the blocks: 16*16*8*9*8 + 8*8*16*9*8 MACs, halved
    assert dense - grouped == (16 * 16 * 8 * 9 * 8 + 8 * 8 * 16 * 9 * 8) // 2


def test_format_table_and_bad_model():
    text = format_table(model_table("_tiny", (16, 16, 3)))
    assert "stage2" in text and "total" in text
    with pytest.raises(TypeError, match="keras.Model or a variant name"):
        model_table(42)


def test_summary_command(capsys):
    assert main(["summary", "resnet20", "--input-shape", "32,32,3"]) == 0
    out = capsys.readouterr().out
    assert "269,722" in out and "stage3" in out
    assert main(["summary", "--list"]) == 0
    assert "resnext50_32x4d" in capsys.readouterr().out
    assert main(["summary", "resnet20", "--input-shape", "32,32"]) == 2
    assert "three positive integers" in capsys.readouterr().err
    assert main(["summary", "resnet51"]) == 2
    assert "Unknown model name" in capsys.readouterr().err


def _zoo_rows(path: str) -> list[str]:
    """The rows of the zoo table (the one under summary --zoo's header) in a Markdown file."""
    text = (REPO / path).read_text()
    table = text[text.index(ZOO_HEADER.splitlines()[0]) :].split("\n\n")[0]
    return [line for line in table.splitlines() if line.startswith("| `")]


def _docs_zoo_rows() -> list[str]:
    return _zoo_rows("docs/models.md")


def test_readme_zoo_table_is_the_docs_table_plus_densenets():
    rows = _zoo_rows("README.md")
    names = [row.split("`")[1] for row in rows]
    assert rows[: len(_docs_zoo_rows())] == _docs_zoo_rows()
    dense = [r.name for r in records() if r.family == "densenet" and r.input_shape[0] == 224]
    assert names[len(_docs_zoo_rows()) :] == dense


def test_docs_zoo_table_lists_the_registry_and_matches_summary():
    rows = _docs_zoo_rows()
    names = [row.split("`")[1] for row in rows]
    assert names == [r.name for r in records() if r.family == "resnet"]
    for name in ("resnet20", "plain20", "wrn16_8"):  # cheap rows, rendered as summary does
        assert zoo_row(name) == rows[names.index(name)]


@pytest.mark.slow
def test_docs_and_readme_zoo_tables_equal_summary_zoo(capsys):
    assert main(["summary", "--zoo"]) == 0
    rendered = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    by_name = {row.split("`")[1]: row for row in rendered}
    for path in ("docs/models.md", "README.md"):  # README's DenseNet rows included
        rows = _zoo_rows(path)
        assert rows and rows == [by_name.get(row.split("`")[1]) for row in rows], path


def test_summary_uses_the_variant_input_by_default(capsys):
    assert main(["summary", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "input (32, 32, 3)" in out and "269,722" in out


def test_summary_zoo_streams_rows_at_small_input_size():
    """The real command in a fresh process: rows arrive one by one while it still runs."""
    argv = [sys.executable, "-m", "keras_resnet", "summary", "--zoo", "--input-size", "32"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        header = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        rows = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        still_running = proc.poll() is None  # 48 more variants to go
    finally:
        proc.kill()
        proc.communicate()
    assert "\n".join(header) == ZOO_HEADER
    names = [r.name for r in records()][:3]
    assert [row.split("`")[1] for row in rows] == names
    assert still_running
    assert rows[0] == zoo_row(names[0], 32)
    docs = {row.split("`")[1]: row.split(" | ") for row in _docs_zoo_rows()}
    for name, row in zip(names, rows):
        cells = row.split(" | ")
        assert cells[3] == "32" and docs[name][3] == "224"  # counted at the small input ...
        assert cells[:3] + cells[4:5] == docs[name][:3] + docs[name][4:5]  # ... same params
    assert main(["summary", "--zoo", "--input-size", "8"]) == 2
