"""Every ``keras_resnet`` name that the README, docs, notebooks and benchmarks use exists."""

from __future__ import annotations

import importlib
import re

import pytest
from conftest import REPO

FILES = sorted(
    [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("notebooks/*.ipynb")]
    + list(REPO.glob("benchmarks/*.py"))
)
# `from keras_resnet.x import a, b` (or a parenthesized list), and dotted names
# `keras_resnet.x.y` that are not a format tag such as "keras_resnet.saved_model/1".
FROM_IMPORT = re.compile(r"from (keras_resnet[\w.]*) import (?:\(([\w, \n]+)\)|([\w, ]+))")
DOTTED = re.compile(r"\b(keras_resnet(?:\.\w+)+)\b(?!/)")


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attribute in parts[i:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_named_module_and_function_exists(path):
    text = path.read_text().replace("\\n", "\n")  # notebooks keep code as JSON strings
    names = [m[1] for m in DOTTED.finditer(text)]
    for match in FROM_IMPORT.finditer(text):
        listed = re.split(r"[,\s]+", re.sub(r"\s+as\s+\w+", "", match[2] or match[3]))
        names += [f"{match[1]}.{name}" for name in listed if name]
    missing = []
    for name in sorted(set(names)):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"{path.name} names what does not exist: {missing}"
