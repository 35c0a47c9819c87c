"""Report: the project's results for stakeholders, as Figure 4 of the paper, and a self-contained HTML file."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui.correct import show_headline
from defuse.ui.errors import guard
from defuse.ui.nav import link, open_project, require
from defuse.ui.report import (
    build_html,
    decision_rows,
    figure4,
    save_html,
    scenario_gallery,
    tradeoff_figure,
    tradeoff_png,
)
from defuse.workspace import HTML_REPORT, SCENARIOS, SWEEP

st.title("Report")
ws = open_project()
require(ws, "identify")
if not ws.exists(SWEEP):
    st.info("The report's accuracy table needs the λ sweep: run it on the Correct page. Scenario galleries "
            "appear as soon as scenarios are labeled.")
    link("correct")

decisions = []
with guard("build the report"):
    _, table = figure4(ws)
    galleries = scenario_gallery(ws) if ws.exists(SCENARIOS) else []
    fig = tradeoff_figure(ws)
    decisions = decision_rows(ws)
if ws.exists(SWEEP):
    with guard("compare the chosen model"):
        show_headline(ws, ws.load_json(SWEEP))
st.markdown(table)
if fig is not None:
    st.subheader("λ trade-off")
    st.plotly_chart(fig, width="stretch")
if decisions:
    st.subheader("Decisions")
    st.caption("Every decided scenario: a person's decision always wins over the automatic reviewer's, which only "
               "fills scenarios no person has decided. Conflicts name who disagreed.")
    st.dataframe(decisions, hide_index=True, width="stretch")
if galleries:
    st.subheader("Labeled scenarios")
    cols = st.columns(2)
    for i, (caption, img) in enumerate(galleries):
        cols[i % 2].image(img, caption=caption)

st.subheader("Share it")
if st.button("Build the HTML report", type="primary", help="One file, images and chart inside, for stakeholders"):
    with guard("write the HTML report"), st.spinner("Building…"):
        save_html(ws, build_html(ws, table, galleries, tradeoff_png(ws), decisions))
if ws.exists(HTML_REPORT):
    st.download_button("Download report.html", ws.path(HTML_REPORT).read_bytes(), file_name=f"{ws.name}-report.html",
                       mime="text/html")
    st.caption(f"Saved in the project: {ws.path(HTML_REPORT)}")
