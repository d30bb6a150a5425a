"""Draw: write a digit and see every chosen model's guess beside it; below, the 28x28 image a model gets and
how it is made, why a model guessed what it did (at any epoch the run kept), and the learner's own set of
handwriting to score models on."""
import app
app.route_through_navigation()

import streamlit as st

from mnist_lab.classroom import classroom
from mnist_lab.evaluation import explanation, inference
from mnist_lab.errors import LabError
from mnist_lab.images import canvas, gallery, preprocessing, uploads
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import RunStore
from mnist_lab.views import draw as view
from mnist_lab.views.markdown import plain

store = RunStore()
models = view.Models.from_store(store)
learner_id, _ = app.owner()
handwriting = HandwritingSet(owner=learner_id)  # this learner's own: nobody else sees, scores on or deletes it
state = view.DrawState(st.session_state, handwriting)
state.start()


def model_for(run_id: str):
    """A run's model from the lab's one model cache, with a spinner while it is read from disk."""
    if inference.is_cached(store, run_id):
        return inference.cached_model(store, run_id)
    with st.spinner("Loading the model…"):
        return inference.cached_model(store, run_id)


@st.cache_data(max_entries=8, show_spinner=False)
def upload_ink(data: bytes):
    return uploads.read_ink(data)


@st.cache_data(max_entries=64, show_spinner="Scoring your handwriting…")
def handwriting_accuracy(run_id: str, version: float, root: str, handwriting_base: str, owner: str,
                         samples: tuple[str, ...]):
    """A run's accuracy on a learner's handwriting set; `version` (the model file's) and `samples` (the ids)
    change when the model or the set does."""
    images, digits, _ = HandwritingSet(handwriting_base, owner).load()
    return inference.accuracy(inference.cached_model(RunStore(root), run_id), images, digits)


st.title("Draw")
st.caption(view.INTRO)
if models.damaged:
    st.caption(models.damaged_caption)
options = state.options
left, right = st.columns([5, 7], gap="large")

# ---- Input: the canvas or an upload ----------------------------------------------------------------
prepared = None
with left:
    source = st.segmented_control("Input", ["Draw", "Upload an image"], default="Draw", required=True,
                                  key="draw_source", label_visibility="collapsed")
    if source == "Draw":
        from streamlit_drawable_canvas import st_canvas

        st.html(view.CANVAS_CLIP)
        drawing = st_canvas(stroke_width=st.session_state.draw_stroke_width, stroke_color="#ffffff",
                            background_color="#000000", height=view.CANVAS_SIDE, width=view.CANVAS_SIDE,
                            drawing_mode="freedraw", initial_drawing=st.session_state.draw_initial_drawing,
                            return_image_data=True, key=f"draw_canvas_{st.session_state.draw_canvas_generation}")
        st.session_state.draw_last_drawing = drawing.json_data
        with st.container(horizontal=True, key="draw_canvas_buttons"):
            st.button("Undo stroke", icon=":material/undo:", on_click=state.undo_stroke,
                      disabled=not (drawing.json_data or {}).get("objects"))
            st.button("Clear", icon=":material/delete:", on_click=state.clear_canvas)
        st.slider("Pen width", 8, 40, key="draw_stroke_width",
                  help="MNIST's strokes are about 2 to 3 pixels wide in the 28x28 image.")
        prepared = canvas.preprocess_canvas(drawing.image_data, options)
    else:
        upload = st.file_uploader("A picture of one digit: a drawing, or a photo of a digit written on paper",
                                  type=view.UPLOAD_TYPES, max_upload_size=uploads.MAX_FILE_BYTES // 2**20,
                                  key="draw_upload")
        if upload is None:
            st.caption("Dark ink on light paper is detected and inverted; light on dark is used as it is.")
        else:
            try:
                ink, dark_on_light = upload_ink(upload.getvalue())
            except uploads.ImageError as error:
                st.error(f"{plain(upload.name)}: {plain(error)}")
            else:
                prepared = uploads.preprocess_found_ink(ink, dark_on_light, options)
                st.image(upload.getvalue(), caption=upload.name, width=view.CANVAS_SIDE)
                st.caption(view.upload_caption(dark_on_light))

if prepared is None:
    prepared = canvas.preprocess_canvas(None, options)

# ---- Predictions, beside the input -----------------------------------------------------------------
with right:
    guess_area = st.container()
    if not models.runs:
        app.nothing_trained_yet(view.NO_MODEL, view.FIRST_RUN_COMMAND)
        chosen = []
    else:
        st.session_state.draw_run_ids = view.chosen_models(
            models.by_id, st.session_state.get("draw_run_ids"), st.session_state.get("selected_run_ids", []),
            lambda: classroom.default_models(models.runs, classroom.Room(store).pinned(), has_model=store.has_model))
        chosen = st.multiselect("Models", list(models.by_id), format_func=models.label, key="draw_run_ids",
                                max_selections=view.MAX_MODELS, help="Completed runs (and stopped ones with a "
                                "saved model), with their learner and MNIST test accuracy. It opens with the teacher's "
                                "pinned models, else the most accurate. Pick several to see them disagree.")
        st.session_state.selected_run_ids = list(chosen)
        for run_id in chosen:  # the epoch slider below answers at once when its models are built ahead
            inference.prepare_epochs(store, run_id)

