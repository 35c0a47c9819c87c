"""No long parameter lists in ``defuse/`` (issue #15): a function takes at most MAX_PARAMETERS.

Counted from the source with ``ast``: positional and keyword-only parameters, not ``self``/``cls`` and
not ``*args``/``**kwargs``. Settings that travel together are a frozen dataclass instead
(``ScenarioDraw``, ``RunOptions``, ``SuiteConfig``, ``CorrectionRecord``, ...; docs/architecture.md).
The exceptions below are pinned at their count, so none grows, and an entry that no longer exceeds
the limit fails too, so the list only shrinks.

Run as a script to list every function over a limit: ``python -m tests.test_parameter_lists [LIMIT]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "defuse"
MAX_PARAMETERS = 6

_IDENTIFY = ("the search's inputs (two models, images, labels, config) and how it runs; the tests call it with "
             "device= in 40 places; fold next with RunOptions")
_RAY_SEARCH = "mirrors identify's search_chunks (the Ray backend runs the same chunks); folds with it"
_UI = "a form's fields, one by one; defuse/ui is mid-change by the workflow helper (#17)"
# "path::qualified name" -> (parameters it has now, why it may)
EXCEPTIONS = {
    "identify/search.py::identify": (10, _IDENTIFY),
    "identify/chunk_search.py::search_chunks": (7, _IDENTIFY),
    "identify/noise.py::beta_noise": (7, "a pure function of (seed, row, sample, dim) and Beta(a, b): every "
                                          "argument is one of them"),
    "distributed/identify_ray.py::search": (8, _RAY_SEARCH),
    "distributed/identify_ray.py::_stream": (7, _RAY_SEARCH),
    "distributed/backend.py::RayBackend.search": (7, _RAY_SEARCH),
    "steps/project.py::init_project": (8, "the models to import could travel as one object; the app's Setup "
                                          "and init call it"),
    "nets/checkpoints.py::save_model": (9, "each keyword is one field of the sidecar it writes"),
    "nets/architectures.py::SmallResNet.__init__": (7, "a network's constructor: its keywords are the arch_kwargs "
                                                  "saved in the sidecar and rebuilt by name"),
    "nets/convert.py::convert_classifier": (7, "each keyword is a flag of `defuse convert`"),
    "suite/check.py::check_model": (7, "each keyword is a flag of `defuse check`"),
    "label/store.py::LabelStore.record": (7, "the columns of one decision row"),
    "label/reviewer.py::Reviewer.__init__": (7, "the fields a saved reviewer's index holds"),
    "label/reviewer.py::Reviewer.from_classifier_checkpoint": (7, "the reviewer's fields and how to read the file"),
    "ui/sidebar.py::_create": (7, _UI),
    "ui/model_import.py::_import": (7, _UI),
}


def count_parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Positional and keyword-only parameters, without a leading ``self``/``cls`` and without *args/**kwargs."""
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
    return len(names) - (1 if names and names[0] in ("self", "cls") else 0)


def _functions(node: ast.AST, prefix: str = ""):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def parameter_counts(root: Path, over: int) -> dict[str, int]:
    """{"path::qualified name": parameters} of every function under ``root`` with more than ``over``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for name, fn in _functions(ast.parse(path.read_text(), filename=str(path))):
            if count_parameters(fn) > over:
                found[f"{rel}::{name}"] = count_parameters(fn)
    return found


def test_no_function_takes_more_than_the_limit_unless_excepted():
    over = parameter_counts(PACKAGE, MAX_PARAMETERS)
    unexcused = {name: n for name, n in over.items() if name not in EXCEPTIONS}
    assert unexcused == {}, f"fold these settings into a frozen dataclass (at most {MAX_PARAMETERS} parameters)"
    grown = {name: (n, EXCEPTIONS[name][0]) for name, n in over.items() if n > EXCEPTIONS.get(name, (n,))[0]}
    assert grown == {}, "an excepted function took on more parameters: (now, allowed)"


def test_every_exception_is_still_needed():
    over = parameter_counts(PACKAGE, MAX_PARAMETERS)
    stale = sorted(name for name in EXCEPTIONS if name not in over)
    assert stale == [], "these are within the limit now (or gone): remove them from EXCEPTIONS"


@pytest.mark.parametrize("source, expected", [
    ("def f(a, b, c, d, e, f, g): pass\n", {"m.py::f": 7}),
    ("class C:\n    def m(self, a, b, *, c, d, e, f, g): pass\n", {"m.py::C.m": 7}),
    ("class C:\n    @classmethod\n    def m(cls, a, b, c, d, e, f): pass\n", {}),
    ("def f(a, b, c, /, d, *args, e, f, g, **kw): pass\n", {"m.py::f": 7}),
    ("def outer():\n    async def inner(a, b, c, d, e, f, g): pass\n", {"m.py::outer.inner": 7}),
])
def test_parameters_are_counted_as_documented(tmp_path, source, expected):
    (tmp_path / "m.py").write_text(source)
    assert parameter_counts(tmp_path, MAX_PARAMETERS) == expected


if __name__ == "__main__":
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else MAX_PARAMETERS
    counts = parameter_counts(PACKAGE, limit)
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:3d}  defuse/{name}")
    print(f"{len(counts)} functions in defuse/ take more than {limit} parameters")
