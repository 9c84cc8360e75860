"""Build of the sparsegen wheel: the checkout's ``hw``, ``gen`` and ``sim`` become ``sparsegen.hw/gen/sim``.

In a checkout the three packages are top-level (``from gen import load_config``). Installed beside other
distributions, generic top-level names would clash (PyPI has distributions called ``gen`` and ``hw``), so the wheel
holds one top-level package, ``sparsegen``: ``package_dir`` maps ``sparsegen.hw`` to ``hw/`` and so on, and
:class:`BuildPy` rewrites every absolute import of ours, and every string naming one of our modules (the dynamic
imports: ``"gen.systolic.config"``, ``"sim.gemm.cocotb_engine"``), to its ``sparsegen.`` name.

An editable install (``pip install -e .``, what ``make`` does) keeps the checkout layout instead
(:class:`EditableWheel`): ``hw``, ``gen``, ``sim`` and ``sparsegen`` are imported from the checkout as they are.
The metadata lives in ``pyproject.toml``.
"""

import ast
import re
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PREFIX = "sparsegen"
PACKAGES = ("hw", "gen", "sim")
# data directories (no __init__.py): packages of their own, so setuptools ships them without warnings
PACKAGE_DATA = {"gen.configs": ["*.toml"], "gen.compiler.data": ["*.npz"], "gen.network.data": ["*.npz"],
                "sim.synth.models": ["*.v"]}


def _checkout_packages(*names):
    """``hw``, ``hw.formats``, ..., and the data directories of :data:`PACKAGE_DATA`."""
    found = find_namespace_packages(include=[f"{name}*" for name in names], exclude=["*__pycache__*"])
    return [p for p in found if (Path(*p.split(".")) / "__init__.py").is_file() or p in PACKAGE_DATA]


def _ours(name):
    return name is not None and name.split(".")[0] in PACKAGES


def rewrite_imports(source, modules, prefix=PREFIX, filename="<source>"):
    """``source`` with our absolute imports and module-name strings moved under ``prefix``.

    ``from hw.x import y`` → ``from sparsegen.hw.x import y``; ``import hw`` → ``from sparsegen import hw``;
    ``import gen.x as y`` → ``import sparsegen.gen.x as y``; a string literal equal to a dotted name in
    ``modules`` (``"gen.systolic.config"``) → ``"sparsegen.gen.systolic.config"``. Strings that only look like one
    (``"sim.log"``) stay. ``import gen.x`` without ``as`` (it would bind ``sparsegen``) and several names in one
    ``import`` raise ``ValueError``.
    """
    tree = ast.parse(source, filename=filename)
    lines = source.splitlines(keepends=True)
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line))

    def span(node):
        """String indices of ``node``'s source (ast columns count UTF-8 bytes)."""
        def index(lineno, col):
            return line_starts[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())
        return index(node.lineno, node.col_offset), index(node.end_lineno, node.end_col_offset)

    in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    edits = []   # (start, end, replacement)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _ours(node.module):
            after_from = re.compile(r"from\s+").match(source, span(node)[0]).end()
            edits.append((after_from, after_from, f"{prefix}."))
        elif isinstance(node, ast.Import) and any(_ours(alias.name) for alias in node.names):
            where = f"{filename}:{node.lineno}"
            if len(node.names) > 1:
                raise ValueError(f"{where}: import one of our modules per statement")
            (alias,) = node.names
            if alias.asname is None and "." in alias.name:
                package, _, module = alias.name.rpartition(".")
                raise ValueError(f"{where}: `import {alias.name}` binds `{alias.name.split('.')[0]}`: "
                                 f"write `from {package} import {module}`")
            text = (f"from {prefix} import {alias.name}" if alias.asname is None else
                    f"import {prefix}.{alias.name} as {alias.asname}")
            edits.append((*span(node), text))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value
              and node.value in modules and id(node) not in in_fstrings):
            start, end = span(node)
            quote = source[start]
            plain = source[start:end] == f"{quote}{node.value}{quote}"     # keep the quotes unless it is fancy
            edits.append((start, end, f"{quote}{prefix}.{node.value}{quote}" if plain else
                          repr(f"{prefix}.{node.value}")))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


class BuildPy(build_py):
    """``build_py`` that rewrites each module it copies with :func:`rewrite_imports` (not in editable mode)."""

    def build_module(self, module, module_file, package):
        outfile, copied = super().build_module(module, module_file, package)
        modules = self._our_modules()
        text = Path(module_file).read_text(encoding="utf-8")
        Path(outfile).write_text(rewrite_imports(text, modules, filename=module_file), encoding="utf-8")
        return outfile, copied

    def _our_modules(self):
        """Checkout names (``gen.systolic.config``) of every package and module the wheel holds."""
        if not hasattr(self, "_modules"):
            names = set(self.packages)
            names |= {f"{package}.{module}" for package, module, _ in self.find_all_modules() if module != "__init__"}
            self._modules = {name.removeprefix(f"{PREFIX}.") for name in names}
        return self._modules


class EditableWheel(editable_wheel):
    """Editable install of the checkout layout: top-level ``hw``, ``gen``, ``sim`` and ``sparsegen``, unrewritten."""

    def finalize_options(self):
        # With the wheel's layout the editable finder would load hw/ as sparsegen.hw, whose unrewritten
        # `from hw.x import ...` then finds no top-level hw: map the checkout's own names instead.
        dist = self.distribution
        dist.packages = _checkout_packages(*PACKAGES, PREFIX)
        dist.package_dir = {}
        dist.package_data = dict(PACKAGE_DATA)
        super().finalize_options()


def wheel_layout():
    """``packages``, ``package_dir`` and ``package_data`` of the wheel: everything under ``sparsegen``."""
    packages = [PREFIX] + [f"{PREFIX}.{name}" for name in _checkout_packages(*PACKAGES)]
    package_dir = {PREFIX: PREFIX} | {f"{PREFIX}.{name}": name for name in PACKAGES}
    package_data = {f"{PREFIX}.{name}": patterns for name, patterns in PACKAGE_DATA.items()}
    return {"packages": packages, "package_dir": package_dir, "package_data": package_data}


if __name__ == "__main__":
    setup(**wheel_layout(), cmdclass={"build_py": BuildPy, "editable_wheel": EditableWheel})
