"""Correction (paper §3.2.3, §4.3) on a planted flaw: dotted class-0 bars were labelled 1 in training."""

import json

import pytest
import torch
from torch.nn import functional as F

from defuse.correct.selection import SelectionRule, within_noise
from defuse.correct.sweep import (
    PAPER_LAMBDAS,
    CorrectConfig,
    FailureSet,
    correct,
    epoch_metric,
    select_lambda,
    stack_failure_sets,
)
from defuse.data.datasets import DatasetSpec, ImageData, Split
from defuse.nets.architectures import PaperCNN
from defuse.nets.train import shuffled_batches
from defuse.runtime.progress import Cancelled, RunOptions
from defuse.runtime.train_speed import train_plan
from tests.toys import bar_images

# the xdist group: under pytest-xdist one worker runs this module, so its fixtures are built once
pytestmark = pytest.mark.xdist_group("test_correct")

CPU = RunOptions(device="cpu")
FAST = dict(lambdas=(1e-3, 10.0), epochs=2, batch_size=64, parallel="off")


def add_dot(images):
    """The planted style: a bright square where class-0 bars have only noise."""
    images = images.clone()
    images[:, :, 20:26, 20:26] = 1.0
    return images


def dotted_zeros(n, seed):
    x, y = bar_images(4 * n, seed=seed)
    return add_dot(x[y == 0][:n])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny networks: a second thread only adds contention on a shared CPU (see defuse/runtime/devices.py)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    x, y = bar_images(384, seed=0)
    wrong = torch.nonzero(y == 0).flatten()[::3]  # a third of the 0s carry the dot and the label 1
    x, y = x.clone(), y.clone()
    x[wrong], y[wrong] = add_dot(x[wrong]), 1
    return ImageData(Split(x, y), Split(*bar_images(128, seed=1)), Split(*bar_images(128, seed=2)),
                     class_names=["c0", "c1", "c2", "c3"], spec=DatasetSpec(source="npz"))


