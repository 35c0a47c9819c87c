"""Issue #21: the two-sided measure, a mixture per confusion, τ per scenario, the reviewer's grader and the
agreed fix set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defuse.correct.two_sided import GradedSamples, fmt_share, rates, two_sided
from defuse.distill.sampling import DrawnSplits, ScenarioDraw, check_taus, draw_failure_splits, tau_of
from defuse.distill.scenarios import DistillConfig, distill
from defuse.distill.tau import TauSearch, choose_taus
from defuse.identify.failures import Failures
from defuse.label.reviewer import Reviewer, ReviewerConfig, train_reviewer
from defuse.steps.correct import agreed_splits
from tests.toys import BarDecoder, tiny_image_data

# the xdist group: under pytest-xdist one worker runs this module, so its fixtures are built once
pytestmark = pytest.mark.xdist_group("test_fix_measure")

CLASSES, SIZE, BAND = 4, 32, 8


# --- two-sided arithmetic, by hand ------------------------------------------------------------------------
def _graded(threshold=0.9):
    #            0    1    2    3    4    5    6    7
    grader = [2, 2, 2, 1, 1, 3, 2, 0]
    conf = [.99, .95, .50, .97, .92, .99, .91, .99]   # sample 2 unclear
    scenario = [2, 2, 2, 2, 2, 2, 5, 5]
    before = [1, 1, 1, 1, 3, 1, 2, 0]                  # wrong on 0, 1 (real failures), right on 3, 6, 7
    ids = [0, 0, 0, 0, 0, 0, 1, 1]
    return GradedSamples(*(np.array(a) for a in (grader, conf, scenario, before, ids)), threshold=threshold)


def test_fix_rate_counts_only_clear_real_failures_and_collateral_only_what_was_right():
    g = _graded()
    assert g.clear.tolist() == [True, True, False, True, True, True, True, True]
    assert g.real_failures.tolist() == [True, True, False, False, False, False, False, False]
    assert g.right_before.tolist() == [False, False, False, True, False, False, True, True]
    # fixes sample 0 (not 1), breaks sample 3, keeps 6 and 7; the unclear sample 2 is never graded
    model = np.array([2, 0, 9, 2, 1, 1, 2, 0])
    assert rates(g, model) == {"fix_rate": 0.5, "collateral": pytest.approx(1 / 3)}
    out = two_sided(g, {"before": g.before, "chosen": model, "control": None}, grader="judge")
    assert (out["n_test"], out["n_unclear"], out["n_real_failures"], out["n_right_before"],
            out["n_other_misread"]) == (8, 1, 2, 3, 2)
    assert out["models"]["before"] == {"fix_rate": 0.0, "collateral": 0.0}
    assert out["models"]["control"] == {"fix_rate": None, "collateral": None}
    first, second = out["per_scenario"]
    assert (first["scenario_id"], first["n_real_failures"], second["n_real_failures"]) == (0, 2, 0)
    assert second["models"]["chosen"] == {"fix_rate": None, "collateral": 0.0}  # nothing to fix there
    assert fmt_share(None) == "–" and fmt_share(0.5) == "50.0%"


def test_a_lower_threshold_grades_more_samples():
    assert two_sided(_graded(0.4), {"m": _graded().before}, grader="j")["n_unclear"] == 0


def test_two_sided_refuses_mismatched_shapes_and_thresholds():
    g = _graded()
    with pytest.raises(ValueError, match="predictions must have shape"):
        rates(g, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="threshold must be a probability"):
        GradedSamples(g.grader_labels, g.grader_confidence, g.scenario_labels, g.before, g.scenario_ids, 1.5)
    with pytest.raises(ValueError, match="before must have shape"):
        GradedSamples(g.grader_labels, g.grader_confidence, g.scenario_labels, g.before[:3], g.scenario_ids)


# --- a mixture per confusion ------------------------------------------------------------------------------
def _two_confusions_in_one_cloud(n=400, seed=0):
    """Sixes read as 0 and sixes read as 5 share one cloud of codes: the paper's single mixture merges them."""
    rng = np.random.default_rng(seed)
    latents = rng.normal(size=(n, 2)).astype(np.float32)
    true = np.full(n, 6)
    pred = np.where(np.arange(n) % 2 == 0, 0, 5)
    pred[:3] = 7  # a confusion too small to make a scenario (3 of 400 <= ε)
    return Failures(latents=latents, source_index=np.arange(n), true_label=true, pred_label=pred,
                    noise_norm=np.ones(n, np.float32))


def test_a_mixture_per_confusion_keeps_every_scenario_to_one_confusion():
    failures = _two_confusions_in_one_cloud()
    cfg = DistillConfig(max_components=5, weight_threshold=0.05, group_by="confusion")
    paper = distill(failures, DistillConfig(max_components=5, weight_threshold=0.05), num_classes=10)  # the default
    mixed = [(row > 0).sum() for row in paper.pred_label_mix]
    assert max(mixed) > 1  # the paper's mixture holds two confusions in one scenario
    ours = distill(failures, cfg, num_classes=10)
    assert len(ours) >= 2 and all((row > 0).sum() == 1 for row in ours.pred_label_mix)
    assert {int(row.argmax()) for row in ours.pred_label_mix} == {0, 5}
    assert ours.weights.sum() <= 1 + 1e-9 and (ours.weights > cfg.weight_threshold).all()
    assert (ours.assignment[:3] == -1).all()  # the confusion 6 -> 7 is too small: no scenario
    assigned = ours.assignment >= 0
    assert (ours.sizes == np.bincount(ours.assignment[assigned], minlength=len(ours))).all()


