"""Docstring examples of the export modules run, and every public function has one."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    # export's examples write and reload a dozen small artifacts (about 20 s)
    pytest.param("keras_resnet.export", marks=pytest.mark.slow),
    "keras_resnet.commands.export",
    "keras_resnet.commands.predict",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("module_name", [getattr(m, "values", [m])[0] for m in MODULES])
def test_public_functions_have_examples(module_name):
    module = importlib.import_module(module_name)
    names = [n for n in dir(module) if not n.startswith("_")]
    checked = 0
    for name in names:
        obj = getattr(module, name)
        if not callable(obj) or getattr(obj, "__module__", None) != module_name:
            continue
        checked += 1
        assert obj.__doc__, name
        assert "Example" in obj.__doc__ or name in ("register", "run"), name
        if name not in ("register", "run"):
            assert "Args:" in obj.__doc__, name
    assert checked >= 2