@pytest.fixture(scope="module")
def classifier(data):
    torch.manual_seed(0)
    model = PaperCNN(1, 32, 4, width=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        for idx in shuffled_batches(len(data.train), 32, gen):
            loss = F.cross_entropy(model(data.train.images[idx]), data.train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def failure_sets():
    reviewer = torch.zeros(48, dtype=torch.int64)
    reviewer[:8] = -1  # eight samples the reviewer skipped
    return [FailureSet(3, 0, dotted_zeros(48, 10), dotted_zeros(48, 11), dotted_zeros(48, 12),
                       test_reviewer=reviewer)]


@pytest.fixture(scope="module")
def sweep(classifier, data, failure_sets):
    uae = (dotted_zeros(32, 13), torch.zeros(32, dtype=torch.int64))
    return correct(classifier, data, failure_sets, CorrectConfig(**FAST), run=CPU, baseline=uae)


def strip_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_planted_flaw_is_fixed_while_test_accuracy_holds(sweep):
    assert sweep.before["failure_test_acc"] < 0.1        # the flaw is there
    assert sweep.chosen["lambda"] == 10.0
    assert sweep.chosen["failure_test_acc"] > 0.9
    assert sweep.chosen["test_acc"] >= sweep.before["test_acc"] - 0.03
    assert sweep.control["failure_test_acc"] < 0.1       # more epochs on D alone do not fix it
    assert sweep.chosen["failure_test_acc_reviewer"] > 0.9
    assert sweep.control["failure_val_acc_reviewer"] is None  # no reviewer labels for val
    assert set(sweep.chosen["failure_test_acc_per_scenario"]) == {"3"}


def test_rows_cover_every_lambda_epoch_and_the_baseline(sweep):
    keys = {(r["kind"], r["lambda"], r["epoch"]) for r in sweep.rows}
    expected = {("defuse", lam, e) for lam in (0.0, 1e-3, 10.0) for e in (1, 2)}
    assert keys == expected | {("baseline", lam, e) for lam in (1e-3, 10.0) for e in (1, 2)}
    assert [(r["kind"], r["lambda"]) for r in sweep.best_per_lambda] == [
        ("defuse", 0.0), ("defuse", 1e-3), ("defuse", 10.0), ("baseline", 1e-3), ("baseline", 10.0)]
    assert sweep.baseline_chosen["kind"] == "baseline"
    json.dumps(sweep.to_dict())  # JSON-able as it is


def test_model_of_a_lambda_holds_its_weights(sweep, data):
    model = sweep.model()
    pred = model(data.test.images).argmax(1)
    assert (pred == data.test.labels).float().mean().item() == pytest.approx(sweep.chosen["test_acc"])
    with pytest.raises(ValueError, match="no weights"):
        sweep.state_dict(5.0)


def test_control_is_plain_finetuning_without_failure_samples(sweep, classifier, data):
    plan = train_plan(torch.device("cpu"))  # the precision and layout the sweep's trainer uses here
    model = PaperCNN(1, 32, 4, width=8)
    model.load_state_dict(classifier.state_dict())
    model = plan.model(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(sweep.control["epoch"]):
        for idx in shuffled_batches(len(data.train), 64, gen):
            model.train()
            with plan.autocast():
                logits = model(plan.inputs(data.train.images[idx]))
            loss = F.cross_entropy(logits.float(), data.train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    control = sweep.state_dict(0.0)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(control[name], value)


def test_input_model_is_not_mutated(classifier, data, failure_sets):
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    correct(classifier, data, failure_sets, CorrectConfig(**{**FAST, "epochs": 1, "lambdas": (10.0,)}), run=CPU)
    assert not classifier.training
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())


def test_same_seed_same_sweep(sweep, classifier, data, failure_sets):
    uae = (dotted_zeros(32, 13), torch.zeros(32, dtype=torch.int64))
    again = correct(classifier, data, failure_sets, CorrectConfig(**FAST), run=CPU, baseline=uae)
    assert strip_seconds(again.rows) == strip_seconds(sweep.rows)
    assert all(torch.equal(v, again.state_dict(10.0)[k]) for k, v in sweep.state_dict(10.0).items())


def test_resume_after_cancel_skips_finished_lambdas_and_matches(sweep, classifier, data, failure_sets, tmp_path):
    cfg = CorrectConfig(**{**FAST, "lambdas": (1e-3, 10.0)})

    def cancel_after_second_lambda(event):
        if event.metrics.get("event") == "lambda" and event.metrics["lambda"] == 1e-3:
            raise Cancelled

    with pytest.raises(Cancelled):
        correct(classifier, data, failure_sets, cfg,
                run=RunOptions("cpu", cancel_after_second_lambda, resume_dir=tmp_path))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["lambda-0.0.json", "lambda-0.001.json"]
    events = []
    resumed = correct(classifier, data, failure_sets, cfg, run=RunOptions("cpu", events.append, resume_dir=tmp_path))
    trained = {e.metrics["lambda"] for e in events if e.metrics.get("event") == "epoch"}
    assert trained == {10.0}
    assert events[0].metrics["event"] == "before" and events[0].done == 4   # resumed: 2 λ x 2 epochs done
    assert events[1].done == 5 and events[-1].done == events[-1].total == 6
    defuse_rows = [r for r in sweep.rows if r["kind"] == "defuse"]
    assert strip_seconds(resumed.rows) == strip_seconds(defuse_rows)
    for lam in (0.0, 1e-3, 10.0):  # weights come back from disk
        assert all(torch.equal(v, resumed.state_dict(lam)[k]) for k, v in sweep.state_dict(lam).items())

    reselect = CorrectConfig(**{**FAST, "lambdas": (1e-3, 10.0), "tolerance": 0.5, "tie_standard_errors": 0})
    events.clear()                                 # a selection-only change re-selects, it does not retrain
    again = correct(classifier, data, failure_sets, reselect, run=RunOptions("cpu", events.append, resume_dir=tmp_path))
    assert not [e for e in events if e.metrics.get("event") == "epoch"] and again.chosen["lambda"] == 10.0

    other = CorrectConfig(**{**FAST, "seed": 1})  # other settings: nothing on disk is reused
    events.clear()
    correct(classifier, data, failure_sets, other, run=RunOptions("cpu", events.append, resume_dir=tmp_path))
    assert {e.metrics["lambda"] for e in events if e.metrics.get("event") == "epoch"} == {0.0, 1e-3, 10.0}


def test_vmap_path_matches_sequential_path(classifier, data, failure_sets, monkeypatch):
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", "fp32")  # the stacked engine trains in fp32: compare like with like
    cfg = dict(lambdas=(1e-3, 1.0, 10.0), epochs=1, batch_size=64)  # no batch norm: the control joins the stack
    seq = correct(classifier, data, failure_sets, CorrectConfig(**cfg, parallel="off"), run=CPU)
    par = correct(classifier, data, failure_sets, CorrectConfig(**cfg, parallel="vmap"), run=CPU)
    assert par.config["parallel_used"] == "vmap" and seq.config["parallel_used"] == "off"
    for a, b in zip(seq.best_per_lambda, par.best_per_lambda, strict=True):
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=0.02)
        assert a["failure_test_acc"] == pytest.approx(b["failure_test_acc"], abs=0.05)
    for lam in (0.0, *cfg["lambdas"]):
        for k, v in seq.state_dict(lam).items():
            torch.testing.assert_close(par.state_dict(lam)[k], v, atol=1e-4, rtol=1e-3)


def test_progress_events_follow_lambda_and_epoch(classifier, data, failure_sets):
    events = []
    correct(classifier, data, failure_sets, CorrectConfig(**{**FAST, "epochs": 1}),
            run=RunOptions("cpu", events.append))
    epochs = [e for e in events if e.metrics["event"] == "epoch"]
    assert [e.done for e in epochs] == [1, 2, 3] and all(e.step == "correct" and e.total == 3 for e in epochs)
    assert {"lambda", "epoch", "val_acc", "test_acc", "failure_val_acc", "failure_test_acc"} <= set(epochs[0].metrics)
    assert [e.metrics["lambda"] for e in events if e.metrics["event"] == "lambda"] == [0.0, 1e-3, 10.0]


ROWS = [  # (λ, val_acc, failure_val_acc): crafted to tell the rules apart
    (0.0, 0.950, 0.20), (1e-3, 0.960, 0.20), (1.0, 0.946, 0.90), (2.0, 0.946, 0.90), (10.0, 0.930, 0.99),
]


def crafted():
    return [{"lambda": lam, "val_acc": v, "failure_val_acc": f} for lam, v, f in ROWS]


def test_tolerance_rule_best_failure_accuracy_within_tolerance_ties_to_better_validation():
    assert select_lambda(crafted(), SelectionRule("tolerance", tolerance=0.005))["lambda"] == 1.0
    assert select_lambda(crafted(), SelectionRule("tolerance", tolerance=0.03))["lambda"] == 10.0
    # ties λ=0, better val_acc
    assert select_lambda(crafted(), SelectionRule("tolerance", tolerance=0.0))["lambda"] == 1e-3
    chosen = select_lambda(crafted()[1:], SelectionRule("tolerance", tolerance=0.0, reference_val_acc=0.99))
    assert chosen["lambda"] == 1e-3 and chosen["within_tolerance"] is False


def test_failure_accuracies_within_noise_are_ties_won_by_validation_accuracy():
    rows = [{"lambda": 0.0, "val_acc": 0.960, "failure_val_acc": 0.40},
            {"lambda": 0.1, "val_acc": 0.962, "failure_val_acc": 0.998},
            {"lambda": 1.0, "val_acc": 0.956, "failure_val_acc": 0.999}]
    tied = SelectionRule(tolerance=0.005, n_failure_val=1024, tie_standard_errors=2)
    assert select_lambda(rows, SelectionRule(tolerance=0.005))["lambda"] == 1.0                 # the strict maximum
    assert select_lambda(rows, tied)["lambda"] == 0.1
    # a real difference is no tie: 0.95 vs 0.999 on 1,024 samples is about 7 standard errors
    rows[1]["failure_val_acc"] = 0.95
    assert select_lambda(rows, tied)["lambda"] == 1.0


def test_noise_test_counts_small_differences_as_ties_and_real_ones_not():
    assert within_noise(1.0, 510 / 512, 512, 2)            # 0 against 2 errors in 512
    assert not within_noise(1.0, 500 / 512, 512, 2)        # 0 against 12
    assert within_noise(0.9, 0.87, 100, 2) and not within_noise(0.9, 0.87, 10_000, 2)
    assert not within_noise(1.0, 510 / 512, 512, 0) and within_noise(0.5, 0.5, None, 2)


def test_paper_rule_picks_best_validation_accuracy_among_positive_lambdas():
    chosen = select_lambda(crafted(), SelectionRule("paper"))
    assert chosen["lambda"] == 1e-3 and chosen["rule"] == "paper"


def test_selection_needs_a_reference():
    with pytest.raises(ValueError, match="no λ=0 control"):
        select_lambda(crafted()[1:], SelectionRule("tolerance"))
    with pytest.raises(ValueError, match="rule must be one of"):
        select_lambda(crafted(), SelectionRule("best"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lambdas=()), r"lambdas must be a non-empty list of distinct finite numbers > 0.*; got \(\)"),
    (dict(lambdas=(1.0, -1.0)), r"finite numbers > 0, e.g. 0.1, 1, 10 \(λ=0 is the control\); got \(1.0, -1.0\)"),
    (dict(lambdas=(1.0, 1.0)), r"lambdas must be a non-empty list of distinct .*; got \(1.0, 1.0\)"),
    (dict(lambdas=(0.0,)), "control"),
    (dict(epochs=0), r"epochs must be an integer in \[1, 10000\]; got 0"),
    (dict(selection="best"), r"selection must be one of \['paper', 'tolerance', 'two_sided'\]; got 'best'"),
    (dict(per_lambda_epoch_choice="last"), "per_lambda_epoch_choice must be one of"),
    (dict(parallel="gpu"), "parallel must be one of"),
    (dict(tolerance=2.0), r"tolerance must be a finite number in \[0, 1\]; got 2.0"),
    (dict(lr=0.0), r"lr must be a finite number in \(0, 1000\]; got 0.0"),
    (dict(failure_batch_size=0), r"failure_batch_size must be None or an integer in \[1, 1048576\]; got 0"),
    (dict(tie_standard_errors=-1), r"tie_standard_errors must be a finite number in \[0, 1000\]; got -1"),
    (dict(failure_labels="mixed"), r"failure_labels must be one of \['reviewer', 'scenario'\]"),
])
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CorrectConfig(**kwargs)


