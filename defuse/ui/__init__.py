"""Streamlit helpers shared by the app's pages (the only part of defuse that imports streamlit).

state: which project is open · errors: plain-words errors, never a raw traceback · jobs: background
steps with progress, ETA, Cancel and log · cache: models and arrays keyed by artifact fingerprints ·
charts, gallery: plotly figures and image grids · one module per page for its longer rendering.
"""
