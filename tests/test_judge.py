"""The independent judge: its grading arithmetic on hand-made cases, and what it learns from."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from defuse.data.datasets import ImageData, Split
from defuse.evaluation.judge import (
    JudgeConfig,
    fingerprint,
    judge_training_set,
    load_or_train_judge,
    per_sample_accuracy,
    scenario_purity,
    train_judge,
    uae_shares,
)
from tests.toys import tiny_image_data

TINY = JudgeConfig(width=4, epochs=2, batch_size=32, lr=1e-2)


@pytest.fixture(scope="module")
def data():
    return tiny_image_data()


@pytest.fixture(scope="module")
def judge(data):
    return train_judge(data, TINY, device="cpu")


def test_uae_shares_count_real_artefact_and_other_by_hand():
    #            real    artefact  real   artefact  other
    judge_says = [1,      2,        3,     0,        4]
    shares = uae_shares(judge_says, source_labels=[1, 0, 3, 1, 0], classifier_labels=[2, 2, 0, 0, 1])
    assert shares == {"real_share": 0.4, "artefact_share": 0.4, "other_share": pytest.approx(0.2), "n": 5}
    empty = uae_shares(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert empty["n"] == 0 and math.isnan(empty["real_share"])


def test_scenario_purity_and_label_mix_by_hand():
    per = scenario_purity([0, 0, 1, 2, 3, 3, 3, 1], scenario_ids=[0, 0, 0, 0, 5, 5, 5, 5],
                          scenario_labels={0: 0, 5: 3})
    assert per[0] == {"label": 0, "purity": 0.5, "label_mix": {0: 0.5, 1: 0.25, 2: 0.25}, "n": 4}
    assert per[5] == {"label": 3, "purity": 0.75, "label_mix": {3: 0.75, 1: 0.25}, "n": 4}
    assert list(per[5]["label_mix"]) == [3, 1]  # most common first


def test_per_sample_accuracy_by_hand():
    assert per_sample_accuracy([1, 2, 3, 3], judge_labels=[1, 0, 3, 2]) == 0.5
    assert math.isnan(per_sample_accuracy([], judge_labels=np.zeros(0, np.int64)))


@pytest.mark.parametrize("call,match", [
    (lambda: uae_shares([1, 2], [1], [1, 2]), r"source_labels must be a 1-D array of class indices of length 2"),
    (lambda: scenario_purity([1, 2], [0, 1], {0: 1}), r"scenario_labels has no label for scenarios \[1\]"),
    (lambda: per_sample_accuracy([0.5], [1]), "predictions must be a 1-D array of class indices"),
    (lambda: JudgeConfig(epochs=0), r"epochs must be an integer in \[1, 10000\]; got 0"),
    (lambda: JudgeConfig(lr=0), r"lr must be a finite number in \(0, 1000\]; got 0"),
])
def test_bad_inputs_say_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _rows(x: torch.Tensor) -> set:
    return {r.numpy().tobytes() for r in x}


def test_the_judge_trains_on_no_validation_or_test_value(data, judge):
    images, labels = judge_training_set(data)
    assert not _rows(images) & (_rows(data.val.images) | _rows(data.test.images))
    assert judge.meta["metrics"]["n_train"] == len(data.train) and judge.meta["metrics"]["trained_on"] == "train"
    # replace validation and test by other values: the trained weights stay bit-identical
    gen = torch.Generator().manual_seed(7)
    other = ImageData(data.train, *(Split(torch.rand(s.images.shape, generator=gen), s.labels.flip(0))
                                    for s in (data.val, data.test)), class_names=data.class_names, spec=data.spec)
    again = train_judge(other, TINY, device="cpu").model.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in judge.model.state_dict().items())


def test_the_judge_learns_the_toy_classes_and_reports_its_own_test_accuracy(data, judge):
    assert judge.test_acc > 0.9  # chance: 0.25
    assert judge.test_acc == pytest.approx(float(np.mean(judge.labels(data.test.images, device="cpu")
                                                          == data.test.labels.numpy())))


def test_saved_under_its_fingerprint_and_reused(data, tmp_path):
    first = load_or_train_judge(data, TINY, tmp_path, device="cpu")
    key = fingerprint(data, TINY)
    assert (tmp_path / f"judge-{key}.safetensors").is_file() and first.meta["fingerprint"] == key
    stamp = (tmp_path / f"judge-{key}.safetensors").stat().st_mtime_ns
    second = load_or_train_judge(data, TINY, tmp_path, device="cpu")
    assert (tmp_path / f"judge-{key}.safetensors").stat().st_mtime_ns == stamp  # loaded, not retrained
    x = data.test.images[:16]
    assert np.array_equal(first.labels(x, device="cpu"), second.labels(x, device="cpu"))
    assert fingerprint(data, JudgeConfig(width=4, epochs=3, batch_size=32, lr=1e-2)) != key


def test_no_pipeline_step_uses_the_judge():
    """Only the evaluation modules import it: the judge labels nothing the method trains or decides on."""
    package = Path(__file__).resolve().parents[1] / "defuse"
    imports = re.compile(r"^\s*(from|import)\s.*\b(judge|grading)\b", re.MULTILINE)
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if p.name not in ("judge.py", "grading.py") and imports.search(p.read_text()))
    assert users == []
