"""The Explore page: distillation settings, the 2-D latent map with selection, scenario cards."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ..cli.jobs import config_args
from ..data.render import prediction_captions
from ..distill.embed import PROJECTIONS, EmbedConfig
from ..distill.scenarios import DistillConfig
from ..label.purity import purity_words
from ..steps.distill import default_tau
from ..steps.embed import fitted_on_every_code
from ..steps.purity import workspace_purities
from ..workspace import EMBEDDING, SCENARIOS, Workspace
from . import cache, map_style
from .charts import latent_map
from .explore_map import render_points_map
from .fields import refused, setting_field
from .gallery import show_grid
from .nav import label_button
from .ranking import top_counts, top_pairs
from .rerun import run_again_box

PAPER = DistillConfig()
PLOT_CAP = 60_000  # points drawn at most (WebGL stays fluid up to about this many)
METHOD_WORDS = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
# Codes each projection maps in reasonable time on 2 CPU cores. UMAP and t-SNE are fitted on the training codes
# and 3 codes per source image and place the rest in a blink, so their time hardly grows with this number.
DEFAULT_POINTS = {"pca": PLOT_CAP, "umap": PLOT_CAP, "tsne": 20_000}


def distill_form(ws: Workspace) -> list[str] | None:
    with st.form("distill-settings", enter_to_submit=True):  # Enter = the button: checked, then started
        c = st.columns(3)
        k = setting_field(c[0], DistillConfig, "max_components", PAPER.max_components,
                          label=f"K — components at most (paper: {PAPER.max_components})")
        eps = setting_field(c[1], DistillConfig, "weight_threshold", PAPER.weight_threshold, step=0.005, format="%.3f",
                            label=f"ε — weight threshold (paper: {PAPER.weight_threshold:g})")
        cap = setting_field(c[2], DistillConfig, "max_samples", PAPER.max_samples,
                            label=f"Codes fitted at most (paper: {PAPER.max_samples:,})")
        again = run_again_box(ws, "distill")
        go = st.form_submit_button(again.label("Run distillation"), type=again.button_type)
    if not go or refused(k, eps, cap) or again.refused():
        return None
    cfg = DistillConfig(max_components=int(k.value), weight_threshold=float(eps.value), max_samples=int(cap.value))
    return config_args(cfg)


def map_form(ws: Workspace) -> tuple[str, list[str] | None]:
    c = st.columns([2, 2, 1])
    methods = list(PROJECTIONS)
    made = [m for m in methods if ws.exists(EMBEDDING.format(method=m))]
    default = EmbedConfig().method  # UMAP, fitted per source: it shows the scenarios as clusters (#17)
    method = c[0].radio("Projection", methods, format_func=METHOD_WORDS.get, horizontal=True, key="map-method",
                        index=methods.index(default if default in made or not made else made[0]))
    points = setting_field(c[1], EmbedConfig, "max_points", DEFAULT_POINTS[method], label="Codes projected at most",
                           step=1000, key=f"map-points-{method}")
    go = c[2].button(f"Compute the {METHOD_WORDS[method]} map", key="map-go",
                     help="A background job; the map is kept in the project. It is fitted on the training codes and "
                          "3 failure codes per source image, then places the others. Measured on 2 busy CPU cores "
                          "for the demo's 13,663 codes: PCA a few seconds, UMAP 15 s once numba has compiled (the "
                          "first time about 30 s more, kept for later runs), t-SNE longer.")
    if not go or refused(points):
        return method, None
    cfg = EmbedConfig(method=method, max_points=int(points.value))
    return method, config_args(cfg)


def n_failures(ws: Workspace) -> int:
    """How many unrestricted adversarial examples identify found (its record; the file when unrecorded)."""
    n = ((ws.step_record("identify") or {}).get("metrics") or {}).get("n_failures")
    return int(n) if n is not None else len(cache.failures(ws))


def scenario_categories(ws: Workspace) -> list:
    """The map's legend (:mod:`defuse.ui.map_style`): a colour per confusion, a shade and symbol per scenario."""
    sc, f = cache.scenarios(ws), cache.failures(ws)
    pairs = top_pairs(sc.assignment, f.true_label, f.pred_label, len(sc), sc.true_label_mix.shape[1])
    return map_style.scenario_categories(dict(enumerate(pairs)), {j: int(n) for j, n in enumerate(sc.sizes)})


def scenario_names(ws: Workspace) -> dict:
    """{scenario: its name on the map and in the filters}: "6→0 a (#3)"."""
    return {c.key: c.name for c in scenario_categories(ws)}


