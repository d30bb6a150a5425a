"""Compare: every run in one table next to the notebook's results, their curves overlaid, what the
numbers say, one run in depth, two runs head to head, and export or delete a run."""
import app
app.route_through_navigation()

import streamlit as st

from mnist_lab import data
from mnist_lab.architecture import keras_code
from mnist_lab.classroom import classroom
from mnist_lab.evaluation import comparison, curves, evaluation
from mnist_lab.errors import LabError
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import ModelUnavailable, RunNotFound, RunStore
from mnist_lab.views import compare as view
from mnist_lab.views.markdown import plain, quoted

st.title("Compare")
st.markdown("The notebook ended on a table, *Architecture / Accuracy-%*. Here it is live: every run you "
            "train joins the notebook's three results, so you can see which net wins, what it costs, and why.")

store = RunStore()
clicks = view.MatrixClicks(st.session_state)
lineup, problem = view.Lineup.from_store(store)
if problem:
    st.error(problem)
label = lineup.label

if notice := st.session_state.pop("compare_notice", None):
    st.success(notice)
if lineup.damaged:
    st.warning(view.damaged_warning(lineup.damaged), icon=":material/broken_image:")

# ---- The table ---------------------------------------------------------------------------------
st.header("All runs")
if not lineup.runs:
    app.nothing_trained_yet(view.NO_RUNS)

class_images, class_labels, class_ids = HandwritingSet.class_set().load()
class_set = None
if len(class_ids):
    class_set = evaluation.class_set_scores(store, lineup.testable, class_images, class_labels)
    unscored = [key for key in lineup.testable if key not in class_set]
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.markdown(view.class_set_intro(len(class_ids)))
    if unscored and right.button(view.score_label(len(unscored)), icon=":material/scoreboard:",
                                 key="compare_score_class_set"):
        with st.spinner("Scoring the runs on the class's handwriting…"):
            class_set = evaluation.class_set_scores(store, lineup.testable, class_images, class_labels, compute=True)
table = comparison.runs_table(lineup.entries, class_set)
shown = table
if lineup.runs:
    filters = st.columns([2, 2, 2, 1.3], vertical_alignment="bottom")
    chosen_architectures = filters[0].multiselect("Architecture", sorted(table["architecture"].unique()),
                                                  key="compare_filter_architecture", placeholder="all")
    chosen_statuses = filters[1].multiselect("Status", sorted(table["status"].unique()), key="compare_filter_status",
                                             placeholder="all")
    name_text = filters[2].text_input("Name contains", key="compare_filter_name")
    with_notebook = filters[3].toggle("Notebook rows", value=True, key="compare_filter_notebook")
    shown = comparison.filter_table(table, chosen_architectures, chosen_statuses, name_text, with_notebook)

st.dataframe(
    view.styled_table(shown), hide_index=True, height=view.table_height(len(shown)), key="compare_table",
    column_config={name: (st.column_config.NumberColumn if look.number else st.column_config.TextColumn)(
        name, help=look.help, width=look.width, pinned=look.pinned) for name, look in view.COLUMN_LOOKS.items()},
)
st.caption(view.table_caption(len(shown), len(table)))

# ---- Curves and observations ---------------------------------------------------------------------
st.header("Curves")
st.session_state.compare_overlay = lineup.overlay(st.session_state.get("compare_overlay"),
                                                  st.session_state.get("selected_run_ids", []),
                                                  classroom.Room(store).pinned())
overlay = st.multiselect("Runs to overlay", list(lineup.by_key), format_func=label, key="compare_overlay",
                         placeholder="Choose runs or notebook results")
st.session_state.selected_run_ids = lineup.run_keys(overlay)
overlaid = [lineup.by_key[key] for key in overlay]

curve_data = curves.curves(overlaid)
if not overlaid:
    st.info("Choose one or more runs above to draw their loss and accuracy per epoch.")
