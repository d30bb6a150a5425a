"""Draw: write a digit and see every chosen model's guess beside it; below, the 28x28 image a model gets and
how it is made, why a model guessed what it did (at any epoch the run kept), and the learner's own set of
handwriting to score models on."""
import app
app.route_through_navigation()

import altair as alt
import pandas as pd
import streamlit as st

from mnist_lab import classroom, explanation, inference, preprocessing, presentation
from mnist_lab.errors import LabError
from mnist_lab.gallery import digit_grid
from mnist_lab.handwriting import HandwritingSet
from mnist_lab.runs import RunStatus, RunStore
from mnist_lab.teaching import markdown_text

CANVAS_SIDE = 280
MAX_MODELS = 4
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
# The canvas component draws its own floating toolbar (send, undo, redo, edit, reset) above its top edge, over
# whatever is there; its parameters cannot hide it and page CSS cannot reach into its shadow root. This page's
# Undo and Clear are the one set of controls, so the canvas's element clips whatever overflows it.
CANVAS_CLIP = "<style>[class*='st-key-draw_canvas_'] { clip-path: inset(0); }</style>"

st.session_state.setdefault("draw_canvas_generation", 0)
st.session_state.setdefault("draw_initial_drawing", None)
st.session_state.setdefault("draw_last_drawing", None)
st.session_state.setdefault("draw_undo_count", 0)
st.session_state.setdefault("draw_stroke_width", 22)
for step in preprocessing.STEPS:  # the switches render further down; the preprocessing needs them first
    st.session_state.setdefault(f"draw_step_{step.key}", getattr(preprocessing.Options(), step.key))

store = RunStore()
runs = inference.usable_runs(store)
runs_by_id = {meta["id"]: meta for meta in runs}
damaged_runs = [meta for meta in store.list() if meta["status"] == RunStatus.DAMAGED]
learner_id, _ = app.owner()
handwriting = HandwritingSet(owner=learner_id)  # this learner's own: nobody else sees, scores on or deletes it
run_labels = presentation.run_labels(runs)  # learner, name and accuracy: runs told apart


def run_label(run_id: str) -> str:
    """A run's label as plain text (the model picker, the guesses, the table)."""
    return run_labels[run_id]


def run_name(run_id: str) -> str:
    """A run's label as Markdown shows it: names exactly as the learners typed them."""
    return markdown_text(run_labels[run_id])


def model_for(run_id: str):
    """A run's model from the lab's one model cache, with a spinner while it is read from disk."""
    if inference.is_cached(store, run_id):
        return inference.cached_model(store, run_id)
    with st.spinner("Loading the model…"):
        return inference.cached_model(store, run_id)


@st.cache_data(max_entries=8, show_spinner=False)
def upload_ink(data: bytes):
    return preprocessing.read_ink(data)


@st.cache_data(max_entries=64, show_spinner="Scoring your handwriting…")
def handwriting_accuracy(run_id: str, version: float, root: str, handwriting_base: str, owner: str,
                         samples: tuple[str, ...]):
    """A run's accuracy on a learner's handwriting set; `version` (the model file's) and `samples` (the ids)
    change when the model or the set does."""
    images, digits, _ = HandwritingSet(handwriting_base, owner).load()
    return inference.accuracy(inference.cached_model(RunStore(root), run_id), images, digits)


def undo_stroke():
    drawing = st.session_state.draw_last_drawing or {}
    objects = drawing.get("objects") or []
    if objects:
        st.session_state.draw_undo_count += 1
        st.session_state.draw_initial_drawing = {**drawing, "objects": objects[:-1],
                                                 "undo": st.session_state.draw_undo_count}


def clear_canvas():
    st.session_state.draw_canvas_generation += 1
    st.session_state.draw_initial_drawing = None
    st.session_state.draw_last_drawing = None


def keep_sample(image, raw):
    label = st.session_state.get("draw_sample_label")
    if label is None:
        st.session_state.draw_notice = ("warning", "Choose which digit you drew before keeping it.")
        return
    handwriting.add(image, int(label), raw=raw)
    st.session_state.draw_notice = ("success", f"Kept as a {label}. Draw the next one.")
    clear_canvas()


