"""Explore's latent map with the classifier's view of every point: filter, colour, select, sort, export."""

from __future__ import annotations

import base64
import io

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..steps import map_points as mp
from ..steps.distill import SCENARIOS
from ..steps.identify import FAILURES
from ..workspace import CLASSIFIER, EMBEDDING, VAE, Workspace
from . import map_style
from .gallery import show_grid

COLOR_BY = {"scenario": "scenario", "true label": "true_label", "prediction": "prediction",
            "confidence": "confidence"}
SHOWN = 48           # images of a selection drawn on the page
EXPORT_CAP = 5_000   # images of a selection packed into the zip (the CSV has every point)
THUMB_CAP = 1_500    # points drawn with a thumbnail in their hover (each carries its PNG: ~0.5 kB)


@st.cache_data(max_entries=4, show_spinner="Classifying the map's points…")
def _points(root: str, key: str, method: str, max_points: int) -> mp.MapPoints:
    return mp.workspace_points(Workspace(root), method, max_points=max_points)


def points(ws: Workspace, method: str, max_points: int) -> mp.MapPoints:
    rels = (EMBEDDING.format(method=method), FAILURES, SCENARIOS, CLASSIFIER, VAE)
    return _points(str(ws.root), ":".join(str(ws.fingerprint(r)) for r in rels), method, max_points)


@st.cache_data(max_entries=8, show_spinner="Packing the images…")
def _zip(root: str, key: str, csv_text: str, is_failure: tuple, rows: tuple, _p: mp.MapPoints) -> bytes:
    return mp.selection_zip(_p, mp.point_images(Workspace(root), np.array(is_failure), np.array(rows)))


def filter_form(p: mp.MapPoints, names: dict) -> tuple[mp.PointFilter, str]:
    """The filters (empty: keep all) and the colouring of the map."""
    with st.expander("Filter and colour the map", expanded=True):
        c = st.columns(4)
        kinds = c[0].multiselect("Points", mp.KINDS, default=list(mp.KINDS), key="map-kinds")
        true = c[1].multiselect("True label", sorted(set(p.true_label.tolist())), key="map-true")
        pred = c[2].multiselect("Prediction", sorted(set(p.prediction.tolist())), key="map-pred")
        scen = c[3].multiselect("Scenario", sorted(set(p.scenario[p.is_failure].tolist())),
                                format_func=lambda s: names.get(s, f"#{s}"), key="map-scenario")
        c = st.columns([3, 2])
        low, high = c[0].slider("Classifier confidence (max softmax)", 0.0, 1.0, (0.0, 1.0), 0.01, key="map-conf")
        color = c[1].radio("Colour by", list(COLOR_BY), horizontal=True, key="map-color")
    f = mp.PointFilter(kinds=tuple(kinds), true_labels=tuple(true) or None, predictions=tuple(pred) or None,
                    scenarios=tuple(scen) or None, min_confidence=low, max_confidence=high)
    return f, color


def categories(p: mp.MapPoints, color_by: str, cats: list[map_style.Category]) -> tuple[list, np.ndarray]:
    """The legend entries for ``color_by`` (only those with points) and each point's key among them."""
    if color_by == "scenario":
        keys = map_style.point_keys(p.scenario, p.is_failure)
    else:
        keys = getattr(p, COLOR_BY[color_by])
        cats = map_style.value_categories(keys, color_by)
    present = set(np.asarray(keys).tolist())
    return [c for c in cats if c.key in present], np.asarray(keys)


def points_map(p: mp.MapPoints, color_by: str, cats: list[map_style.Category]) -> go.Figure:
    """WebGL scatter; ``customdata[0]`` is the point's position in ``p`` (traces restart their own indices)."""
    info = np.stack([np.arange(len(p)), p.true_label, p.prediction, p.confidence, p.margin, p.scenario,
                     p.is_failure.astype(int)], axis=1)
    hover = ("true label %{customdata[1]:.0f} → predicted %{customdata[2]:.0f} "
             "(confidence %{customdata[3]:.0%}, margin %{customdata[4]:.2f})<extra>%{fullData.name}</extra>")
    fig = go.Figure()
    if color_by == "confidence":
        fig.add_trace(go.Scattergl(x=p.x, y=p.y, mode="markers", customdata=info, name="points",
                                   marker=dict(size=4, color=p.confidence, colorscale="Viridis", cmin=0, cmax=1,
                                               colorbar=dict(title="confidence")), hovertemplate=hover))
    else:
        shown, keys = categories(p, color_by, cats)
        # training images first (drawn underneath), the legend in the categories' order
        for rank, c in sorted(enumerate(shown), key=lambda rc: rc[1].key != map_style.TRAINING):
            m = keys == c.key
            grey = c.key in (map_style.TRAINING, map_style.OUTSIDE) and color_by == "scenario"
            fig.add_trace(go.Scattergl(x=p.x[m], y=p.y[m], mode="markers", name=c.name, customdata=info[m],
                                       legendrank=rank + 1, legendgroup=c.group or c.name,
                                       marker=dict(size=3 if grey else 5, symbol=c.symbol, color=c.color,
                                                   opacity=0.5 if grey else 0.85),
                                       hovertemplate=hover))
    # the legend below the plot: at the right, plotly's toolbar covered its first entries
    fig.update_layout(height=680, dragmode="lasso", margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.02, x=0),
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