elif curve_data.empty:
    st.info("The chosen runs have no finished epoch yet: their curves appear after the first epoch.")
else:
    labels = [entry.label for entry in overlaid]
    log_loss = st.toggle("Loss on a log scale", key="compare_log_loss",
                         help="Spreads out the small losses of the later epochs, where runs differ.")
    for column, metric, log_scale in zip(st.columns(2), ("loss", "accuracy"), (log_loss, False)):
        column.subheader(metric.capitalize())
        column.altair_chart(curves.curve_chart(curve_data, metric, labels, log_scale), width="stretch")
    st.caption("Solid lines: training data. Dashed lines: validation data. A gap is an epoch the notebook's "
               "printed log does not show. Validation loss rising while training loss falls is overfitting.")

if overlaid:
    with st.container(border=True):
        st.subheader("What the numbers say")
        st.markdown(view.observation_list(overlaid, lineup.notebook))


# ---- One run in depth, two runs, export and delete -----------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def evaluated(runs_root: str, run_id: str, model_stamp: tuple, data_source: str):
    """Probabilities and labels of a run on the test images (stamp and source key the cache)."""
    mnist = data.load_mnist()
    result = evaluation.evaluate_run(RunStore(runs_root), run_id, mnist.x_test, mnist.y_test)
    return result.probabilities, result.labels


def evaluate(run_id: str):
    """The run's Evaluation and the data, or None after showing why they cannot be had."""
    try:
        mnist = data.load_mnist()
        stat = store.model_path(run_id).stat()
        with st.spinner(f"Testing {quoted(label(run_id))} on the {len(mnist.y_test):,} test images "
                        "(once per saved model)…"):
            probabilities, labels = evaluated(str(store.root), run_id, (stat.st_mtime_ns, stat.st_size),
                                              mnist.source)
    except (ModelUnavailable, data.DataError, OSError) as error:
        st.warning(view.model_problem(error, label(run_id)))
        return None
    return evaluation.Evaluation(probabilities, labels), mnist


def show_in_depth(run_id: str):
    result = evaluate(run_id)
    if result is None:
        return
    scores, mnist = result
    matrix = evaluation.confusion_matrix(scores.labels, scores.predictions)
    digits = evaluation.per_digit_accuracy(scores.labels, scores.predictions)
    if caption := view.still_training(lineup.by_key[run_id]):
        st.caption(caption)
    for column, (name, value) in zip(st.columns(3), view.depth_metrics(scores, digits)):
        column.metric(name, value)

    matrix_column, digit_column = st.columns([3, 2])
    with matrix_column:
        st.subheader("Confusion matrix")
        chart_key = clicks.chart_key(run_id)
        st.altair_chart(evaluation.confusion_chart(matrix), key=chart_key, selection_mode=evaluation.CELL_SELECTION,
                        on_select=lambda key=chart_key: clicks.pick(key))
        st.caption("Rows: the true digit. Columns: what the model answered. The grey diagonal is right; "
                   "coloured cells are mistakes. Click a cell to see those digits below.")
    with digit_column:
        st.subheader("Accuracy per digit")
        st.altair_chart(evaluation.per_digit_chart(digits), width="stretch")

    st.subheader("Misclassified test digits")
    filters = st.columns(2)
    true_digit = view.digit_filter(filters[0].selectbox("True digit", view.DIGIT_CHOICES, key="compare_gallery_true",
                                                        on_change=clicks.forget))
    predicted_digit = view.digit_filter(filters[1].selectbox(
        "Predicted as", view.DIGIT_CHOICES, key="compare_gallery_predicted", on_change=clicks.forget))
    wrong = evaluation.misclassified(scores.labels, scores.predictions, scores.confidence, true_digit, predicted_digit)
    if notice := view.gallery_notice(true_digit, predicted_digit, matrix, len(wrong)):
        st.info(notice)
    else:
        st.caption(view.gallery_caption(len(wrong)))
        st.image(evaluation.mistakes_grid(mnist.x_test, scores.labels, scores.predictions, scores.confidence, wrong,
                                          view.GALLERY_SIZE))


