"""The online batch-size tuner: tries each candidate in turn, keeps the fastest, never changes results."""

import pytest

from defuse.identify.autotune import BatchTuner


def run(tuner, seconds_per_item, batches=20, last_partial=False):
    sizes = []
    for i in range(batches):
        size = tuner.size()
        items = size // 2 if last_partial and i == batches - 1 else size
        tuner.record(size, items, items * seconds_per_item[size])
        sizes.append(size)
    return sizes


def test_tries_the_candidates_interleaved_then_keeps_the_fastest():
    tuner = BatchTuner((256, 1024), trials=3)
    sizes = run(tuner, {256: 1e-4, 1024: 0.5e-4})
    assert sizes[:6] == [256, 1024] * 3 and set(sizes[6:]) == {1024}
    assert tuner.chosen == 1024 and tuner.summary()["batch_size"] == 1024
    assert len(tuner.summary()["batch_size_trials"]["256"]) == 3


def test_a_slow_first_batch_does_not_decide():
    tuner = BatchTuner((256, 1024), trials=2)
    times = iter([1.0, 0.1, 0.02, 0.1])            # 256's first batch pays a warm-up
    for _ in range(4):
        size = tuner.size()
        tuner.record(size, size, next(times))
    assert tuner.chosen == 256                     # best of its trials: 12.8k/s against 10.2k/s at 1024


def test_partial_batches_and_other_sizes_are_not_measured():
    tuner = BatchTuner((256, 1024), trials=1)
    tuner.record(256, 100, 0.001)                  # the tail of a chunk: too small to compare
    tuner.record(999, 999, 0.001)
    assert tuner.rates == {256: [], 1024: []} and tuner.size() == 256


def test_fixed_size_never_changes():
    tuner = BatchTuner.fixed(65536)
    assert run(tuner, {65536: 1e-6}, batches=3) == [65536] * 3 and tuner.chosen == 65536


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_nonsense_timings_are_ignored(seconds):
    tuner = BatchTuner((256, 1024), trials=1)
    tuner.record(256, 256, seconds)
    assert tuner.rates[256] == []
