"""The package layout's rule: imports only point down (docs/architecture.md, "Layers").

    ui  ->  cli (commands, jobs)  ->  steps  ->  workspace  ->  compute packages, in COMPUTE_ORDER

Read from the source with ``ast`` (imports inside functions and ``TYPE_CHECKING`` blocks count too), so a
wrong-way import fails here before it becomes a cycle or drags the CLI or streamlit into the core. Inside the
compute layer a package imports only the packages before it in COMPUTE_ORDER, and no two modules of one
package import each other, directly or round a longer circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "defuse"
# the compute packages, lowest first: each imports only those before it (docs/architecture.md draws this order)
COMPUTE_ORDER = ("runtime", "data", "nets", "identify", "distill", "label", "correct", "distributed", "suite",
                 "evaluation")
COMPUTE = COMPUTE_ORDER
# layer -> what it may not import (a module prefix; "streamlit" is the third-party package)
FORBIDDEN = {
    "runtime": ("defuse.data", "defuse.nets", "defuse.identify", "defuse.distill", "defuse.label",
                "defuse.correct", "defuse.workspace", "defuse.steps", "defuse.cli", "defuse.ui", "streamlit"),
    "compute": ("defuse.workspace", "defuse.steps", "defuse.cli", "defuse.ui", "streamlit"),
    "workspace": ("defuse.steps", "defuse.cli", "defuse.ui", "streamlit"),
    "steps": ("defuse.cli", "defuse.ui", "streamlit"),
    "cli": ("defuse.ui", "streamlit"),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] == "runtime":
        return "runtime"
    if parts[1] in COMPUTE:
        return "compute"
    return {"workspace": "workspace", "steps": "steps", "cli": "cli", "ui": "ui"}.get(parts[1])


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``; ``from . import x`` yields ``package.x``."""
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import in package ``root`` that points up a layer, as ``file:line: layer imports module``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        layer = layer_of(module_name(path, root))
        for line, module in imported_modules(path, root):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN.get(layer, ())):
                out.append(f"{path.relative_to(root.parent)}:{line}: {layer} imports {module}")
    return out


def order_violations(root: Path) -> list[str]:
    """Every import from one compute package into a later one in COMPUTE_ORDER (an arrow up inside the layer)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root).split(".")
        if len(here) < 2 or here[1] not in COMPUTE_ORDER:
            continue
        for line, module in imported_modules(path, root):
            there = module.split(".")
            if len(there) > 1 and there[0] == "defuse" and there[1] in COMPUTE_ORDER and \
                    COMPUTE_ORDER.index(there[1]) > COMPUTE_ORDER.index(here[1]):
                out.append(f"{path.relative_to(root.parent)}:{line}: {here[1]} imports {module} (a later package)")
    return out


def circles(root: Path) -> set[tuple[str, ...]]:
    """The circles of imports between modules of one package: each strongly connected set, sorted."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}

    def target(name: str) -> str | None:          # "pkg.mod.Name" -> "pkg.mod"
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {t for _, name in imported_modules(p, root) if (t := target(name)) and t != m
                 and t.rpartition(".")[0] == m.rpartition(".")[0] and not p.name == "__init__.py"}
             for m, p in modules.items()}
    found, index, low, stack, on_stack = set(), {}, {}, [], set()

    def visit(v: str) -> None:                     # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.add(tuple(sorted(group)))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return found


def test_imports_only_point_down():
    assert violations(PACKAGE) == []


def test_compute_packages_import_only_earlier_ones():
    assert order_violations(PACKAGE) == []


def test_no_circle_inside_a_package():
    assert circles(PACKAGE) == set(), "a circle of imports inside a package: move what both need to a third module"


def test_every_module_belongs_to_a_named_layer():
    unplaced = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                if layer_of(module_name(p, PACKAGE)) is None and p.parent != PACKAGE]
    assert unplaced == [], "a new sub-package needs a layer here and in docs/architecture.md"


def _plant(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("rel, text, expected", [
    ("identify/search.py", "from ..workspace import Workspace\n", "compute imports defuse.workspace.Workspace"),
    ("distill/sampling.py", "def f():\n    from ..steps import project\n", "compute imports defuse.steps.project"),
    ("label/store.py", "import streamlit as st\n", "compute imports streamlit"),
    ("correct/sweep.py", "from defuse.cli.main import main\n", "compute imports defuse.cli.main.main"),
    ("runtime/atomic.py", "from ..nets import checkpoints\n", "runtime imports defuse.nets.checkpoints"),
    ("steps/report.py", "from ..cli import jobs\n", "steps imports defuse.cli.jobs"),
    ("workspace.py", "from .steps.project import load_data\n", "workspace imports defuse.steps.project.load_data"),
    ("cli/main.py", "from ..ui.errors import guard\n", "cli imports defuse.ui.errors.guard"),
])
def test_a_planted_wrong_way_import_is_found(tmp_path, rel, text, expected):
    root = tmp_path / "defuse"
    _plant(root, "__init__.py", "")
    _plant(root, "nets/architectures.py", "from ..runtime import atomic\n")   # a right-way import: not reported
    _plant(root, rel, text)
    found = violations(root)
    assert len(found) == 1 and found[0].endswith(expected), found


@pytest.mark.parametrize("rel, text, expected", [
    ("nets/train.py", "from ..identify.search import identify\n", "nets imports defuse.identify.search.identify"),
    ("identify/search.py", "def f():\n    from ..distill import sampling\n",
     "identify imports defuse.distill.sampling"),
    ("data/datasets.py", "from defuse.evaluation.judge import Judge\n", "data imports defuse.evaluation.judge.Judge"),
])
def test_a_planted_arrow_up_between_compute_packages_is_found(tmp_path, rel, text, expected):
    root = tmp_path / "defuse"
    _plant(root, "__init__.py", "")
    _plant(root, "identify/chunks.py", "from ..nets import inference\n")   # down the order: not reported
    _plant(root, rel, text)
    found = order_violations(root)
    assert len(found) == 1 and found[0].endswith(expected + " (a later package)"), found


def test_a_planted_circle_inside_a_package_is_found(tmp_path):
    root = tmp_path / "defuse"
    _plant(root, "__init__.py", "")
    _plant(root, "nets/__init__.py", "from .a import x\n")        # a package's __init__ re-exporting: no circle
    _plant(root, "nets/a.py", "from .b import y\nx = 1\n")
    _plant(root, "nets/b.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import z\n")
    _plant(root, "nets/c.py", "def f():\n    from .a import x\n")
    _plant(root, "nets/d.py", "from .a import x\n")               # one way only: no circle
    assert circles(root) == {("defuse.nets.a", "defuse.nets.b", "defuse.nets.c")}