def test_defaults_are_the_papers():
    cfg = CorrectConfig()
    assert cfg.lambdas == PAPER_LAMBDAS and len(cfg.lambdas) == 17
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.include_control) == (3, 256, 1e-3, True)


def test_bad_inputs_are_refused(classifier, data, failure_sets):
    cfg = CorrectConfig(**FAST)
    with pytest.raises(ValueError, match="non-empty list of FailureSet"):
        correct(classifier, data, [], cfg, run=CPU)
    small = FailureSet(1, 0, torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16))
    with pytest.raises(ValueError, match=r"must be \(n, 1, 32, 32\) floats in \[0, 1\]"):
        correct(classifier, data, [small], cfg, run=CPU)
    with pytest.raises(ValueError, match=r"labels must be classes in \[0, 4\)"):
        correct(classifier, data, failure_sets, cfg, run=CPU,
                baseline=(dotted_zeros(4, 1), torch.full((4,), 7)))
    with pytest.raises(ValueError, match="val must be non-empty"):
        FailureSet(1, 0, torch.rand(4, 1, 32, 32), torch.rand(0, 1, 32, 32), torch.rand(4, 1, 32, 32))


def test_stack_failure_sets_labels_each_sample_with_its_scenario():
    sets = [FailureSet(5, 2, *(torch.rand(n, 1, 32, 32) for n in (3, 2, 2))),
            FailureSet(9, 1, *(torch.rand(n, 1, 32, 32) for n in (4, 2, 2)))]
    images, labels, ids = stack_failure_sets(sets)
    assert images.shape == (7, 1, 32, 32)
    assert labels.tolist() == [2] * 3 + [1] * 4 and ids.tolist() == [5] * 3 + [9] * 4
    assert sets[1].summary() == {"scenario_id": 9, "label": 1, "n_finetune": 4, "n_val": 2, "n_test": 2,
                                 "n_reviewed": 0, "finetune_labels": "scenario",
                                 "finetune_share_scenario_label": None, "agreed": None}


