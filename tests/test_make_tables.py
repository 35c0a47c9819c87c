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
    def paper_table_output(path):  # as make_tables reads them (other runs' JSON may be lists: histories)
        result = json.loads(path.read_text())
        return isinstance(result, dict) and {"command", "n_scenarios"} <= set(result)

    source = sorted(p for p in (ROOT / "docs" / "runs").glob("*.json") if paper_table_output(p))[0]
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


def test_issue12_targets_are_graded_on_the_judge_figures(make_tables):
    met = {"real_share": 0.85, "failure_acc_after_judge": 0.93, "failure_acc_control_judge": 0.80,
           "baseline_failure_acc_judge": 0.82, "test_acc_after": 0.975, "test_acc_control": 0.977,
           "n_failure_scenarios": 3}
    assert list(make_tables.issue12_targets(met, paper_scenarios=3).values()) == [True] * 5
    short = {**met, "real_share": 0.79, "failure_acc_after_judge": 0.89, "test_acc_after": 0.973}
    assert list(make_tables.issue12_targets(short, paper_scenarios=4).values()) == [False] * 5
    assert set(make_tables.issue12_targets({}, None).values()) == {None}


def test_the_side_by_side_table_puts_the_papers_method_first(make_tables):
    base = {"dataset": "mnist-idx", "n_failures": 10, "n_scenarios": 4, "n_failure_scenarios": 1,
            "settings": {"vae": {"beta": 0.4}}}
    paper = {**base, "method": "paper: unconditional β-VAE (β=0.4), Beta(50, 50) noise (uncentred, the paper's)"}
    cond = {**base, "method": "class-conditional β-VAE (β=2), decoded with the source's label, Beta(50, 50) noise, "
                              "centred", "class_control_judge": 0.97, "settings": {"vae": {"beta": 2.0}}}
    rows = [line for line in make_tables.comparison([(Path("b.json"), cond), (Path("a.json"), paper)]).splitlines()
            if line.startswith("| mnist-idx")]
    assert "paper β-VAE (β=0.4) |" in rows[0] and "conditional β-VAE (β=2), centred" in rows[1]
    assert "| 97.0 |" in rows[1]


def test_identify_variants_become_one_row_each(make_tables, tmp_path):
    head = {"workspace": "w", "vae": "conditional-beta-vae", "vae_beta": 4.0, "judge_test_acc": 0.99}
    rows = [{"centered": True, "beta_a": 2, "beta_b": 2, "noise_scale": 4, "n_failures": 2027, "sources": 348,
             "real_share": 0.289, "artefact_share": 0.251}, {"n_failures": 0, "sources": 0, "real_share": None,
                                                             "artefact_share": None}]
    (tmp_path / "identify-variants-x.jsonl").write_text("\n".join(json.dumps(r) for r in [head, *rows]))
    lines = [line for line in make_tables.variants_table(tmp_path).splitlines() if line.startswith("| `")]
    assert lines == ["| `identify-variants-x.jsonl` | conditional β-VAE (β=4) | Beta(2, 2), centred, ×4 | 2027 | 348 "
                     "| 28.9 | 25.1 |",
                     "| `identify-variants-x.jsonl` | conditional β-VAE (β=4) | Beta(50, 50) | 0 | 0 | – | – |"]
    assert make_tables.variants_table(tmp_path / "none") == ""


def test_the_side_by_side_table_names_a_class_free_conditional_design(make_tables):
    """Issue #21's VAE: the label in every layer (and an adversary, when one was used) shows in the row."""
    base = {"dataset": "fashion-mnist", "n_failures": 10, "n_scenarios": 4, "n_failure_scenarios": 1,
            "method": "class-conditional β-VAE (β=4, label in every layer), decoded with the source's label",
            "settings": {"vae": {"beta": 4.0}}}
    new = {**base, "vae_used": {"beta": 4.0, "label_in": "every-layer", "class_adversary": 0.0}}
    adv = {**base, "vae_used": {"beta": 4.0, "label_in": "every-layer", "class_adversary": 2.0}}
    old = {**base, "vae_used": {"beta": 4.0}}
    assert make_tables._short_method(new) == "conditional β-VAE (β=4), label in every layer"
    assert make_tables._short_method(adv) == "conditional β-VAE (β=4), label in every layer, adversary ×2"
    assert make_tables._short_method(old) == "conditional β-VAE (β=4)"
