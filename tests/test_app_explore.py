"""AppTest of the Explore page (distillation, the 2-D map, scenario cards) and the `embed` step behind its map."""

import numpy as np
import pytest

from defuse.distill.embed import PROJECTIONS, EmbedConfig, embed_codes
from defuse.distill.scenarios import DistillConfig
from defuse.steps.embed import load_embedding
from defuse.workspace import Workspace


def test_without_failures_the_page_says_what_to_do(run_page, fresh_demo):
    at = run_page("explore", fresh_demo)
    assert not at.exception
    assert "needs unrestricted adversarial examples (Identify)" in at.info[0].value


def test_map_and_scenario_cards_of_a_finished_project(run_page, demo_done):
    at = run_page("explore", demo_done)
    assert not at.exception and not at.error
    assert at.radio(key="map-method").value == "pca"            # the map that exists is shown
    assert any("failure codes and" in c.value and "lasso" in c.value for c in at.caption)
    charts = at.get("vega_lite_chart")                      # 398 points: the map with thumbnails on hover
    assert len(charts) == 1 and "data:image/png;base64," in str(charts[0].proto)
    at.toggle(key="map-thumbs").set_value(False).run()
    assert len(at.get("plotly_chart")) == 1 and not at.get("vega_lite_chart")
    n = len(Workspace(demo_done).load_arrays("distill/scenarios.npz")["weights"])
    assert sum("**Scenario #" in m.value for m in at.markdown) == min(n, 9)
    at.radio(key="map-method").set_value("umap").run()
    assert "No UMAP map yet" in at.info[0].value


def test_distill_and_map_buttons_start_jobs(run_page, demo_done, started, job_config):
    at = run_page("explore", demo_done)
    at.checkbox(key="again-distill").check()                    # distillation was done: confirm the re-run
    at.button[0].click().run()                                  # the distillation form's submit button
    at.button(key="map-go").click().run()
    assert [step for step, _ in started] == ["distill", "embed"]
    assert job_config(started[0][1], DistillConfig) == (
        DistillConfig(max_components=100, weight_threshold=0.01, max_samples=50000), [])
    assert job_config(started[1][1], EmbedConfig) == (EmbedConfig(method="pca", max_points=60000), [])


def test_a_map_from_an_earlier_identify_run_is_flagged(run_page, project_copy):
    root = project_copy("stale-map")
    ws = Workspace(root)
    failures = ws.load_arrays("identify/failures.npz")
    ws.save_arrays("identify/failures.npz", **failures, extra=np.zeros(1))  # as if identify ran again
    ws.record_step("identify", config=ws.step_record("identify")["config"])
    assert load_embedding(ws, "pca")[1] is False
    at = run_page("explore", root)
    assert any("earlier identify run" in w.value for w in at.warning)
    assert any("distill is stale" in w.value for w in at.warning)


# --- the embed step -----------------------------------------------------------------------------------
def test_embed_config_rejects_bad_values():
    with pytest.raises(ValueError, match=r"method must be one of \['pca', 'tsne', 'umap'\]; got 'mds'"):
        EmbedConfig(method="mds")
    with pytest.raises(ValueError, match=r"max_points must be an integer in \[10, 100000000\]; got 5"):
        EmbedConfig(max_points=5)
    assert sorted(PROJECTIONS) == ["pca", "tsne", "umap"]


def test_embed_codes_down_samples_and_keeps_rows():
    rng = np.random.default_rng(0)
    train, fail = rng.normal(size=(300, 4)), rng.normal(size=(500, 4)) + 3
    emb = embed_codes(train, fail, EmbedConfig(method="pca", max_points=400, train_points=100))
    assert emb.coords.shape == (400, 2) and emb.is_failure.sum() == 300 and (~emb.is_failure).sum() == 100
    assert emb.n_failures_total == 500 and emb.n_train_total == 300
    assert len(set(emb.row[emb.is_failure])) == 300 and emb.row[emb.is_failure].max() < 500
    with pytest.raises(ValueError, match="no failure codes"):
        embed_codes(train, fail[:0], EmbedConfig(method="pca"))
    with pytest.raises(ValueError, match="one latent size"):
        embed_codes(train, fail[:, :3], EmbedConfig(method="pca"))


# --- filters, colouring, selection export ------------------------------------------------------------
def test_map_filters_colouring_and_the_filtered_export(run_page, demo_done):
    from defuse.steps.map_points import PointFilter, workspace_points

    at = run_page("explore", demo_done)
    p = workspace_points(Workspace(demo_done), "pca")
    at.multiselect(key="map-kinds").set_value(["failure"])
    at.multiselect(key="map-scenario").set_value([0])
    at.slider(key="map-conf").set_value((0.0, 0.9)).run()
    assert not at.exception and not at.error
    n = int(PointFilter(kinds=("failure",), scenarios=(0,), max_confidence=0.9).mask(p).sum())
    assert any(f"{n:,} of {len(p):,} points pass the filters" in c.value for c in at.caption)
    assert any(m.value.startswith(f"**Filtered: {n:,} failures, 0 training images**") for m in at.markdown)
    labels = [b.label for b in at.get("download_button")]
    assert labels == [f"Download the {n:,} points (CSV)", f"Download {n:,} images (zip of PNGs + CSV)"]
    assert at.toggle(key="map-sort").value is True                  # sorted by confidence margin
    at.radio(key="map-color").set_value("confidence").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 1
    at.toggle(key="map-thumbs").set_value(False).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.multiselect(key="map-true").set_value([int(p.true_label[0])]).run()
    assert not at.exception


def test_a_scenario_card_opens_that_scenario_on_the_label_page(run_page, demo_done):
    at = run_page("explore", demo_done)
    at.button(key="open-label-1").click().run()
    assert not at.exception and at.session_state["label-next"] == 1
    label = run_page("label", demo_done, annotator="alice", **{"label-next": 1})
    assert label.selectbox(key="label-scenario").value == 1
    assert label.radio(key="verdict-1").value == "Not a failure"        # alice's earlier answer, preselected


def test_a_umap_map_fitted_on_every_code_asks_to_be_computed_again(run_page, project_copy):
    import shutil

    root = project_copy("old-umap")
    ws = Workspace(root)
    shutil.copyfile(ws.path("distill/embedding-pca.npz"), ws.path("distill/embedding-umap.npz"))
    meta = ws.load_json("distill/embedding-pca.json")
    old = {**meta, "config": {k: v for k, v in meta["config"].items() if k != "fit_per_source"}}
    for config, noted in ((old["config"], True), ({**old["config"], "fit_per_source": 3}, False)):
        ws.save_json("distill/embedding-umap.json", {**old, "config": {**config, "method": "umap"}})
        at = run_page("explore", root)
        assert not at.exception and at.radio(key="map-method").value == "umap"   # the default, made
        assert any("fitted on every code, the older way" in i.value for i in at.info) is noted
