"""MNIST Lab: entry point and router. Shared state and shared UI live here; each page is a file in pages/."""

import streamlit as st

from mnist_lab import system

system.configure_gpu_memory()


def keep_keras_between_reruns():
    """After every script run, fragments included, Streamlit 1.67 calls keras.backend.clear_session():
    a full garbage collection with TensorFlow loaded (0.4 s of CPU per rerun, measured), and a reset of
    Keras' state under the models that train in background threads. The lab keeps its models alive on
    purpose, so that clean-up is switched off (its gc.collect too: runner.postScriptGC in config.toml)."""
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


keep_keras_between_reruns()

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