def test_stack_failure_sets_uses_per_sample_finetune_labels_where_given():
    own = torch.tensor([2, 0, 2])
    sets = [FailureSet(5, 2, *(torch.rand(n, 1, 32, 32) for n in (3, 2, 2)), finetune_labels=own),
            FailureSet(9, 1, *(torch.rand(n, 1, 32, 32) for n in (4, 2, 2)))]
    assert stack_failure_sets(sets)[1].tolist() == [2, 0, 2] + [1] * 4
    assert stack_failure_sets(sets, "val")[1].tolist() == [2, 2, 1, 1]  # val/test keep the scenario label
    assert sets[0].summary()["finetune_share_scenario_label"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="finetune_labels must be 3 class indices"):
        FailureSet(5, 2, *(torch.rand(n, 1, 32, 32) for n in (3, 2, 2)), finetune_labels=torch.tensor([1, 2]))


def mixed_failure_set(seed: int, data) -> FailureSet:
    """A scenario that mixes dotted 0s (the flaw) with clean 2s, labeled 0 as a whole (the τ=0.5 trap)."""
    def half_and_half(n, s):
        x, y = bar_images(8 * n, seed=s)
        return torch.cat([add_dot(x[y == 0][:n]), x[y == 2][:n]]), torch.tensor([0] * n + [2] * n)

    (f, f_own), (v, v_own), (t, t_own) = (half_and_half(24, seed + k) for k in range(3))
    return FailureSet(3, 0, f, v, t, val_reviewer=v_own, test_reviewer=t_own, finetune_labels=f_own)


