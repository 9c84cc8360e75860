"""The house rules of the source tree (docs/architecture.md), checked on every module's syntax tree.

- Imports go one way: ``hw`` ← ``gen`` ← ``sim`` ← ``tests``. ``hw`` imports only ``hw``; ``gen`` imports ``hw``
  and ``gen``; ``sim`` imports ``hw``, ``gen`` and ``sim``; nothing imports ``tests``. ``sparsegen`` (the installed
  entry point) imports only ``gen``, and nothing imports it. Commands of the ``sim`` layer reach ``gen.cli`` as
  plugins (entry-point group ``sparsegen.commands`` → ``sparsegen.commands.EXTENSIONS``), never by import.
- ``hw/formats/`` is numpy-only: it imports no Amaranth and nothing of ours outside ``hw/formats`` and ``hw.checks``.
- No module imports a private (``_name``) name of another module, or reads one as ``module._name``.
- One design is one folder per layer, named the same: every design folder in ``hw/`` has its ``gen/``, ``sim/``
  and ``tests/`` folders.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("hw", "gen", "sim", "tests")
PACKAGES = (*LAYERS, "sparsegen")
ALLOWED = {"hw": {"hw"}, "gen": {"hw", "gen"}, "sim": {"hw", "gen", "sim"}, "tests": {"hw", "gen", "sim", "tests"},
           "sparsegen": {"gen"}}
DESIGNS = ("systolic", "gemm", "rram", "axi")     # axi: the bus wrappers, a cross-cutting area with all four layers


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree):
    """``(line, imported module, names)`` of every import statement (relative ones resolved to a marker)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, ("." * node.level) + (node.module or ""), tuple(a.name for a in node.names)


def test_imports_go_one_way():
    bad = []
    for path, tree in _modules():
        layer = path.relative_to(ROOT).parts[0]
        for line, module, _ in _imports(tree):
            top = module.split(".")[0]
            if module.startswith("."):
                bad.append(f"{path.relative_to(ROOT)}:{line}: relative import {module!r} (write it absolute)")
            elif top in PACKAGES and top not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {layer}/ imports {module}")
    assert not bad, "imports must go hw ← gen ← sim ← tests:\n" + "\n".join(bad)


def test_formats_are_numpy_only():
    bad = []
    for path in sorted((ROOT / "hw" / "formats").rglob("*.py")):
        for line, module, names in _imports(ast.parse(path.read_text())):
            top = module.split(".")[0]
            ours_ok = module.startswith("hw.formats") or module == "hw.checks" or (module == "hw" and names == ("checks",))
            if top == "amaranth" or (top in PACKAGES and not ours_ok):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert not bad, "hw/formats must stay numpy-only:\n" + "\n".join(bad)


def test_no_private_names_cross_modules():
    bad = []
    for path, tree in _modules():
        here = _module_name(path)
        aliases = {}
        for line, module, names in _imports(tree):
            if module.split(".")[0] not in PACKAGES or module == here:
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):     # dunders (__version__) are public
                    bad.append(f"{path.relative_to(ROOT)}:{line}: imports private {module}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: reads private {aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names stay in their module:\n" + "\n".join(bad)


@pytest.mark.parametrize("design", DESIGNS)
def test_one_folder_per_design_per_layer(design):
    for layer in LAYERS:
        assert (ROOT / layer / design).is_dir(), f"{layer}/{design}/ is missing"


def test_command_plugins_go_one_way():
    """``gen.cli`` loads ``gen`` modules by name and ``sim`` commands only through the entry-point plugin."""
    import importlib
    import tomllib

    from gen import cli

    commands = importlib.import_module("sparsegen.commands")   # by name: nothing imports sparsegen

    assert all(name.split(".")[0] == "gen" for name in cli.EXTENSIONS), cli.EXTENSIONS
    assert all(name.split(".")[0] == "sim" for name in commands.EXTENSIONS), commands.EXTENSIONS
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][cli.PLUGIN_GROUP] == {"sim": "sparsegen.commands"}


def test_no_environment_is_tracked():
    """The virtual environment, build output and simulator runs are never committed (a worktree's `.venv` symlink
    once was: checking it out replaced the real environment)."""
    import shutil
    import subprocess

    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "--", ".venv", "build", "sim_build", "dist"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert not tracked, f"tracked environment/build files: {tracked}"