def delete_samples():
    for sample_id in st.session_state.get("draw_delete_ids", []):
        try:
            handwriting.delete(sample_id)
        except ValueError as error:
            st.session_state.draw_notice = ("warning", str(error))
    st.session_state.draw_delete_ids = []


def probability_chart(probabilities):
    """The ten digits' probabilities, the guess in colour. Each bar of 5 % or more carries its number: an
    unsure net's low, even bars (an early epoch's, about 10 % each) are hard to read on a 0-100 % axis."""
    table = pd.DataFrame({"digit": [str(digit) for digit in range(10)], "probability": probabilities})
    top = str(int(probabilities.argmax()))
    base = alt.Chart(table).encode(
        x=alt.X("digit:N", title=None, axis=alt.Axis(labelAngle=0, labelFontSize=13)),
        y=alt.Y("probability:Q", title=None, scale=alt.Scale(domain=[0, 1.15]),
                axis=alt.Axis(format="%", values=[0, 0.5, 1])),
    )
    bars = base.mark_bar().encode(
        color=alt.condition(alt.datum.digit == top, alt.value("#e4572e"), alt.value("#9aa5b1")),
        tooltip=["digit", alt.Tooltip("probability:Q", format=".1%")],
    )
    numbers = base.mark_text(dy=-7, fontSize=11, color="#1f2430").encode(
        text=alt.Text("probability:Q", format=".0%")).transform_filter(alt.datum.probability >= 0.05)
    return (bars + numbers).properties(height=140)


st.title("Draw")
st.caption("Write a digit and watch each model guess it. Below: the 28x28 image the models actually get, made the "
           "way MNIST was made, why a model guessed what it did, and your own handwriting as a test set.")
if damaged_runs:
    st.caption(f"{len(damaged_runs)} damaged run(s) left out: "
               + "; ".join(markdown_text(meta["name"]) for meta in damaged_runs))
options = preprocessing.Options(**{step.key: st.session_state[f"draw_step_{step.key}"] for step in preprocessing.STEPS})
left, right = st.columns([5, 7], gap="large")

# ---- Input: the canvas or an upload ----------------------------------------------------------------
prepared = None
with left:
    source = st.segmented_control("Input", ["Draw", "Upload an image"], default="Draw", required=True,
                                  key="draw_source", label_visibility="collapsed")
    if source == "Draw":
        from streamlit_drawable_canvas import st_canvas

        st.html(CANVAS_CLIP)
        canvas = st_canvas(stroke_width=st.session_state.draw_stroke_width, stroke_color="#ffffff",
                           background_color="#000000", height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
                           initial_drawing=st.session_state.draw_initial_drawing, return_image_data=True,
                           key=f"draw_canvas_{st.session_state.draw_canvas_generation}")
        st.session_state.draw_last_drawing = canvas.json_data
        with st.container(horizontal=True, key="draw_canvas_buttons"):
            st.button("Undo stroke", icon=":material/undo:", on_click=undo_stroke,
                      disabled=not (canvas.json_data or {}).get("objects"))
            st.button("Clear", icon=":material/delete:", on_click=clear_canvas)
        st.slider("Pen width", 8, 40, key="draw_stroke_width",
                  help="MNIST's strokes are about 2 to 3 pixels wide in the 28x28 image.")
        prepared = preprocessing.preprocess_canvas(canvas.image_data, options)
    else:
        upload = st.file_uploader("A picture of one digit: a drawing, or a photo of a digit written on paper",
                                  type=UPLOAD_TYPES, max_upload_size=preprocessing.MAX_FILE_BYTES // 2**20,
                                  key="draw_upload")
        if upload is None:
            st.caption("Dark ink on light paper is detected and inverted; light on dark is used as it is.")
        else:
            try:
                ink, dark_on_light = upload_ink(upload.getvalue())
            except preprocessing.ImageError as error:
                st.error(f"{markdown_text(upload.name)}: {markdown_text(error)}")
            else:
                prepared = preprocessing.preprocess_found_ink(ink, dark_on_light, options)
                st.image(upload.getvalue(), caption=upload.name, width=CANVAS_SIDE)
                st.caption("Dark ink on light paper: inverted to white on black, as MNIST." if dark_on_light
                           else "Light ink on a dark background: used as it is.")

