"""MNIST Lab: entry point and router. Shared state and shared UI live here; each page is a file in pages/."""

import streamlit as st

from mnist_lab import system

system.configure_gpu_memory()

st.set_page_config(page_title="MNIST Lab", page_icon=":material/draw:", layout="wide")

st.session_state.setdefault("architecture_name", "seed-3layer")
st.session_state.setdefault("architecture_layers", None)
st.session_state.setdefault("selected_run_ids", [])

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
]
st.navigation(pages).run()
