"""The package's import graph, read with ``ast`` (imports inside functions included).

It has no cycle, no module imports another module's ``_private`` names, ``training``
does not import ``export``, and the command modules do not import each other. An
import of ``a.b.c`` counts as an arrow to the module ``a.b.c`` only (a package's
``__init__`` runs first, but a package facade that re-exports its own modules is
not a cycle with them). Imports made with ``importlib`` are not read.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_resnet"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str | None]]:
    """``(target module, private name taken from it or None)`` for every import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, str | None]] = []
    aliases: dict[str, str] = {}  # local name -> our module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    found.append((alias.name, None))
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, path)
            if source not in MODULES:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, None))
                    aliases[alias.asname or alias.name] = submodule
                else:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    found.append((source, alias.name if private else None))
    for node in ast.walk(tree):  # module._name through an imported module
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = aliases.get(node.value.id)
            if target and node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append((target, node.attr))
    return found


GRAPH = {m: sorted({t for t, _ in _imports(m) if t != m}) for m in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def _arrows(source: str, target: str) -> list[str]:
    """Arrows from modules under ``source`` to modules under ``target``."""

    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if under(m, source)
        for t in targets
        if under(t, target)
    ]


def test_the_graph_is_read():
    assert len(MODULES) > 60
    assert "keras_resnet.models.factory" in GRAPH["keras_resnet.commands.summary"]


def test_no_import_cycle():
    assert _cycles() == []


def test_no_module_takes_another_modules_private_names():
    taken = [
        f"{m} takes {name} from {t}"
        for m in MODULES
        for t, name in _imports(m)
        if name is not None and t != m and not t.endswith("._startup")
    ]
    assert taken == []


def test_training_does_not_import_export():
    assert _arrows("keras_resnet.training", "keras_resnet.export") == []


def test_command_modules_do_not_import_each_other():
    arrows = [
        a
        for a in _arrows("keras_resnet.commands", "keras_resnet.commands")
        if not a.endswith(" -> keras_resnet.commands")
    ]
    assert arrows == []


def test_a_cycle_and_a_private_import_are_found(monkeypatch):
    # the checks see what they are meant to see: a made-up graph with a circle
    monkeypatch.setitem(GRAPH, "keras_resnet.cli", ["keras_resnet.__main__"])
    monkeypatch.setitem(GRAPH, "keras_resnet.__main__", ["keras_resnet.cli"])
    assert ["keras_resnet.__main__", "keras_resnet.cli"] in _cycles()
