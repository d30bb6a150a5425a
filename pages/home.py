"""Home: what the lab is, the path through it, a look at the data, and what this machine trains on."""
import app
app.route_through_navigation()

import altair as alt
import pandas as pd
import streamlit as st

from mnist_lab import data, system
from mnist_lab.gallery import digit_grid

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
def load_overview():
    """Sample images and class counts: small, computed once per data file."""
    mnist = data.load_mnist()
    images, labels = data.sample_digits(mnist, per_class=3)
    return digit_grid(images, labels, columns=10, scale=3), mnist.class_counts(), mnist.source


try:
    grid, counts, source = load_overview()
except data.DataError as error:
    st.error(str(error))
    st.stop()

left, right = st.columns([3, 2])
with left:
    st.subheader("The data: 70,000 handwritten digits")
    st.image(grid, caption="Three training images of each digit, 28x28 pixels each", width="stretch")
with right:
    st.subheader("Images per digit")
    table = pd.DataFrame(
        [(str(digit), split, count) for split, values in counts.items() for digit, count in enumerate(values)],
        columns=["digit", "split", "images"],
    )
    chart = alt.Chart(table).mark_bar().encode(
        x=alt.X("digit:N", title="digit"),
        xOffset="split:N",
        y=alt.Y("images:Q", title="images"),
        color=alt.Color("split:N", title="split"),
        tooltip=["split", "digit", "images"],
    ).properties(height=260)
    st.altair_chart(chart, width="stretch")
    st.caption(f"60,000 training and 10,000 test images, from `{source}`. The classes are close to balanced, "
               "so accuracy is a fair single score.")


def device_panel():
    try:
        info = system.device_info(timeout=0)
    except RuntimeError as error:
        st.error(str(error))
        return
    if info is None:
        st.markdown("**This machine:** starting Keras, a moment…")
        return
    st.markdown(f"**This machine trains on:** {info.description}")
    st.caption(f"Keras {info.keras_version} on the {info.backend} backend {info.framework_version}. "
               + ("Training uses the GPU." if info.gpus else
                  "No GPU found: everything works, the bigger nets are just slower."))


polling = not system.device_ready()


@st.fragment(run_every=0.5 if polling else None)
def device_fragment():
    # Keras is imported only from the first timer tick on, once this page has been sent:
    # importing it during the first render would slow that render down several-fold.
    if polling and st.session_state.get("home_rendered"):
        system.start_warm_up()
    st.session_state.home_rendered = True
    device_panel()
    if polling and system.device_ready():
        st.rerun()


with st.container(border=True):
    device_fragment()
