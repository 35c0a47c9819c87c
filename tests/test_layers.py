"""The package layout's rule: imports only point down (docs/architecture.md, "Layers").

    ui  ->  cli (commands, jobs)  ->  steps  ->  workspace  ->  compute (identify, distill, label, correct,
                                                                         nets, data, runtime)

Read from the source with ``ast`` (imports inside functions count too), so a wrong-way import fails here
before it becomes a cycle or drags the CLI or streamlit into the core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "defuse"
COMPUTE = ("runtime", "data", "nets", "identify", "distill", "label", "correct", "distributed", "suite")
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


def test_imports_only_point_down():
    assert violations(PACKAGE) == []


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
