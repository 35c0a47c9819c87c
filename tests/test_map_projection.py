"""The latent map's projection: fitted on the training codes plus a few codes per source, then placing every
other code, with progress that counts codes placed (defuse/distill/projections.py, issue #17). UMAP itself is
measured by benchmarks/map_readability.py: it compiles for minutes, too slow for a test."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from tqdm import tqdm

from defuse.distill.embed import EmbedConfig, _fit_rows, embed_codes
from defuse.distill.projections import _EpochStream, epoch_tqdm_kwds, nearest_placement, per_source_rows


@pytest.fixture(scope="module")
def codes():
    """300 training codes and 600 failure codes: 60 sources of 10 near-duplicates each."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 6)).astype(np.float32)
    sources = np.repeat(np.arange(60), 10)
    fail = (rng.normal(size=(60, 6)) + 2)[sources] + 0.05 * rng.normal(size=(600, 6))
    return train, fail.astype(np.float32), sources


def test_per_source_rows_spreads_its_picks_over_each_source():
    sources = np.array([7, 7, 7, 7, 7, 7, 3, 3, 9])   # a source's entries in their (noise-norm) order
    assert per_source_rows(sources, 3).tolist() == [0, 2, 4, 6, 7, 8]  # first, middle, late; all of small ones
    assert per_source_rows(sources, 1).tolist() == [0, 6, 8]
    assert per_source_rows(np.array([2, 5, 2, 5]), 1).tolist() == [0, 1]   # unsorted: the first of each
    assert per_source_rows(np.zeros(0, np.int64), 3).tolist() == []


def test_pca_is_fitted_per_source_and_places_the_rest(codes):
    train, fail, sources = codes
    events = []
    emb = embed_codes(train, fail, EmbedConfig(method="pca"), sources=sources, on_progress=events.append)
    fit = np.r_[np.arange(300), 300 + per_source_rows(sources, 3)]
    assert events[0].metrics == {"points": 900, "fitted_on": 300 + 60 * 3}
    both = np.concatenate([train, fail])
    expected = PCA(n_components=2, random_state=0).fit(both[fit]).transform(both)
    np.testing.assert_allclose(emb.coords, expected, rtol=1e-4, atol=1e-4)


def test_every_code_is_fitted_when_asked_or_when_the_method_cannot_place_codes(codes):
    train, fail, sources = codes
    events = []
    emb = embed_codes(train, fail, EmbedConfig(method="pca", fit_per_source=0), sources=sources,
                      on_progress=events.append)
    assert events[0].metrics["fitted_on"] == len(emb) == 900
    np.testing.assert_allclose(emb.coords, PCA(n_components=2, random_state=0).fit_transform(
        np.concatenate([train, fail])), rtol=1e-4, atol=1e-4)
    for method in ("umap", "tsne"):  # their fits take seconds to minutes: only the rows they are fitted on here
        rows = _fit_rows(5, np.array([4, 4, 4, 4, 4, 1]), EmbedConfig(method=method))  # 5 training codes first
        assert rows.tolist() == [0, 1, 2, 3, 4] + [5 + 0, 5 + 1, 5 + 3, 5 + 5]  # source 4: ranks 0, 5//3, 10//3
    events = []
    embed_codes(train, fail, EmbedConfig(method="pca"), on_progress=events.append)   # sources unknown
    assert events[0].metrics["fitted_on"] == 900


def test_a_code_is_placed_among_its_nearest_fitted_codes():
    fit_codes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0], [100.0, 100.0]])
    coords = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 2.0], [2.0, 2.0], [1.5, 1.5], [9.0, 9.0]])
    place = nearest_placement(fit_codes, coords, k=5)
    np.testing.assert_allclose(place(fit_codes[[4]]), [[1.5, 1.5]], atol=1e-5)  # a duplicate: its twin's place
    np.testing.assert_allclose(place(np.array([[5.0, 5.0001]])), [[1.5, 1.5]], atol=1e-3)
    far = place(np.array([[5.0, -40.0]]))                      # among the first five, never the far sixth
    assert 1.0 <= far[0, 0] <= 2.0 and 1.0 <= far[0, 1] <= 2.0


def test_progress_counts_codes_placed_with_an_eta(codes):
    train, fail, sources = codes
    events = []
    embed_codes(train, fail, EmbedConfig(method="pca"), sources=sources, on_progress=events.append)
    done = [e.done for e in events]
    assert len(events) > 2 and all(e.total == 900 for e in events)
    assert done[0] == 0 and done[-1] == 900 and all(b > a for a, b in zip(done, done[1:], strict=False))
    assert events[0].eta_s is None and all(e.eta_s is not None for e in events[2:])


def test_umaps_epoch_bar_reports_growing_fractions():
    seen = []
    stream = _EpochStream(seen.append)
    kwds = epoch_tqdm_kwds(stream)
    assert kwds["disable"] is False and kwds["file"] is stream   # UMAP silences its bar unless told otherwise
    for _ in tqdm(range(40), **{**kwds, "mininterval": 0, "miniters": 1}):
        pass
    assert len(seen) > 2 and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:], strict=False))


def test_embed_config_checks_fit_per_source():
    with pytest.raises(ValueError, match=r"fit_per_source must be an integer in \[0, 10000\]; got -1"):
        EmbedConfig(fit_per_source=-1)
    with pytest.raises(ValueError, match="one source per failure code: got 3 sources for 600 codes"):
        embed_codes(np.zeros((10, 6)), np.zeros((600, 6)), EmbedConfig(method="pca"), sources=[1, 2, 3])


def test_the_eta_is_measured_per_stage(monkeypatch):
    from defuse.runtime import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    events = []
    report = progress.ProgressReporter("embed", 100, events.append)
    clock[0] = 30.0                        # a stage without units (UMAP's neighbour search): 30 s
    report.restart_rate(2, until=20)       # the fit: 20 codes, the ETA covers it alone
    report(2)
    clock[0] = 31.0
    report(12)                             # 10 codes a second: 8 left in the fit
    report.restart_rate(20)                # the placing of the other 80
    clock[0] = 31.5
    report(60)
    assert [e.eta_s for e in events] == [None, 0.8, 0.5]