def render_map(ws: Workspace, method: str) -> None:
    found = cache.embedding(ws, method)
    if found is None:
        st.info(f"No {METHOD_WORDS[method]} map yet: compute it above (a background job; the result is kept).")
        return
    emb, current = found
    has_scenarios = ws.exists(SCENARIOS)
    if current and method == "umap" and fitted_on_every_code(ws, method):
        st.info("This UMAP map was fitted on every code, the older way: a source image's near-identical failure "
                "codes pull together into a dot of their own, so scenarios look like scattered dots. Compute the "
                "UMAP map again above: it is now fitted on a few codes per source, and scenarios show as clusters.")
    if current:  # the classifier's view of every point: filter, colour, select, sort, export
        fail = emb.is_failure
        note = (f"The map holds {int(fail.sum()):,} of {emb.n_failures_total:,} failure codes and "
                f"{int((~fail).sum()):,} of {emb.n_train_total:,} training codes; at most {PLOT_CAP:,} are drawn "
                "(down-sampled at random where there were more).")
        cats = scenario_categories(ws) if has_scenarios else map_style.scenario_categories({}, {})
        return render_points_map(ws, method, cats, note, max_points=PLOT_CAP)
    st.warning("This map was made from an earlier identify run: recompute it to match the current failures.")
    assignment = cache.scenarios(ws).assignment if has_scenarios else None
    keep = np.arange(len(emb))
    if len(emb) > PLOT_CAP:
        keep = np.sort(np.random.default_rng(0).choice(len(emb), PLOT_CAP, replace=False))
    fail, rows = emb.is_failure[keep], emb.row[keep]
    scenario = np.full(len(keep), -1)
    if assignment is not None and current:
        scenario[fail] = assignment[rows[fail]]
    names = scenario_names(ws) if has_scenarios else {-1: "failures"}
    n_train, n_fail = int((~fail).sum()), int(fail.sum())
    note = (f"{n_fail:,} of {emb.n_failures_total:,} failure codes and {n_train:,} of {emb.n_train_total:,} "
            "training codes")
    st.caption(f"Showing {note} (down-sampled at random where there were more). Lasso or box-select points to "
               "see their images.")
    event = st.plotly_chart(latent_map(emb.coords[keep], fail, rows, scenario, names), on_select="rerun",
                            selection_mode=("lasso", "box"), key=f"map-{method}", width="stretch")
    _selection(ws, event)


def _selection(ws: Workspace, event) -> None:
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    ids = [int(np.ravel([p["customdata"]])[0]) for p in points if p.get("customdata") is not None]
    if not ids:
        return
    f = cache.failures(ws)
    fail = diverse_rows(sorted({i for i in ids if i >= 0}), f.source_index, 48)
    train = sorted({-1 - i for i in ids if i < 0})[:24]
    st.markdown(f"**Selected: {sum(i >= 0 for i in ids):,} failures, {sum(i < 0 for i in ids):,} training images** "
                "(up to 48 and 24 shown; at most 3 failures of one source image, from as many sources as "
                "possible)")
    if fail:
        show_grid(cache.decoded_failures(ws, fail), captions=[f"{int(f.true_label[r])}→{int(f.pred_label[r])}"
                                                              for r in fail], ncol=12,
                  caption="failures: their source image's label → the classifier's label")
    if train:
        d = cache.data(ws).train
        show_grid(d.images[train], captions=[str(int(d.labels[r])) for r in train], ncol=12,
                  caption="training images: their true label")


def diverse_rows(rows: list[int], source: np.ndarray, k: int, per_source: int = 3) -> list[int]:
    """Up to ``k`` of ``rows``, round-robin over their source images (at most ``per_source`` each): a
    selection's first rows are otherwise near-identical decodes of one source."""
    by_source: dict[int, list[int]] = {}
    for r in rows:
        by_source.setdefault(int(source[r]), []).append(r)
    picked = []
    for turn in range(per_source):
        picked += [group[turn] for group in by_source.values() if turn < len(group)]
    return sorted(picked[:k])


def render_cards(ws: Workspace, per_page: int = 9) -> None:
    sc = cache.scenarios(ws)
    if len(sc) == 0:
        eps = (ws.step_record("distill") or {}).get("config", {}).get("weight_threshold")
        st.warning(f"No mixture component weighs more than ε{'' if eps is None else f'={eps:g}'}, so distillation "
                   "kept no failure scenario: lower ε above and run distillation again, or find more failures.")
        return
    tau = default_tau(ws)
    pages = -(-len(sc) // per_page)
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="cards-page") if pages > 1 else 1
    rows = range((page - 1) * per_page, min(len(sc), page * per_page))
    cols, purities, names = st.columns(3), workspace_purities(ws), ws.project["class_names"]
    for i, j in enumerate(rows):
        with cols[i % 3].container(border=True):
            true, pred = sc.true_label_mix[j], sc.pred_label_mix[j]
            st.markdown(f"**Scenario #{j}** · weight {sc.weights[j]:.3f} · {int(sc.sizes[j]):,} failures")
            st.caption(f"true: {_top(true)} · predicted: {_top(pred)}")
            purity = purities.get(j)
            (st.warning if purity is not None and purity.mixed else st.caption)(purity_words(purity, names))
            images, preds, conf = cache.scenario_samples(ws, j, 16, tau)
            show_grid(images, captions=prediction_captions(preds, conf), ncol=8, scale=2)
            st.caption(f"the classifier's label and confidence on each; mean confidence {float(np.mean(conf)):.0%}")
            label_button(j)


def _top(counts: np.ndarray, k: int = 2) -> str:
    return top_counts(counts, k)
