"""``import keras_resnet`` changes nothing in the importing process but Keras' registry.

Each check runs in a fresh Python process that has imported Keras (which itself sets
the recursion limit and ``TF_CPP_MIN_LOG_LEVEL``): importing keras_resnet then leaves
stderr the same file, and the recursion limit, TensorFlow's log level and the
environment as they were, also in a program started with ``python -m`` another module
(during whose start-up ``sys.argv[0]`` is ``"-m"``, as for keras_resnet's command line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, logging, os, sys
def state():
    return {"stderr": [os.fstat(2).st_dev, os.fstat(2).st_ino],
            "recursion": sys.getrecursionlimit(),
            "tf_log": logging.getLogger("tensorflow").level,
            "env": {k: v for k, v in os.environ.items() if "TF_" in k or "KERAS" in k}}
import keras
before = state()
import keras_resnet
after = state()
registered = sorted(n for n in keras.saving.get_custom_objects() if n.startswith("keras_resnet>"))
print(json.dumps({"before": before, "after": after, "registered": registered}))
"""


def _run(argv: list[str], cwd) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_changes_nothing_in_a_script(tmp_path):
    report = _run([sys.executable, "-c", PROBE], tmp_path)
    assert report["after"] == report["before"]
    assert len(report["registered"]) == 9  # the layers, schedules and optimizer


def test_import_changes_nothing_in_another_python_m_program(tmp_path):
    tool = tmp_path / "tool"
    tool.mkdir()
    (tool / "__init__.py").write_text(PROBE)  # imported while sys.argv[0] == "-m"
    (tool / "__main__.py").write_text("")
    report = _run([sys.executable, "-m", "tool"], tmp_path)
    assert report["after"] == report["before"]


@pytest.mark.slow  # builds resnet1202 (about 20 s)
def test_building_a_deep_network_raises_the_recursion_limit(tmp_path):
    code = (
        "import sys, keras, keras_resnet\n"
        "before = sys.getrecursionlimit()\n"
        "keras_resnet.create_model('resnet1202', input_shape=(32, 32, 3), classes=2)\n"
        "from keras_resnet.models.depth import frames_needed\n"
        "print(before, sys.getrecursionlimit(), frames_needed(600))\n"
    )
    report = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    before, now, needed = map(int, report.stdout.split())
    assert before < needed == now
