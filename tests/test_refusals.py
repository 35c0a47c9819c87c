"""Every refusal before any work, and a missing input named by the step that makes it (issue 23, point 10)."""

from __future__ import annotations

import shutil

import pytest

from defuse.cli.main import main
from defuse.steps.label import label_store
from defuse.workspace import Workspace, missing_message


@pytest.fixture()
def no_reviewer_training(monkeypatch):
    import defuse.steps.label as label

    def refuse(*args, **kwargs):
        raise AssertionError("the reviewer was trained before the refusal")
    monkeypatch.setattr(label, "train_reviewer", refuse)


def test_a_missing_artifact_is_named_by_its_step_not_by_a_path(tmp_path):
    ws = Workspace.create(tmp_path / "p", {"dataset": {"source": "mnist-sample"}})
    with pytest.raises(ValueError) as e:
        ws.load_arrays("identify/failures.npz")
    assert str(e.value) == ("project p has no identify/failures.npz yet: run identify first (the Identify page, "
                            "or `python -m defuse identify -w p`)")
    assert str(tmp_path) not in str(e.value)
    assert "run embed first" in missing_message("p", "distill/embedding-umap.npz")
    assert "run correct first (the Correct page" in missing_message("p", "correct/best.json")


def test_cli_distill_before_identify_says_run_identify_first(fresh_demo, tmp_path, capsys):
    root = shutil.copytree(fresh_demo, tmp_path / "fresh")
    assert main(["distill", "-w", str(root), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "run identify first" in err and str(root) not in err


def test_identify_with_a_blurry_vae_is_refused_before_the_reviewer_trains(project_copy, capsys,
                                                                         no_reviewer_training):
    root = project_copy("blur-reviewer")
    Workspace(root).save_json("vae/fidelity.json", {"acc_original": 0.91, "acc_reconstruction": 0.21})
    assert main(["identify", "-w", str(root), "--reviewer", "auto", "--subset", "8", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "too blurry to search with" in err and "reviewer was trained" not in err


def test_label_and_correct_refuse_before_the_reviewer_trains(fresh_demo, project_copy, tmp_path, capsys,
                                                             no_reviewer_training):
    root = shutil.copytree(fresh_demo, tmp_path / "fresh-label")
    assert main(["label", "-w", str(root), "--reviewer", "auto", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "run distill first" in err and "reviewer was trained" not in err
    root = project_copy("nothing-failing")
    with label_store(Workspace(root)) as store:
        for who in ("alice", "bob"):
            store.record(0, who, is_failure=False)
    assert main(["correct", "-w", str(root), "--reviewer", "auto", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "no scenario is labeled a failure yet: run label first" in err and "reviewer was trained" not in err


@pytest.mark.parametrize("page, step", [("explore", "identify"), ("label", "distill"), ("report", "identify")])
def test_the_app_names_the_step_to_run(run_page, fresh_demo, page, step):
    at = run_page(page, fresh_demo)
    assert not at.exception
    said = at.info[0].value
    assert f"run {step} first (on the" in said and str(fresh_demo) not in said