def test_group_by_is_validated():
    with pytest.raises(ValueError, match=r"group_by must be one of \['confusion', 'none'\]"):
        DistillConfig(group_by="class")


# --- τ per scenario ---------------------------------------------------------------------------------------


def read_bars(images: torch.Tensor) -> np.ndarray:
    return images.reshape(len(images), CLASSES, -1).mean(2).argmax(1).numpy()


def test_tau_is_the_widest_whose_samples_keep_the_scenarios_label():
    # row 0: a broad scenario of class 2 (σ 1 along the class axis); row 1: class 1, spread only along z1
    means, covs = np.array([[2.0, 0.0], [1.0, 0.0]]), np.stack([np.eye(2), np.diag([1e-4, 4.0])])
    tight, flat = choose_taus(BarDecoder(), read_bars, (means, covs), TauSearch(n=200), device="cpu")
    # P(|N(0, √τ)| < 0.5) >= 0.9 needs τ <= 0.092: 0.05 of the grid (0.1 reads about 88 %)
    assert (tight.label, tight.tau, tight.reached) == (2, 0.05, True) and tight.purity >= 0.9
    assert tight.purities[0] < 0.5  # at τ=1 most samples leave the class
    assert (flat.label, flat.tau, flat.purity) == (1, 1.0, 1.0)  # nothing moves it off its class: the widest τ


def test_a_scenario_never_pure_gets_the_narrowest_tau_and_says_so():
    means, covs = np.array([[1.5, 0.0]]), np.eye(2)[None] * 1e-6   # exactly on the border of classes 1 and 2
    (choice,) = choose_taus(BarDecoder(), lambda x: np.arange(len(x)) % 2, (means, covs), TauSearch(n=50),
                            device="cpu")
    assert (choice.tau, choice.reached) == (0.01, False)


def test_per_scenario_tau_reaches_every_draw():
    taus = check_taus([0.5, 0.01])
    assert taus == (0.5, 0.01) and tau_of(taus, 1) == 0.01 and tau_of(0.3, 7) == 0.3
    with pytest.raises(ValueError, match="no τ for scenario row 2"):
        tau_of(taus, 2)
    with pytest.raises(ValueError, match=r"tau must be None or a finite number > 0, .*; got \(0.5, -1.0\)"):
        ScenarioDraw(8, (0.5, -1.0))
    means, covs = np.array([[2.0, 0.0], [2.0, 0.0]]), np.stack([np.eye(2)] * 2)
    draw = ScenarioDraw(64, (1e-6, 1.0), seed=1)
    narrow, wide = (draw_failure_splits(BarDecoder(), (means, covs), j, 2, draw, device="cpu") for j in (0, 1))
    assert (read_bars(narrow.test) == 2).all() and (read_bars(wide.test) != 2).any()
    with pytest.raises(ValueError, match="TauSearch|grid must hold"):
        TauSearch(grid=())


# --- the reviewer's grader and the agreed fix set -----------------------------------------------------------
@pytest.fixture(scope="module")
def reviewer():
    cfg = ReviewerConfig(members=2, epochs=2, batch_size=32, architectures=("paper-cnn",))
    return train_reviewer(tiny_image_data(num_classes=CLASSES), cfg, device="cpu")


def test_the_grader_is_trained_apart_and_votes_on_nothing(reviewer, tmp_path):
    assert len(reviewer) == 2 and reviewer.grader is not None
    seeds = [m["config"]["seed"] for m in reviewer.member_meta] + [reviewer.grader[1]["config"]["seed"]]
    assert len(set(seeds)) == 3
    x = tiny_image_data(num_classes=CLASSES).test.images
    without = Reviewer(reviewer.members, reviewer.member_meta)
    assert np.array_equal(reviewer.predict(x, device="cpu").labels, without.predict(x, device="cpu").labels)
    labels, conf = reviewer.grade(x, device="cpu")
    assert labels.shape == conf.shape == (len(x),) and ((conf > 0) & (conf <= 1)).all()
    reviewer.save(tmp_path / "r")
    again = Reviewer.load(tmp_path / "r")
    assert np.array_equal(again.grade(x, device="cpu")[0], labels)
    with pytest.raises(ValueError, match="no grader"):
        without.grade(x, device="cpu")
    assert ReviewerConfig(grader=False).grader is False
    with pytest.raises(ValueError, match="grader must be True or False; got .yes."):
        ReviewerConfig(grader="yes")