with guess_area:
    st.subheader("Prediction")
    predictions, problems = view.guesses(models, [] if prepared.empty else chosen,
                                         lambda run_id: inference.predict(model_for(run_id), prepared.image))
    for problem in problems:
        st.warning(problem)
    if notice := view.guess_notice(prepared, models, chosen):
        st.info(notice[0], icon=notice[1])
    if predictions:
        for column, (run_id, probabilities) in zip(st.columns(len(predictions)), predictions.items()):
            with column:
                st.text(models.label(run_id))  # plain text: no Markdown, no HTML, no links made of URLs
                st.markdown(view.guess_html(probabilities), unsafe_allow_html=True)
                st.altair_chart(view.probability_chart(probabilities), width="stretch")
        for caption in view.guess_captions(predictions, lambda run_id: inference.stored_epochs(store, run_id)):
            st.caption(caption)
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
        st.caption(view.no_slider_reason(epochs))
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
            st.warning(f"{plain(error)} Showing the net after its last epoch instead.")
            return model_for(run_id), probabilities, None
        shown = probabilities if epoch == last else inference.predict(model, image)
        st.markdown(view.epoch_guess_html(epoch, shown, last, probabilities), unsafe_allow_html=True)
    with chart_column:
        st.altair_chart(view.probability_chart(shown), width="stretch")
    return model, shown, epoch


@st.fragment
def why(image, predictions: dict):
    """The explanations of one run, at the epoch its slider shows; a fragment, so that moving the slider
    reruns only this part and not the canvas, the guesses and the handwriting set above and below."""
    st.subheader("Why")
    explained = next(iter(predictions))
    if len(predictions) > 1:
        explained = st.segmented_control("Explain", list(predictions), format_func=models.name,
                                         default=explained, required=True, key="draw_explained")
    model, probabilities, epoch = epoch_choice(explained, image, predictions[explained])
    guess = int(probabilities.argmax())
    layers = explanation.conv_feature_maps(model, image)
    saliency_column, cam_column, difference_column = st.columns([1, 1, 1], gap="large")
    with saliency_column:
        st.image(explanation.saliency_overlay(image, explanation.saliency(model, image, guess)), width=240)
        st.markdown(view.saliency_text(guess, epoch))
    with cam_column:
        try:
            cam = explanation.grad_cam(model, image, guess)
        except LabError as error:
            st.info(plain(error))
            cam = None
        if cam is not None and not cam.any():
            st.info(view.empty_grad_cam_text(guess, epoch), icon=":material/visibility_off:")
        elif cam is not None:
            st.image(explanation.grad_cam_overlay(image, cam), width=240)
            st.markdown(view.grad_cam_text(guess, epoch, layers))
    with difference_column:
        st.markdown(view.WHY_THE_MAPS_DIFFER)
    st.markdown(view.FEATURE_MAPS)
    for layer in layers:
        st.image(explanation.feature_grid(layer.maps), caption=view.feature_map_caption(layer))


if predictions:
    st.divider()
    why(prepared.image, predictions)

# ---- My handwriting ------------------------------------------------------------------------------
st.divider()
st.subheader("My handwriting")
st.markdown(view.HANDWRITING_INTRO)
keep_column, set_column = st.columns(2, gap="large")
with keep_column:
    st.pills("This is a", list(range(10)), key="draw_sample_label")
    standard = view.standard_sample(prepared, options)
    st.button("Keep it in my set", icon=":material/bookmark_add:", disabled=standard.empty,
              on_click=state.keep_sample, args=(standard.image, standard.cropped),
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
        st.image(gallery.digit_grid(images, view.sample_captions(sample_labels), columns=10, scale=2, caption_height=16),
                 caption=f"{len(sample_ids)} samples (number: label)", width="stretch")
        st.multiselect("Delete samples", sample_ids, key="draw_delete_ids",
                       format_func=lambda sample_id: view.sample_choice(sample_ids, sample_id))
        st.button("Delete", icon=":material/delete:", on_click=state.delete_samples,
                  disabled=not st.session_state.get("draw_delete_ids"))

if sample_ids and chosen:
    table, problems = view.handwriting_scores(models, chosen, lambda run_id: handwriting_accuracy(
        run_id, inference.model_version(store, run_id), str(store.root), str(handwriting.base), learner_id,
        tuple(sample_ids)))
    for problem in problems:
        st.warning(problem)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        column: st.column_config.NumberColumn(format=text) for column, text in view.HANDWRITING_FORMATS.items()})
    st.caption("Gap: MNIST test accuracy minus accuracy on your set, in percentage points. "
               "The models scored are the ones chosen at the top of the page.")
