"""Home: what the lab is, the path through it, a look at the data, and what this machine trains on."""
import app
app.route_through_navigation()

import os

import streamlit as st
from streamlit.logger import get_logger

from mnist_lab import data, system
from mnist_lab.errors import LabError
from mnist_lab.views import home

st.title("MNIST Lab")
st.markdown(
    "Build a convolutional network, train it, compare it and test it on your own handwriting. "
    "The lab starts from a notebook that trained three CNNs on MNIST (98.6 %, 99.3 % and 99.1 % test "
    "accuracy after 12 epochs): reproduce them, change them, and see why they behave as they do."
)

steps = st.columns(4)
for column, (page, title, text) in zip(steps, [
    ("pages/architecture.py", "1. Architecture", "Pick one of the notebook's nets, edit it or build your own."),
    ("pages/train.py", "2. Train", "Watch loss and accuracy live; stop whenever you like."),
    ("pages/compare.py", "3. Compare", "Put runs side by side and against the notebook."),
    ("pages/draw.py", "4. Draw", "Write a digit and see what each model predicts, and why."),
]):
    with column.container(border=True):
        st.page_link(page, label=title)
        st.caption(text)


@st.cache_data(show_spinner=False)
def load_overview(data_file: str):
    """The first images of each digit and the class counts: small, read once per data file (the argument
    is the cache key)."""
    seen = data.overview(per_class=home.SAMPLES_PER_DIGIT)
    return home.labelled_digit_grid(seen.images, seen.labels), seen.counts


try:
    grid, counts = load_overview(os.environ.get(data.DATA_VARIABLE, ""))
except data.DataError as error:
    get_logger(__name__).warning("MNIST could not be loaded: %s", error.detail)
    st.error(str(error))
    st.stop()

train_count, test_count = sum(counts["train"]), sum(counts["test"])
left, right = st.columns([3, 2])
with left:
    st.subheader(f"The data: {train_count + test_count:,} handwritten digits")
    st.image(grid, caption="Three training images of each digit, one digit per column, 28x28 pixels each",
             width="stretch")
with right:
    st.subheader("Images per digit")
    st.vega_lite_chart(home.class_count_chart(counts), width="stretch")
    st.caption(f"MNIST ({train_count:,} training and {test_count:,} test images). The classes are close to "
               "balanced, so accuracy is a fair single score.")


def device_now():
    """What runs train on, if known yet. During the page's first render only what needs no Keras and no
    worker: the manager, and with it the workers, start from the first timer tick on."""
    known = system.device_without_keras()
    if known is not None or not st.session_state.get("home_rendered"):
        return known
    return app.shared_manager().device_info()


def device_panel(info):
    """What is known at once; the backend and the GPU the runs use once the workers have said."""
    if info is None:
        st.markdown(f"**This machine:** {system.machine_facts().description}")
        st.caption("Starting Keras, to see what it trains on: a moment…")
        return
    st.markdown(f"**This machine trains on:** {info.description}")
    st.caption(f"Keras {info.keras_version} on the {info.backend} backend {info.framework_version}. "
               + ("Training uses the GPU." if info.gpus else
                  "No GPU found: everything works, the bigger nets are just slower."))


try:
    device = device_now()
except (RuntimeError, LabError) as error:
    device = error


@st.fragment(run_every=0.5 if device is None else None)
def device_fragment():
    info = device
    if info is None:
        try:
            info = device_now()
        except (RuntimeError, LabError) as error:
            info = error
    st.session_state.home_rendered = True
    if isinstance(info, Exception):
        st.error(str(info))
        return
    device_panel(info)
    if device is None and info is not None:
        st.rerun()  # known now: the page stops polling


with st.container(border=True):
    device_fragment()
