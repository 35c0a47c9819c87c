import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from defuse.distill.sampling import ReviewSamples
from defuse.label.reviewer import (
    Reviewer,
    ReviewerConfig,
    agreement_summary,
    label_examples,
    load_reviewer,
    review_scenarios,
    reviewer_agreement,
    train_reviewer,
)
from defuse.label.store import LabelStore
from defuse.label.verdicts import verdicts
from defuse.nets import checkpoints
from tests.toys import BarDecoder, tiny_image_data

CLASSES, SIZE, BAND = 4, 32, 8


@pytest.fixture(scope="module")
def data():
    return tiny_image_data(num_classes=CLASSES)


@pytest.fixture(scope="module")
def trained(data):
    events = []
    # without the grader (its own tests: tests/test_fix_measure.py), so two networks train here
    cfg = ReviewerConfig(members=2, epochs=2, batch_size=32, architectures=("paper-cnn",), grader=False)
    return train_reviewer(data, cfg, device="cpu", on_progress=events.append), events


@pytest.fixture(scope="module")
def reviewer(trained):
    return trained[0]


class BandClassifier(nn.Module):
    """Stub classifier: reads the bar's band, but calls class ``wrong`` images ``wrong_to``."""

    def __init__(self, wrong=2, wrong_to=3, num_classes=CLASSES):
        super().__init__()
        self.wrong, self.wrong_to, self.num_classes = wrong, wrong_to, num_classes

    def forward(self, x):
        pred = x.mean(dim=(1, 3)).view(len(x), CLASSES, BAND).mean(2).argmax(1)
        pred = torch.where(pred == self.wrong, torch.full_like(pred, self.wrong_to), pred)
        return 10.0 * F.one_hot(pred, self.num_classes).float()


class FixedProbs(nn.Module):
    """Stub member: the same probabilities for every image."""

    def __init__(self, probs):
        super().__init__()
        self.register_buffer("log_probs", torch.log(torch.tensor(probs) + 1e-12))

    def forward(self, x):
        return self.log_probs.expand(len(x), -1)


def test_reviewer_beats_chance_by_far(reviewer, trained, data):
    pred = reviewer.predict(data.test.images, device="cpu")
    assert np.mean(pred.labels == data.test.labels.numpy()) > 0.9          # chance is 0.25
    assert pred.probs.shape == (64, CLASSES) and np.allclose(pred.probs.sum(1), 1, atol=1e-5)
    assert set(np.unique(pred.agreement)) <= {0.5, 1.0}
    assert len(reviewer) == 2 and reviewer.name == "auto-reviewer" and reviewer.rho == 0.5
    assert [m["config"]["seed"] for m in reviewer.member_meta] == [1000, 1001]
    assert all(m["config"]["class_keep"] == () for m in reviewer.member_meta)
    events = trained[1]
    assert events[-1].step == "train-reviewer" and events[-1].done == events[-1].total == 2 * 2 * 8


def test_members_cycle_through_the_architectures():
    small = tiny_image_data(n_train=16, num_classes=CLASSES)
    r = train_reviewer(small, ReviewerConfig(members=3, epochs=1, batch_size=16), device="cpu")
    assert [m["arch_kwargs"].get("width") for m in r.member_meta] == [None, 128, None]
    assert [m["architecture"] for m in r.member_meta] == ["paper-cnn"] * 3
    assert r.members[1].features[0].out_channels == 128


def test_a_tie_goes_to_the_higher_mean_probability():
    members = [FixedProbs([0.6, 0.4, 0.0, 0.0]), FixedProbs([0.0, 0.45, 0.55, 0.0])]
    r = Reviewer(members, [{}, {}])
    pred = r.predict(torch.zeros(3, 1, SIZE, SIZE), device="cpu")
    # votes 0 and 2 tie; mean probabilities 0.3 vs 0.275. Class 1 has the highest mean (0.425) but no vote.
    assert pred.labels.tolist() == [0, 0, 0] and np.allclose(pred.agreement, 0.5)
    np.testing.assert_allclose(pred.probs[0], [0.3, 0.425, 0.275, 0.0], atol=1e-6)
    r = Reviewer(members[:1] + [FixedProbs([0.1, 0.0, 0.9, 0.0])], [{}, {}])
    pred = r.predict(torch.zeros(2, 1, SIZE, SIZE), device="cpu")
    assert pred.labels.tolist() == [2, 2] and np.allclose(pred.agreement, 0.5)


