"""Small Streamlit rendering helpers shared by the pages (the only part of defuse that imports streamlit)."""