def show_head_to_head(first_id: str, second_id: str):
    first, second = evaluate(first_id), evaluate(second_id)
    if first is None or second is None:
        return
    (first_scores, mnist), (second_scores, _) = first, second
    split = evaluation.disagreement(first_scores.labels, first_scores.predictions, second_scores.predictions)
    for column, (name, value) in zip(st.columns(4), view.head_to_head_counts(split, label(first_id),
                                                                            label(second_id))):
        column.metric(name, value)
    for heading, grid in view.one_right_only(split, (label(first_id), first_scores),
                                             (label(second_id), second_scores), mnist.x_test):
        st.markdown(heading)
        if grid is None:
            st.caption("None.")
        else:
            st.image(grid)


def show_export_and_delete(run_id: str):
    try:
        meta = store.get(run_id)
    except RunNotFound as error:
        st.warning(plain(error))
        return
    downloads = view.downloads(store, meta)
    for column, download in zip(st.columns(len(downloads)), downloads):
        if download.problem:
            column.caption(download.problem)
        else:
            column.download_button(download.label, data=download.data, file_name=download.file_name,
                                   mime=download.mime, icon=":material/download:", on_click="ignore", key=download.key,
                                   disabled=download.missing is not None, help=download.missing)
    st.caption("The architecture file can be imported on the Architecture page; the model loads with "
               "`keras.saving.load_model`; the script trains the same net again, anywhere Keras runs.")
    if not (script := downloads[-1]).problem:
        with st.expander("Keras code", icon=":material/code:"):
            st.caption(keras_code.run_script_summary(meta))
            st.code(script.data, language="python", height=400)

    st.divider()
    if not app.actor().may_change(meta):
        st.caption(view.delete_refusal(meta))
        return
    confirmed = st.checkbox(f"Yes, delete {quoted(label(run_id))}, its history and its model for good",
                            key="compare_delete_confirm")
    if st.button("Delete run", type="primary", disabled=not confirmed, icon=":material/delete:",
                 key="compare_delete"):
        try:
            app.shared_manager().delete(run_id, by=app.actor())
        except (ValueError, LabError) as error:
            st.error(plain(error))
        else:
            st.session_state.compare_notice = f"Deleted {quoted(label(run_id))}."
            st.session_state.pop("compare_delete_confirm", None)
            st.rerun()


if lineup.runs:
    st.header("Look closer")
    depth_tab, versus_tab, manage_tab = st.tabs(
        ["One run in depth", "Two runs head to head", "Export or delete"], key="compare_tab", on_change="rerun")
    with depth_tab:
        if depth_tab.open is not False:
            if not lineup.testable:
                st.info("No run has a saved model yet: a run saves its model after each finished epoch.")
            else:
                chosen = st.selectbox("Run", lineup.testable, format_func=label, key="compare_depth_run",
                                      index=lineup.first_testable(overlay))
                show_in_depth(chosen)
    with versus_tab:
        if versus_tab.open is not False:
            if len(lineup.testable) < 2:
                st.info("This needs two runs with saved models.")
            else:
                pickers = st.columns(2)
                first_id = pickers[0].selectbox("First run", lineup.testable, format_func=label,
                                                key="compare_versus_first")
                second_id = pickers[1].selectbox("Second run", lineup.testable, index=1, format_func=label,
                                                 key="compare_versus_second")
                if first_id == second_id:
                    st.info("Choose two different runs.")
                else:
                    show_head_to_head(first_id, second_id)
    with manage_tab:
        if manage_tab.open is not False:
            managed = st.selectbox("Run", [entry.key for entry in lineup.runs], format_func=label,
                                   key="compare_manage_run")
            show_export_and_delete(managed)