def test_per_sample_labels_fix_the_flaw_without_teaching_the_mixed_in_class_a_wrong_label(classifier, data):
    fs = mixed_failure_set(20, data)
    runs = {mode: correct(classifier, data, [fs], CorrectConfig(**FAST, failure_labels=mode), run=CPU)
            for mode in ("scenario", "reviewer")}
    own, paper = runs["reviewer"].chosen, runs["scenario"].chosen
    assert own["failure_test_acc_reviewer"] > 0.9                      # the dotted 0s and the 2s both right
    assert own["failure_test_acc_reviewer"] > paper["failure_test_acc_reviewer"] + 0.2
    paper_big = next(r for r in runs["scenario"].best_per_lambda if r["lambda"] == 10.0)
    assert paper_big["val_acc"] < own["val_acc"] - 0.1                 # teaching the 2s "0" costs accuracy on D


def test_per_sample_labels_need_them_on_every_set(classifier, data, failure_sets):
    cfg = CorrectConfig(**FAST, failure_labels="reviewer")
    with pytest.raises(ValueError, match="failure_labels='reviewer' needs per-sample reviewer labels"):
        correct(classifier, data, failure_sets, cfg, run=CPU)
    fs = failure_sets[0]
    unreviewed = FailureSet(fs.scenario_id, fs.label, fs.finetune, fs.val, fs.test,
                            val_reviewer=torch.full((len(fs.val),), -1), finetune_labels=torch.zeros(len(fs.finetune)))
    with pytest.raises(ValueError, match="reviewed val_reviewer samples"):   # refused before any training
        correct(classifier, data, [unreviewed], cfg, run=CPU)