def test_save_load_round_trip_gives_identical_predictions(reviewer, data, tmp_path):
    reviewer.save(tmp_path)
    index = reviewer.save(tmp_path)  # a second save replaces the first one's files
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("member-")) == ["reviewer.json"]
    assert len(list(tmp_path.glob("member-*"))) == 4 and len(index["members"]) == 2
    loaded = Reviewer.load(tmp_path)
    a, b = reviewer.predict(data.test.images, device="cpu"), loaded.predict(data.test.images, device="cpu")
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.probs, b.probs)
    assert (loaded.name, loaded.rho, loaded.samples_per_scenario, loaded.class_names) == \
        ("auto-reviewer", 0.5, 10, data.class_names)
    assert isinstance(load_reviewer(tmp_path), Reviewer)


def test_load_refuses_missing_or_tampered_reviewers(reviewer, tmp_path):
    with pytest.raises(ValueError, match="reviewer.json is missing"):
        Reviewer.load(tmp_path)
    index = reviewer.save(tmp_path)
    index["members"][0]["sha256"] = "0" * 64
    (tmp_path / "reviewer.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="does not match the checksum in"):
        Reviewer.load(tmp_path)


def test_from_classifier_checkpoint_reviews_with_one_network(reviewer, data, tmp_path):
    meta = reviewer.member_meta[0]
    checkpoints.save_model(reviewer.members[0], tmp_path / "clf", kind="classifier",
                           architecture=meta["architecture"], arch_kwargs=meta["arch_kwargs"],
                           class_names=data.class_names)
    single = Reviewer.from_classifier_checkpoint(tmp_path / "clf.safetensors", name="ref-net")
    assert len(single) == 1 and single.name == "ref-net" and single.class_names == data.class_names
    pred = single.predict(data.test.images, device="cpu")
    with torch.no_grad():
        expected = reviewer.members[0](data.test.images).argmax(1).numpy()
    assert np.array_equal(pred.labels, expected) and np.all(pred.agreement == 1.0)
    assert len(load_reviewer(tmp_path / "clf.safetensors")) == 1


def test_review_scenarios_finds_the_one_failure_scenario(reviewer, tmp_path):
    means = np.array([[c, 0.0] for c in range(CLASSES)])
    covs = np.stack([0.01 * np.eye(2)] * CLASSES)
    events = []
    with LabelStore(tmp_path / "labels.sqlite") as store:
        samples = ReviewSamples(BarDecoder(), BandClassifier(wrong=2, wrong_to=3), (means, covs), tau=0.5, seed=0)
        result = review_scenarios(reviewer, samples, store, device="cpu", on_progress=events.append)
        decisions = store.decisions()
        preds = {j: [3 if j == 2 else j] * 10 for j in range(CLASSES)}
        from_store = verdicts(store, predictions=preds)
    assert sorted(result) == [0, 1, 2, 3]
    assert [result[j].is_failure for j in range(CLASSES)] == [False, False, True, False]
    assert result[2].label == 2 and result[2].disagree_share == 1.0 and result[2].n_samples == 10
    assert all(result[j].label is None and result[j].disagree_share == 0.0 for j in (0, 1, 3))
    assert all(0.5 <= v.agreement <= 1 for v in result.values())
    assert len(decisions) == 40 and {d.annotator for d in decisions} == {"auto-reviewer"}
    for j in range(CLASSES):
        mine = [d for d in decisions if d.scenario == j]
        assert sorted(d.sample_index for d in mine) == list(range(10))
        assert all(d.is_failure == (j == 2) and d.label == j for d in mine)
    assert {j: (v.is_failure, v.label) for j, v in from_store.items()} == \
        {j: (v.is_failure, v.label) for j, v in result.items()}
    assert events[-1].step == "review" and events[-1].done == events[-1].total == 4


def test_review_scenarios_refuses_mismatched_classes_and_bad_rho(reviewer, tmp_path):
    scen = (np.zeros((1, 2)), 0.01 * np.eye(2)[None])
    with LabelStore(tmp_path / "labels.sqlite") as store:
        with pytest.raises(ValueError, match="the reviewer knows 4 classes but the classifier 5"):
            review_scenarios(reviewer, ReviewSamples(BarDecoder(), BandClassifier(num_classes=5), scen, tau=0.5),
                             store, device="cpu")
        assert store.decisions() == []
    with pytest.raises(ValueError, match=r"rho must be a share in \[0, 1\)"):   # a reviewer reviews with its own ρ
        Reviewer(reviewer.members, reviewer.member_meta, rho=1.5)


def test_agreement_and_labels_of_raw_examples(reviewer, data):
    x = data.test.images
    assert reviewer_agreement(reviewer, reviewer, x, device="cpu") == 1.0
    single = Reviewer(reviewer.members[:1], reviewer.member_meta[:1])
    assert 0.9 <= reviewer_agreement(reviewer, single, x, device="cpu") <= 1.0
    labels = label_examples(reviewer, x, device="cpu")
    assert labels.dtype == np.int64 and np.array_equal(labels, reviewer.predict(x, device="cpu").labels)


def test_agreement_summary_splits_failure_and_other_samples():
    s = agreement_summary([1.0, 0.5, 1.0, 1.0], np.array([True, True, False, False]))
    assert s["failure"] == {"mean": 0.75, "se": pytest.approx(0.25), "n": 2}
    assert s["non_failure"] == {"mean": 1.0, "se": 0.0, "n": 2}
    assert s["combined"]["mean"] == 0.875 and s["combined"]["n"] == 4
    empty = agreement_summary([1.0], np.array([False]))["failure"]
    assert math.isnan(empty["mean"]) and empty["n"] == 0
    with pytest.raises(ValueError, match=r"in_failure_scenario \(n,\) bool"):
        agreement_summary([1.0, 0.5], np.array([1, 0]))
    with pytest.raises(ValueError, match=r"shares in \[0, 1\]"):
        agreement_summary([2.0], np.array([True]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(members=0), r"members must be an integer in \[1, 100\]; got 0"),
    (dict(epochs=0), r"epochs must be an integer in \[1, 10000\]; got 0"),
    (dict(architectures=("vgg",)), r"architectures must be a non-empty list of \['paper-cnn', 'paper-cnn-wide'"),
    (dict(architectures=()), "architectures must be a non-empty list"),
    (dict(optimizer="lbfgs"), r"optimizer must be one of \['adadelta', 'adam', 'sgd'\]; got 'lbfgs'"),
    (dict(lr=0), r"lr must be a finite number in \(0, 1000\]; got 0"),
    (dict(seed=-1), r"seed must be an integer in \[0, 9223372036854775807\]; got -1"),
    (dict(rho=1.0), r"rho must be a share in \[0, 1\) \(the paper: 0.5\); got 1.0"),
    (dict(samples_per_scenario=0), r"samples_per_scenario must be an integer in \[1, 1048576\]"),
    (dict(name=" "), "name must be a non-empty annotator name"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReviewerConfig(**kwargs)


def test_bad_reviewers_and_images_are_refused(reviewer):
    with pytest.raises(ValueError, match="a reviewer needs >= 1 member"):
        Reviewer([], [])
    with pytest.raises(ValueError, match=r"images must be a non-empty \(N, C, H, W\) float tensor"):
        reviewer.predict(torch.zeros(3, 32, 32))


def test_the_auto_reviewer_is_trained_once_then_reused(project_copy, monkeypatch):
    from defuse.steps import label as label_step
    from defuse.workspace import Workspace

    ws, cfg, calls = Workspace.open(project_copy("reviewer")), ReviewerConfig(members=1, epochs=1), []
    real = label_step.train_reviewer
    monkeypatch.setattr(label_step, "train_reviewer", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert not label_step.reviewer_ready(ws, cfg)
    first = label_step.get_reviewer(ws, "auto", cfg=cfg, device="cpu")
    again = label_step.get_reviewer(ws, "auto", cfg=cfg, device="cpu")   # its stamp reads back from JSON
    assert calls == [1] and label_step.reviewer_ready(ws, cfg) and len(again.members) == len(first.members)
    assert not label_step.reviewer_ready(ws, ReviewerConfig(members=2, epochs=1))   # another config: retrain
    assert label_step.reviewer_ready(ws)                       # no config asked for (the app, --reviewer auto): any
    label_step.get_reviewer(ws, "auto", device="cpu")          # reuses the small one instead of training the default
    assert calls == [1]
