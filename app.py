"""BERT Lab: the frame. Page config, the shared sidebar (model picker), navigation."""

import streamlit as st

from ui.state import sidebar_model_picker

st.set_page_config(page_title="BERT Lab", page_icon="🔬", layout="wide")

pages = {
    "Start": [st.Page("pages/home.py", title="Home", icon="🏠", default=True)],
    "Look inside": [
        st.Page("pages/attention.py", title="Attention explorer", icon="🔍", url_path="attention"),
        st.Page("pages/inside_bert.py", title="Inside BERT: the maths", icon="🧮", url_path="inside"),
    ],
    "Play": [st.Page("pages/playground.py", title="Masked-word playground", icon="🎯", url_path="playground")],
    "Train": [st.Page("pages/pretraining.py", title="Pretraining lab", icon="🏋️", url_path="pretraining")],
}
nav = st.navigation(pages)
sidebar_model_picker()
nav.run()
