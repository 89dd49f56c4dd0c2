"""The package's layers, held by reading the source (AST): what may import what.

- ``perturb_core`` never imports Streamlit (it is importable without it).
- Foundations (config, errors, memo, processes, spec, serialize, kg, chem, data, llm, metrics) import no
  method code (retrieval, evidence, evaluate, cli); retrieval and evidence import neither each
  other nor evaluate/cli; evaluate imports no cli.
- No private name or private module crosses a subpackage boundary; the app imports only
  public names of the core.
- No module is past the size where it asks to be split.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import perturb_core

PACKAGE = Path(perturb_core.__file__).parent
ROOT = PACKAGE.parent
MAX_LINES = 620  # STYLE.md: "a module past ~600 lines is asking to be split"

METHOD_CODE = ("retrieval", "evidence", "evaluate", "cli")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # importer (first component under perturb_core) -> subpackages it may not import
    **{
        base: METHOD_CODE
        for base in (
            "config",
            "errors",
            "memo",
            "processes",
            "spec",
            "serialize",
            "kg",
            "chem",
            "data",
            "llm",
            "metrics",
        )
    },
    "retrieval": ("evidence", "evaluate", "cli"),
    "evidence": ("retrieval", "evaluate", "cli"),
    "evaluate": ("cli",),
    "testing": ("cli",),
}


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, imported names) of every import in a file (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield node.lineno, module, tuple(a.name for a in node.names)


def _top(module: str) -> str | None:
    """The first component below ``perturb_core`` (``perturb_core.data.fetch`` -> ``data``)."""
    parts = module.split(".")
    if parts[0] != "perturb_core" or len(parts) < 2:
        return None
    return parts[1]


def _owner(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    return rel[0]


def _private_parts(module: str) -> list[str]:
    return [p for p in module.split(".")[1:] if p.startswith("_") and not p.startswith("__")]


CORE_FILES = _modules(PACKAGE)
APP_FILES = [ROOT / "app.py", *_modules(ROOT / "pages")]


def test_the_core_never_imports_streamlit() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in CORE_FILES
        for line, module, _ in _imports(p)
        if module.split(".")[0] == "streamlit"
    ]
    assert not offenders, f"perturb_core must not import streamlit: {offenders}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers(path: Path) -> None:
    owner = _owner(path)
    banned = FORBIDDEN.get(owner, ())
    bad = [
        f"line {line}: {module}"
        for line, module, _ in _imports(path)
        if _top(module) in banned and _top(module) != owner
    ]
    assert not bad, f"{path.relative_to(ROOT)} ({owner}) may not import {banned}: {bad}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_names_across_subpackages(path: Path) -> None:
    owner = _owner(path)
    bad = []
    for line, module, names in _imports(path):
        top = _top(module)
        if top is None or top == owner:
            continue
        private = _private_parts(module) + [n for n in names if n.startswith("_")]
        if private:
            bad.append(f"line {line}: from {module} import {', '.join(names)}")
    assert not bad, f"{path.relative_to(ROOT)} reaches into another subpackage's privates: {bad}"


@pytest.mark.parametrize("path", APP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_app_imports_only_public_names(path: Path) -> None:
    bad = []
    for line, module, names in _imports(path):
        if _top(module) is None:
            continue
        private = _private_parts(module) + [n for n in names if n.startswith("_")]
        if private:
            bad.append(f"line {line}: from {module} import {', '.join(names)}")
    assert not bad, f"{path.relative_to(ROOT)} imports private core names: {bad}"


@pytest.mark.parametrize("path", [*CORE_FILES, *APP_FILES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, (
        f"{path.relative_to(ROOT)} has {n} lines (> {MAX_LINES}): split it along its concepts"
    )


_STATEFUL = {
    "dict",
    "OrderedDict",
    "defaultdict",
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "Lock",
    "RLock",
}


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_no_module_level_dict_caches() -> None:
    """State lives on objects (Memo fields, cached_property) or in functools caches keyed by inputs."""
    bad = []
    for path in CORE_FILES:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            target = value = None
            if isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            if not isinstance(target, ast.Name) or value is None:
                continue
            if isinstance(value, ast.Dict) and not value.keys:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {target.id} = {{}}")
            elif isinstance(value, ast.Call) and _called(value) in _STATEFUL:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {target.id} = {_called(value)}()")
    assert not bad, f"module-level caches or locks: {bad}"