if prepared is None:
    prepared = preprocessing.preprocess_canvas(None, options)

# ---- Predictions, beside the input -----------------------------------------------------------------
predictions = {}
with right:
    guess_area = st.container()
    if not runs:
        with st.container(border=True):
            st.markdown("**No trained model yet.** Predictions need a trained run: on the Train page pick the "
                        "3-layer net and train it for one epoch (about a minute on a laptop), then come back. "
                        "Meanwhile you can draw and see how a drawing becomes MNIST's 28x28 input.")
            st.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
            st.caption("From a terminal: `python -m mnist_lab train --arch seed-3layer --epochs 1`")
        chosen = []
    else:
        if "draw_run_ids" in st.session_state:
            st.session_state.draw_run_ids = [run_id for run_id in st.session_state.draw_run_ids
                                             if run_id in runs_by_id]
        else:
            shared = [run_id for run_id in st.session_state.get("selected_run_ids", []) if run_id in runs_by_id]
            st.session_state.draw_run_ids = (shared or classroom.default_models(
                runs, classroom.Room(store).pinned(), has_model=store.has_model))[:MAX_MODELS]
        chosen = st.multiselect("Models", list(runs_by_id), format_func=run_label, key="draw_run_ids",
                                max_selections=MAX_MODELS, help="Completed runs (and stopped ones with a saved "
                                "model), with their learner and MNIST test accuracy. It opens with the "
                                "teacher's pinned models, else the most accurate. Pick several to see them disagree.")
        st.session_state.selected_run_ids = list(chosen)
        for run_id in chosen:  # the epoch slider below answers at once when its models are built ahead
            inference.prepare_epochs(store, run_id)

with guess_area:
    st.subheader("Prediction")
    failures = []
    if not prepared.empty:
        for run_id in chosen:
            try:
                predictions[run_id] = inference.predict(model_for(run_id), prepared.image)
            except LabError as error:
                failures.append(f"{run_name(run_id)}: {markdown_text(error)}")
    for failure in failures:
        st.warning(failure)
    if prepared.empty:
        st.info(prepared.message, icon=":material/draw:")
    elif runs and not chosen:
        st.info("Choose one or more models below.")
    if predictions:
        for column, (run_id, probabilities) in zip(st.columns(len(predictions)), predictions.items()):
            with column:
                top = int(probabilities.argmax())
                st.text(run_label(run_id))  # plain text: no Markdown, no HTML, no links made of URLs
                # Only numbers go into this HTML.
                st.markdown(f"<div data-testid='draw-guess' style='font-size:2.2rem;font-weight:700;line-height:1.1'>"
                            f"{top} <span style='font-size:1rem;font-weight:400'>{probabilities[top]:.0%} sure</span>"
                            f"</div>", unsafe_allow_html=True)
                st.altair_chart(probability_chart(probabilities), width="stretch")
        if len(predictions) > 1 and len({int(values.argmax()) for values in predictions.values()}) > 1:
            st.caption("The models disagree: look below at what each one picks up.")
        if any(len(inference.stored_epochs(store, run_id)) > 1 for run_id in predictions):
            st.caption("Below, under *Why*, slide back through the epochs to see how this guess grew as the net "
                       "learned.")
    # After the guesses, so that on a phone the guess comes right after the canvas.
    if not prepared.empty and (verdict := inference.not_a_digit(prepared, list(predictions.values()))):
        st.warning(f"**This does not look like a digit.** {verdict}", icon=":material/help:")

# ---- What the model sees ---------------------------------------------------------------------------
st.subheader("What the model sees")
pictures = preprocessing.step_pictures(prepared, size=150)
picture_columns = st.columns(5)
for column, (caption, picture) in zip(picture_columns, pictures):
    column.image(picture, caption=caption, width="stretch")
if prepared.empty:
    picture_columns[min(len(pictures), 4)].caption("The steps appear once there is a digit.")
step_columns = st.columns(3)  # two rows of three: six in a row cut their labels short ("Remove…")
for number, step in enumerate(preprocessing.STEPS):
    step_columns[number % len(step_columns)].toggle(step.title, key=f"draw_step_{step.key}", help=step.help)

