"""Streamlit pages of the workbench; each module draws one page and calls library functions only."""
