"""benchmarks/make_tables.py: docs/results.md's tables come from the committed JSON and cannot drift."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make_tables():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "benchmarks" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_results_match_the_committed_json(make_tables):
    assert make_tables.main(["--check"]) == 0


def test_a_changed_figure_changes_the_table_and_fails_the_check(make_tables, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    source = sorted(p for p in (ROOT / "docs" / "runs").glob("*.json") if "command" in json.loads(p.read_text()))[0]
    result = json.loads(source.read_text())
    (runs / source.name).write_text(json.dumps(result))
    doc = tmp_path / "results.md"
    doc.write_text(f"intro\n{make_tables.BEGIN}\nold\n{make_tables.END}\noutro\n")
    assert make_tables.main(["--runs", str(runs), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "\nold\n" not in text
    assert f"`{result['command']}`" in text
    assert make_tables.main(["--check", "--runs", str(runs), "--doc", str(doc)]) == 0
    result["test_acc_before"] = 0.1234  # a figure changes in the JSON: the table must follow
    (runs / source.name).write_text(json.dumps(result))
    assert make_tables.main(["--check", "--runs", str(runs), "--doc", str(doc)]) == 1
    make_tables.main(["--runs", str(runs), "--doc", str(doc)])
    assert "| 12.3 |" in doc.read_text()


def test_runs_without_the_judge_are_marked_history(make_tables):
    old = {"command": "python benchmarks/paper_table.py", "n_scenarios": 3, "n_failure_scenarios": 1,
           "dataset": "x", "preset": "quick", "settings": {"vae": {"train_on": "all"}}}
    text = make_tables.section(ROOT / "docs" / "runs" / "old.json", old)
    assert "— history" in text and "trained on the test split too" in text
    assert not make_tables.is_current(old) and make_tables.is_current({**old, "judge_test_acc": 0.9})


def test_a_document_without_markers_is_refused(make_tables):
    with pytest.raises(ValueError, match="the document must hold the markers"):
        make_tables.replace_block("no markers here", "table")
