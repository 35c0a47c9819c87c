"""Defuse: find, understand and fix the failure modes of an image classifier.

The package is pure compute (no Streamlit, no printing): each step is a function
with a frozen config and a typed result; see ../shared/DESIGN.md.
"""

__version__ = "0.1.0"