# ---- Why -----------------------------------------------------------------------------------------
def epoch_choice(run_id: str, image, probabilities):
    """The epoch slider of a run that kept two or more epochs, with that epoch's guess; returns (the model to
    explain, its probabilities, its epoch or None). A run without earlier epochs gets a caption why."""
    epochs = inference.stored_epochs(store, run_id)
    if len(epochs) < 2:
        st.caption("This run kept its weights after one epoch only: there is no earlier net to slide back to. A run "
                   "of two or more epochs shows here how its guess grew." if epochs else
                   "This run kept no weights of earlier epochs (it was trained before the lab kept them, or its "
                   "net is too big to keep): train it again to see how its guess grew, epoch by epoch.")
        return model_for(run_id), probabilities, None
    last = epochs[-1]
    slider_column, chart_column = st.columns([3, 2], gap="large")
    with slider_column:
        epoch = st.select_slider("Epoch", options=epochs, value=last, key=f"draw_epoch_{run_id}",
                                 format_func=lambda value: f"epoch {value}")
        st.caption("Slide back to see this net as it was after each epoch of its training: its guess for your "
                   "drawing, its probabilities, and below, what it saw.")
        try:
            if inference.epoch_is_ready(store, run_id, epoch):
                model = inference.epoch_model(store, run_id, epoch)
            else:
                with st.spinner(f"Loading the net after epoch {epoch}…"):
                    model = inference.epoch_model(store, run_id, epoch)
        except LabError as error:
            st.warning(f"{markdown_text(error)} Showing the net after its last epoch instead.")
            return model_for(run_id), probabilities, None
        shown = probabilities if epoch == last else inference.predict(model, image)
        line = f"Epoch {epoch}: {inference.describe_guess(shown)}"
        if epoch != last:
            line += f" · Epoch {last}: {inference.describe_guess(probabilities)}"
        # Only numbers and words of this page go into this HTML.
        st.markdown(f"<div data-testid='draw-epoch-guess' style='font-size:1.25rem;font-weight:600'>{line}</div>",
                    unsafe_allow_html=True)
    with chart_column:
        st.altair_chart(probability_chart(shown), width="stretch")
    return model, shown, epoch


@st.fragment
def why(image, predictions: dict):
    """The explanations of one run, at the epoch its slider shows; a fragment, so that moving the slider
    reruns only this part and not the canvas, the guesses and the handwriting set above and below."""
    st.subheader("Why")
    explained = next(iter(predictions))
    if len(predictions) > 1:
        explained = st.segmented_control("Explain", list(predictions), format_func=run_name,
                                         default=explained, required=True, key="draw_explained")
    model, probabilities, epoch = epoch_choice(explained, image, predictions[explained])
    guess = int(probabilities.argmax())
    layers = explanation.conv_feature_maps(model, image)
    at_epoch = f" after epoch {epoch}" if epoch is not None else ""
    saliency_column, cam_column, difference_column = st.columns([1, 1, 1], gap="large")
    with saliency_column:
        st.image(explanation.saliency_overlay(image, explanation.saliency(model, image, guess)), width=240)
        st.markdown(f"**SmoothGrad saliency** for the guess {guess}{at_epoch}: red where more ink would make the "
                    f"model more sure of {guess}, blue where ink counts against it. The brightest spots are the "
                    "pixels its score is most sensitive to.")
    with cam_column:
        try:
            cam = explanation.grad_cam(model, image, guess)
        except LabError as error:
            st.info(markdown_text(error))
            cam = None
        grid = "x".join(str(size) for size in layers[-1].maps.shape[:2]) if layers else ""
        if cam is not None and not cam.any():
            st.info(f"**Grad-CAM is empty** for the guess {guess}{at_epoch}: nothing the last convolution layer "
                    f"found in your drawing raised the score of {guess}, so there is no region to light up. An "
                    "unsure net, or a drawing unlike its digits, does this; the saliency map beside it still shows "
                    "which pixels matter.", icon=":material/visibility_off:")
        elif cam is not None:
            st.image(explanation.grad_cam_overlay(image, cam), width=240)
            st.markdown(f"**Grad-CAM** for the guess {guess}{at_epoch}: yellow where the last convolution layer "
                        f"found the features that raised the score of {guess}, dark where it found none. It is "
                        f"drawn from that layer's {grid} grid, so it is coarse.")
    with difference_column:
        st.markdown("**Why the two maps differ.** They answer two questions. Grad-CAM: *where* in the image lie "
                    "the features of the last convolution layer that raised this class, on that layer's coarse "
                    "grid. SmoothGrad: *which input pixels* the score is most sensitive to, pixel by pixel, so "
                    "it is fine. Where both light up, the guess rests on that part of your digit.")
    st.markdown("**Feature maps.** Each small square is what one filter of a convolution layer finds in "
                "your drawing (white: strong response). Early layers find edges and strokes; later ones "
                "combine them into parts of digits, on smaller and smaller grids.")
    for layer in layers:
        height, width, channels = layer.maps.shape
        shown = min(channels, explanation.MAX_CHANNELS)
        st.image(explanation.feature_grid(layer.maps),
                 caption=f"Layer {layer.number}: {layer.name}, {channels} maps of {height}x{width}"
                         + (f" (first {shown} shown)" if shown < channels else ""))