def _data_urls(images) -> list[str]:
    """Each (C, H, W) image as a PNG data URL: vega's tooltip shows a field named ``image`` as a picture."""
    from PIL import Image

    from ..data.render import to_uint8

    urls = []
    for img in to_uint8(images):
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).resize(
            (img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(buf, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return urls


def thumbnails_map(p: mp.MapPoints, color_by: str, cats: list[map_style.Category], images) -> alt.Chart:
    """The map as a vega chart whose hover shows each point's image, labels and confidence; a box selects. Its
    colours and legend order are the WebGL map's (:func:`categories`)."""
    df = pd.DataFrame({"x": p.x, "y": p.y, "position": np.arange(len(p)), "true label": p.true_label,
                       "prediction": p.prediction, "confidence": np.round(p.confidence, 3),
                       "margin": np.round(p.margin, 3), "kind": np.where(p.is_failure, "failure", "training image")})
    names = {c.key: c.name for c in cats}
    df["scenario"] = [names.get(int(k), f"#{k}") for k in map_style.point_keys(p.scenario, p.is_failure)]
    df["image"] = _data_urls(images)
    tooltip = ["image", "kind", "true label", "prediction", "confidence", "margin", "scenario"]
    if color_by == "confidence":
        color = alt.Color("confidence:Q")
    else:
        shown, keys = categories(p, color_by, cats)
        df["legend"] = [next(c.name for c in shown if c.key == k) for k in keys.tolist()]
        order = [c.name for c in shown]
        color = alt.Color("legend:N", sort=order, title=color_by,
                          scale=alt.Scale(domain=order, range=[c.color for c in shown]))
    return alt.Chart(df).mark_circle(size=36, opacity=0.8).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None), color=color, tooltip=tooltip,
    ).add_params(alt.selection_interval(name="box")).properties(height=620)


def box_positions(event, p: mp.MapPoints) -> list[int]:
    """Positions in ``p`` inside the box of a vega interval selection (empty: none)."""
    box = ((event or {}).get("selection") or {}).get("box") or {}
    if "x" not in box or "y" not in box:
        return []
    (x0, x1), (y0, y1) = sorted(box["x"]), sorted(box["y"])
    return np.flatnonzero((p.x >= x0) & (p.x <= x1) & (p.y >= y0) & (p.y <= y1)).tolist()


def selected_positions(event, fig: go.Figure | None = None) -> list[int]:
    """Positions in the map's points of a plotly selection: from each point's ``customdata[0]``, or, where the
    browser sent none (WebGL traces may not), from its trace and index in that trace."""
    pts = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    found = set()
    for pt in pts:
        data = pt.get("customdata")
        if isinstance(data, dict):  # the browser sends an array's items keyed "0", "1", ...
            data = data.get("0")
        if data is not None:
            found.add(int(np.ravel([data])[0]))
        elif fig is not None and pt.get("curve_number") is not None and pt.get("point_index") is not None:
            found.add(int(fig.data[int(pt["curve_number"])].customdata[int(pt["point_index"])][0]))
    return sorted(found)


def render_selection(ws: Workspace, sel: mp.MapPoints, what: str) -> None:
    """The selected points' images (sorted by confidence margin when asked) and the export of all of them."""
    if st.toggle("Sort by confidence margin (least sure first)", value=True, key="map-sort"):
        sel = sel.take(mp.by_margin(sel))
    st.markdown(f"**{what}: {int(sel.is_failure.sum()):,} failures, {int((~sel.is_failure).sum()):,} training "
                f"images** (up to {SHOWN} shown; captions: true label>prediction and confidence)")
    head = sel.take(np.arange(min(SHOWN, len(sel))))
    captions = [f"{t}>{q} {c:.0%}" for t, q, c in zip(head.true_label, head.prediction, head.confidence, strict=True)]
    show_grid(mp.point_images(ws, head.is_failure, head.row), captions=captions, ncol=12)
    csv_text = mp.selection_csv(sel)
    c = st.columns(2)
    c[0].download_button(f"Download the {len(sel):,} points (CSV)", csv_text, file_name=f"{ws.name}-selection.csv",
                         mime="text/csv", key="sel-csv")
    packed = sel.take(np.arange(min(EXPORT_CAP, len(sel))))
    key = ":".join(str(ws.fingerprint(r)) for r in (FAILURES, VAE))
    data = _zip(str(ws.root), key, csv_text, tuple(packed.is_failure.tolist()), tuple(packed.row.tolist()), packed)
    c[1].download_button(f"Download {len(packed):,} images (zip of PNGs + CSV)", data,
                         file_name=f"{ws.name}-selection.zip", mime="application/zip", key="sel-zip")


def render_points_map(ws: Workspace, method: str, cats: list, note: str = "", *, max_points: int) -> None:
    names = {c.key: c.name for c in cats}
    p = points(ws, method, max_points)
    f, color = filter_form(p, names)
    keep = f.mask(p)
    shown = p.take(keep)
    st.caption(f"{note} {len(shown):,} of {len(p):,} points pass the filters. Hover a point for its labels and the "
               f"classifier's confidence (and its image, with at most {THUMB_CAP:,} points); lasso or box-select "
               "points to see their images and export them.")
    thumbs = len(shown) <= THUMB_CAP and st.toggle(
        "Thumbnails on hover", value=True, key="map-thumbs",
        help=f"Each point carries its image (at most {THUMB_CAP:,} points); off: the faster WebGL map with lasso")
    if thumbs:
        images = mp.point_images(ws, shown.is_failure, shown.row)
        event = st.altair_chart(thumbnails_map(shown, color, cats, images), on_select="rerun",
                                key=f"map-thumbs-{method}", width="stretch")
        picked = box_positions(event, shown)
    else:
        fig = points_map(shown, color, cats)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode=("lasso", "box"), key=f"map-{method}",
                                width="stretch")
        picked = selected_positions(event, fig)
    if picked:
        render_selection(ws, shown.take(np.array(picked)), "Selected")
    elif len(shown) < len(p) and len(shown):
        render_selection(ws, shown, "Filtered")