def test_the_fix_set_keeps_what_every_member_reads_confidently(reviewer):
    data = tiny_image_data(num_classes=CLASSES)
    twos, ones = data.test.images[data.test.labels == 2], data.test.images[data.test.labels == 1]
    blurred = torch.full_like(twos[:4], 0.3)   # no bar at all: nobody reads it confidently
    split = DrawnSplits(0, 2, torch.cat([twos[:6], ones[:5], blurred]), torch.cat([twos[6:10], ones[5:8]]),
                          ones[:3])
    agreed = reviewer.agreed(split.finetune, 2, device="cpu")
    assert agreed[:6].all() and not agreed[6:].any()
    kept, counts = agreed_splits(split, reviewer, twos[10:13], device="cpu")
    assert len(kept.finetune) == 6 + 3 and len(kept.val) == 4 and kept.test is split.test
    assert (counts["n_dropped_finetune"], counts["n_uaes_added"], counts["n_dropped_val"]) == (9, 3, 3)
    none, counts = agreed_splits(DrawnSplits(0, 2, ones[:4], ones[4:6], ones[:2]), reviewer, ones[:0],
                                 device="cpu")
    assert none is None and counts["n_dropped_finetune"] == 4
    kept, counts = agreed_splits(split, reviewer, twos[10:13], filter_val=False, device="cpu")
    assert len(kept.val) == 7 and counts["n_dropped_val"] == 0   # the two-sided λ choice sees the other classes


def test_clear_labels_grade_only_what_every_member_reads_confidently(reviewer):
    data = tiny_image_data(num_classes=CLASSES)
    twos, ones = data.test.images[data.test.labels == 2][:5], data.test.images[data.test.labels == 1][:5]
    blurred = torch.full_like(twos[:3], 0.3)
    clear = reviewer.clear_labels(torch.cat([twos, ones, blurred]), device="cpu")
    assert clear.tolist() == [2] * 5 + [1] * 5 + [-1] * 3


@pytest.mark.slow
def test_label_tau_auto_chooses_tau_per_scenario_before_the_reviewer_labels(tmp_path, monkeypatch):
    """`label --reviewer auto --tau auto` on the demo (its shipped first look): τ per scenario is saved and every
    later draw reads it; choosing τ makes the label and correct steps depend on it."""
    from conftest import HAVE_DEMO

    if not HAVE_DEMO:
        pytest.skip("demo models not built")
    from defuse.cli.main import main
    from defuse.steps.demo import open_demo_project
    from defuse.steps.distill import default_tau, load_scenarios
    from defuse.workspace import TAUS, Workspace

    ws = open_demo_project(tmp_path / "demo")
    # the heaviest few scenarios only (the search reads every scenario at every τ: the suite's time)
    assert main(["distill", "-w", str(ws.root), "--weight-threshold", "0.019", "--quiet", "--threads", "1"]) == 0
    ws = Workspace.open(ws.root)
    assert 1 <= len(load_scenarios(ws)) <= 10
    assert not isinstance(default_tau(ws), tuple)  # the dataset's τ until one is chosen
    shipped = ws.path("reviewer/reviewer.json").read_text()
    assert main(["label", "-w", str(ws.root), "--reviewer", "auto", "--tau", "auto", "--quiet"]) == 0
    ws = Workspace.open(ws.root)
    assert ws.path("reviewer/reviewer.json").read_text() == shipped  # reused: label's --seed is not the reviewer's
    taus, record = default_tau(ws), ws.load_json(TAUS)
    assert isinstance(taus, tuple) and len(taus) == len(load_scenarios(ws)) == len(record["choices"])
    assert all(t in TauSearch().grid for t in taus) and record["reader"].startswith("auto-reviewer")
    assert ws.step_record("label")["inputs"][TAUS] == ws.fingerprint(TAUS)
    with pytest.raises(SystemExit):
        main(["label", "-w", str(ws.root), "--tau", "wide"])  # a bad τ: argparse's plain message, no traceback


def test_correction_fine_tunes_on_the_images_the_classifier_learnt_from():
    """A planted flaw (class_keep) must stay out of D too, or the λ=0 control fixes it without D_f."""
    from defuse.nets.train import TrainConfig, train_classifier
    from defuse.steps.correct import correction_data

    data = tiny_image_data(num_classes=CLASSES)
    cfg = TrainConfig(epochs=1, batch_size=64, class_keep=((1, 0.25),), seed=3)
    trained = train_classifier(data, cfg, device="cpu")
    d, said = correction_data(data, {"config": {"class_keep": [[1, 0.25]], "seed": 3}})
    n1 = int((data.train.labels == 1).sum())
    assert int((d.train.labels == 1).sum()) == round(0.25 * n1)
    assert int((d.train.labels != 1).sum()) == int((data.train.labels != 1).sum())
    # the classifier's input normalisation was measured on its own training images: the same images
    assert np.allclose(d.train.images.mean(dim=(0, 2, 3)).tolist(), trained.arch_kwargs["mean"], atol=1e-6)
    assert "as it was trained" in said and d.val is data.val and d.test is data.test
    same, said = correction_data(data, {"config": {}})
    assert same is data and "training split" in said
