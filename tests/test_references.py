"""Docstrings and comments tell the truth about where things are: every ``defuse.x.y`` they name imports (and
its attribute exists), and every ``file.py`` / ``file.md`` they name exists (artifact names excepted)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "defuse"
DOTTED = re.compile(r"(?<![\w.])defuse(?:\.[A-Za-z_]\w*)+")
FILE = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.(?:py|md))\b")
ARTIFACTS = {"model-card.md", "exports/model-card.md"}   # files a step writes into a project, not source files


def resolves(ref: str) -> bool:
    """True when the longest importable prefix of ``ref`` holds the rest as attributes."""
    parts = ref.split(".")
    for k in range(len(parts), 1, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for name in parts[k:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def stale_references(root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            out += [f"{path.relative_to(root.parent)}:{n}: {m.group(0)}" for m in DOTTED.finditer(line)
                    if not resolves(m.group(0))]
            out += [f"{path.relative_to(root.parent)}:{n}: {m.group(1)}" for m in FILE.finditer(line)
                    if m.group(1) not in ARTIFACTS
                    and not any((base / m.group(1)).exists() for base in (ROOT, PACKAGE, path.parent))]
    return out


def test_every_named_module_and_file_exists():
    assert stale_references() == []


def test_a_planted_stale_reference_is_found(tmp_path):
    pkg = tmp_path / "defuse"
    pkg.mkdir()
    (pkg / "m.py").write_text('"""See :mod:`defuse.progress` and DESIGN.md; :func:`defuse.nets.train.train_vae`."""\n')
    found = stale_references(pkg)
    assert [f.split(": ")[-1] for f in found] == ["defuse.progress", "DESIGN.md"], found