if predictions:
    st.divider()
    why(prepared.image, predictions)

# ---- My handwriting ------------------------------------------------------------------------------
st.divider()
st.subheader("My handwriting")
st.markdown("MNIST's test digits were written by the same kind of people, on the same forms, as its training "
            "digits. Yours were not. Label what you drew and keep it; then see how each model does on your "
            "set, next to its MNIST test accuracy.")
keep_column, set_column = st.columns(2, gap="large")
with keep_column:
    st.pills("This is a", list(range(10)), key="draw_sample_label")
    standard = prepared if prepared.empty or options == preprocessing.Options() else preprocessing.preprocess(prepared.ink)
    st.button("Keep it in my set", icon=":material/bookmark_add:", disabled=standard.empty,
              on_click=keep_sample, args=(standard.image, standard.cropped),
              help="Kept with all the MNIST steps on, whatever the switches above say.")
    # Shown here, below the canvas: an element appearing above it would make the canvas start over.
    if notice := st.session_state.pop("draw_notice", None):
        (st.success if notice[0] == "success" else st.warning)(notice[1])
with set_column:
    images, sample_labels, sample_ids = handwriting.load()
    if not sample_ids:
        st.caption("Your set is empty. It is yours alone: other learners neither see it nor score on it (the "
                   "teacher may pool everyone's drawings into a class set).")
    else:
        st.image(digit_grid(images, [f"{number}: {label}" for number, label in enumerate(sample_labels, start=1)],
                            columns=10, scale=2, caption_height=16), caption=f"{len(sample_ids)} samples (number: label)",
                 width="stretch")
        st.multiselect("Delete samples", sample_ids, key="draw_delete_ids",
                       format_func=lambda sample_id: f"{sample_ids.index(sample_id) + 1}: a {sample_id[0]}")
        st.button("Delete", icon=":material/delete:", on_click=delete_samples,
                  disabled=not st.session_state.get("draw_delete_ids"))

if sample_ids and chosen:
    rows = []
    for run_id in chosen:
        meta = runs_by_id[run_id]
        try:
            accuracy = handwriting_accuracy(run_id, inference.model_version(store, run_id), str(store.root),
                                            str(handwriting.base), learner_id, tuple(sample_ids))
        except LabError as error:
            st.warning(f"{run_name(run_id)}: {markdown_text(error)}")
            continue
        mnist = meta.get("test_accuracy")
        rows.append({"run": run_label(run_id), "MNIST test": mnist, "my handwriting": accuracy,
                     "gap (points)": (mnist - accuracy) * 100 if isinstance(mnist, (int, float)) else None})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "MNIST test": st.column_config.NumberColumn(format="percent"),
        "my handwriting": st.column_config.NumberColumn(format="percent"),
        "gap (points)": st.column_config.NumberColumn(format="%.1f"),
    })
    st.caption("Gap: MNIST test accuracy minus accuracy on your set, in percentage points. "
               "The models scored are the ones chosen at the top of the page.")