def test_in_reviewer_mode_the_failure_val_epoch_choice_uses_the_reviewer_labels():
    assert epoch_metric(CorrectConfig(per_lambda_epoch_choice="failure_val")) == "failure_val_acc"
    assert epoch_metric(CorrectConfig(per_lambda_epoch_choice="failure_val", failure_labels="reviewer")) \
        == "failure_val_acc_reviewer"
    assert epoch_metric(CorrectConfig(failure_labels="reviewer")) == "val_acc"
    rows = [{"lambda": 0.0, "val_acc": 0.9, "failure_val_acc_reviewer": None}]
    with pytest.raises(ValueError, match="lack 'failure_val_acc_reviewer'"):
        select_lambda(rows, SelectionRule(failure_key="failure_val_acc_reviewer"))


def test_selection_can_use_the_reviewer_measure():
    rows = [{**r, "failure_val_acc_reviewer": 1.0 - r["failure_val_acc"]} for r in crafted()]
    chosen = select_lambda(rows, SelectionRule("tolerance", tolerance=0.005, failure_key="failure_val_acc_reviewer"))
    assert chosen["lambda"] == 1e-3


def test_a_sweep_heartbeat_gives_a_rate_and_an_eta_before_the_first_epoch_ends():
    from defuse.correct.training import Tracker

    events = []
    track = Tracker(6, 0, events.append)
    track.heartbeat(share=0.5, kind="defuse", lambdas=[1.0], epoch=1, batch=50, steps_per_s=3.0)
    (event,) = events
    assert event.done == 0 and event.rate > 0 and event.eta_s == pytest.approx(5.5 / event.rate, rel=1e-6)
    assert event.metrics["steps_per_s"] == 3.0 and event.metrics["event"] == "batch"


def test_halving_stops_the_worse_half_after_an_epoch_and_trains_the_rest_as_the_full_sweep(classifier, data,
                                                                                           failure_sets):
    from defuse.correct.halving import _score

    cfg = dict(lambdas=(1e-3, 0.1, 1.0, 10.0), epochs=2, batch_size=64, parallel="off")
    full = correct(classifier, data, failure_sets, CorrectConfig(**cfg), run=CPU)
    events = []
    half = correct(classifier, data, failure_sets, CorrectConfig(**cfg, halving=True),
                   run=RunOptions("cpu", events.append))
    trained = {lam: max(r["epoch"] for r in half.rows if r["lambda"] == lam) for lam in (0.0, *cfg["lambdas"])}
    first = {r["lambda"]: r for r in full.rows if r["epoch"] == 1 and r["lambda"] > 0}
    control_1 = next(r for r in full.rows if r["lambda"] == 0 and r["epoch"] == 1)["val_acc"]
    ranked = sorted(first, key=lambda lam: _score(first[lam], control_1, CorrectConfig(**cfg)), reverse=True)
    assert trained == {0.0: 2, **{lam: 2 if lam in ranked[:2] else 1 for lam in cfg["lambdas"]}}
    keys = ("val_acc", "test_acc", "failure_val_acc", "failure_test_acc")
    for lam, n in trained.items():
        mine = [[r[k] for k in keys] for r in half.rows if r["lambda"] == lam]
        assert mine == [[r[k] for k in keys] for r in full.rows if r["lambda"] == lam][:n]
        if n == 2:
            for k, v in full.state_dict(lam).items():
                torch.testing.assert_close(half.state_dict(lam)[k], v)
    assert events[-1].done == events[-1].total  # the stopped λ's epochs count as done


TWO_SIDED = [  # (λ, val_acc, failure_val_fix_rate, failure_val_collateral): crafted to tell the rules apart
    (0.0, 0.950, 0.20, 0.010), (0.01, 0.951, 0.80, 0.015), (1.0, 0.949, 0.95, 0.300), (10.0, 0.930, 1.00, 0.500),
]


