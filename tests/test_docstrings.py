"""Every public function's docstring example runs (doctest), in every module of the package."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "keras_resnet",
    "keras_resnet.cli",
    "keras_resnet._startup",
    "keras_resnet.optimizers",
    "keras_resnet.saving",
    # models: records, factory, shared pieces, the two families
    "keras_resnet.models.registry",
    "keras_resnet.models.factory",
    "keras_resnet.models.heads",
    "keras_resnet.models.ops",
    "keras_resnet.models.naming",
    "keras_resnet.models.depth",
    "keras_resnet.models.resnet.config",
    "keras_resnet.models.resnet.blocks",
    "keras_resnet.models.resnet.builder",
    "keras_resnet.models.resnet.zoo",
    "keras_resnet.models.densenet.config",
    "keras_resnet.models.densenet.blocks",
    "keras_resnet.models.densenet.builder",
    "keras_resnet.models.densenet.zoo",
    # layers
    "keras_resnet.layers",
    "keras_resnet.layers.shortcuts",
    "keras_resnet.layers.pooling",
    pytest.param("keras_resnet.layers.grouped_conv", marks=pytest.mark.slow),  # per backend
    "keras_resnet.layers.fused_batch_norm",
    # utils
    "keras_resnet.utils.checks",
    "keras_resnet.utils.config",
    "keras_resnet.utils.atomic",
    "keras_resnet.utils.images",
    # analysis
    "keras_resnet.analysis",
    "keras_resnet.analysis.tables",
    "keras_resnet.analysis.gradients",
    pytest.param("keras_resnet.analysis.lesion", marks=pytest.mark.slow),  # trains small models
    # weights (keras.applications' examples build ResNet50 several times)
    "keras_resnet.weights",
    "keras_resnet.weights.core",
    "keras_resnet.weights.torch_checkpoints",
    "keras_resnet.weights.keras_hub_presets",
    "keras_resnet.weights.torch_densenet",
    pytest.param("keras_resnet.weights.keras_applications", marks=pytest.mark.slow),
    pytest.param("keras_resnet.weights.keras_files", marks=pytest.mark.slow),
    # export: the examples write and reload small artifacts (about 20 s)
    pytest.param("keras_resnet.export.saved_model", marks=pytest.mark.slow),
    pytest.param("keras_resnet.export.tflite", marks=pytest.mark.slow),
    pytest.param("keras_resnet.export.serving", marks=pytest.mark.slow),
    "keras_resnet.export.common",
    # commands
    "keras_resnet.commands",
    "keras_resnet.commands.summary",
    "keras_resnet.commands.export",
    "keras_resnet.commands.predict",
    "keras_resnet.commands.train",
    "keras_resnet.commands.evaluate",
    pytest.param("keras_resnet.commands.tune", marks=pytest.mark.slow),  # a 2-trial search
    # training: train()'s and TrainResult's examples train _tiny for 1-2 epochs (about
    # 5 s); the rest build optimizers / callbacks / configs
    "keras_resnet.training.config",
    "keras_resnet.training.schedules",
    "keras_resnet.training.factories",
    "keras_resnet.training.callbacks",
    "keras_resnet.training.ema",  # fits a 2-weight model for 2 epochs
    "keras_resnet.training.precision",
    "keras_resnet.training.auto_choice",
    "keras_resnet.training.fine_tune",
    pytest.param("keras_resnet.training.distributed_loop", marks=pytest.mark.slow),
    "keras_resnet.training.distribute",
    "keras_resnet.training.run",
    "keras_resnet.training.rundir",
    "keras_resnet.training.messages",
    "keras_resnet.training.summary",
    "keras_resnet.training.backup",
    "keras_resnet.training.memory",
    "keras_resnet.training.fitting",
    "keras_resnet.training.evaluation",
    "keras_resnet.training.confusion",
    # data: the examples read small data sets and build pipelines
    pytest.param("keras_resnet.data", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.datasets", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.pipeline", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.epochs", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.sources", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.augment", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.folders", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.tfds_source", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.config", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.arrays", marks=pytest.mark.slow),
    pytest.param("keras_resnet.data.cifar", marks=pytest.mark.slow),
    # tuning: the space and data helpers are quick; the hypermodels' and the search's
    # examples build several networks and run a (skipped) search
    "keras_resnet.tuning.space",
    "keras_resnet.tuning.trial",
    pytest.param("keras_resnet.tuning.base", marks=pytest.mark.slow),
    pytest.param("keras_resnet.tuning.resnet", marks=pytest.mark.slow),
    pytest.param("keras_resnet.tuning.densenet", marks=pytest.mark.slow),  # fits a model
    pytest.param("keras_resnet.tuning.search", marks=pytest.mark.slow),
    pytest.param("keras_resnet.tuning.run", marks=pytest.mark.slow),  # a 2-trial search
]


# Packages whose ``__init__`` only re-exports, and the ``python -m`` entry point.
NO_EXAMPLES = {
    "keras_resnet.__main__",
    "keras_resnet.export",
    "keras_resnet.models",
    "keras_resnet.models.densenet",
    "keras_resnet.models.resnet",
    "keras_resnet.utils",
    "keras_resnet.training",
    "keras_resnet.tuning",
}


def _listed(entry) -> str:
    return entry if isinstance(entry, str) else entry.values[0]


def test_every_module_has_its_doctests_run():
    import pkgutil

    import keras_resnet

    package = {m.name for m in pkgutil.walk_packages(keras_resnet.__path__, "keras_resnet.")}
    listed = {_listed(m) for m in MODULES}
    unlisted = package - listed - NO_EXAMPLES
    assert not unlisted, f"modules whose doctests never run: {sorted(unlisted)}"


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if _public_callables(module, module_name):
        assert result.attempted > 0, f"{module_name} lists no example that runs"


def _public_callables(module, module_name: str) -> list[str]:
    """The module's own public functions and classes, less the CLI's register/run."""
    return [
        name
        for name in dir(module)
        if not name.startswith("_")
        and name not in ("register", "run")
        and callable(getattr(module, name))
        and getattr(getattr(module, name), "__module__", None) == module_name
    ]


# Modules whose public functions must also document their arguments (``Args:``).
DOCUMENTED_ARGS = (
    "keras_resnet.export.saved_model",
    "keras_resnet.export.tflite",
    "keras_resnet.export.serving",
    "keras_resnet.commands.export",
    "keras_resnet.commands.predict",
)


@pytest.mark.parametrize("module_name", [getattr(m, "values", [m])[0] for m in MODULES[1:]])
def test_public_functions_have_examples(module_name):
    module = importlib.import_module(module_name)
    checked = 0
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if callable(obj):
            checked += 1
            assert obj.__doc__, name
            assert "Example" in obj.__doc__ or name in ("register", "run"), name
            if module_name in DOCUMENTED_ARGS and name not in ("register", "run"):
                assert "Args:" in obj.__doc__, name
    if module_name in DOCUMENTED_ARGS:
        # tflite.py holds one public function (export_tflite); the others hold several
        assert checked >= (1 if module_name == "keras_resnet.export.tflite" else 2), module_name


@pytest.mark.parametrize("module_name", [_listed(m) for m in MODULES])
def test_every_example_shows_its_output(module_name):
    # An example whose lines all print nothing checks only that it does not raise.
    module = importlib.import_module(module_name)
    silent = [
        test.name
        for test in doctest.DocTestFinder().find(module, module_name)
        if test.examples and not any(example.want.strip() for example in test.examples)
    ]
    assert not silent, f"examples that show no output: {silent}"