def two_sided_rows():
    return [{"lambda": lam, "val_acc": v, "failure_val_acc": f, "failure_val_fix_rate": f,
             "failure_val_collateral": c} for lam, v, f, c in TWO_SIDED]


def test_two_sided_rule_takes_the_best_fix_whose_collateral_stays_near_the_controls():
    # λ=1 fixes more, but damages 30% of what the original got right: the netted rule would take it
    assert select_lambda(two_sided_rows(), SelectionRule("tolerance", failure_key="failure_val_acc"))["lambda"] == 1.0
    rule = SelectionRule("two_sided", reference_collateral=0.010)
    assert select_lambda(two_sided_rows(), rule)["lambda"] == 0.01
    loose = SelectionRule("two_sided", reference_collateral=0.010, collateral_margin=0.5)
    assert select_lambda(two_sided_rows(), loose)["lambda"] == 1.0       # λ=10 is out on validation accuracy
    # fix rates within noise on 20 real failures are ties: the lower collateral wins
    tied = SelectionRule("two_sided", reference_collateral=0.010, collateral_margin=0.5, n_failure_val=20,
                         tie_standard_errors=2.0)
    assert select_lambda(two_sided_rows(), tied)["lambda"] == 0.01
    nothing_to_fix = [{**r, "failure_val_fix_rate": None} for r in two_sided_rows()]  # no real failure read
    assert select_lambda(nothing_to_fix, rule)["lambda"] == 0.0                       # the least damage
    without = [{k: v for k, v in r.items() if k != "failure_val_collateral"} for r in two_sided_rows()]
    with pytest.raises(ValueError, match="--reviewer auto"):
        select_lambda(without, rule)


def test_two_sided_sweep_measures_fixes_and_damage_on_failure_validation(classifier, data):
    ones = bar_images(64, seed=21)
    ones = ones[0][ones[1] == 1][:16]
    val = torch.cat([dotted_zeros(32, 11), ones])   # real failures (read 0, the original says 1) and 1s it gets right
    clear = torch.cat([torch.zeros(32, dtype=torch.int64), torch.ones(len(ones), dtype=torch.int64)])
    clear[:4] = -1                                    # four samples the reviewer's members do not agree on
    sets = [FailureSet(3, 0, dotted_zeros(48, 10), val, dotted_zeros(48, 12), val_reviewer=clear)]
    sweep = correct(classifier, data, sets, CorrectConfig(**{**FAST, "selection": "two_sided"}), run=CPU)
    before, control, chosen = sweep.before, sweep.control, sweep.chosen
    assert before["failure_val_fix_rate"] == 0.0 and before["failure_val_collateral"] == 0.0
    assert before["n_failure_val_real"] == 28 and before["n_failure_val_right_before"] > 0
    assert control["failure_val_fix_rate"] < 0.2 and chosen["lambda"] == 10.0
    assert chosen["failure_val_fix_rate"] > 0.9
    assert chosen["failure_val_collateral"] <= control["failure_val_collateral"] + 0.01


def test_two_sided_choice_refuses_before_training_without_reviewer_readings_and_grades_all_unclear(classifier, data):
    sets = [FailureSet(3, 0, dotted_zeros(48, 10), dotted_zeros(48, 11), dotted_zeros(48, 12))]
    with pytest.raises(ValueError, match="--reviewer auto"):
        correct(classifier, data, sets, CorrectConfig(**{**FAST, "selection": "two_sided"}), run=CPU)
    unclear = [FailureSet(3, 0, dotted_zeros(48, 10), dotted_zeros(48, 11), dotted_zeros(48, 12),
                          val_reviewer=torch.full((48,), -1, dtype=torch.int64))]   # no member read any clearly
    sweep = correct(classifier, data, unclear, CorrectConfig(**{**FAST, "epochs": 1, "selection": "two_sided"}),
                    run=CPU)
    assert sweep.chosen["failure_val_fix_rate"] is None and sweep.chosen["n_failure_val_real"] == 0
