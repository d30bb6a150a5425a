"""Compare: every run in one table next to the notebook's results, their curves overlaid, what the
numbers say, one run in depth, two runs head to head, and export or delete a run."""
import app
app.route_through_navigation()

import functools

import pandas as pd
import streamlit as st

from mnist_lab import classroom, comparison, data, evaluation, keras_code
from mnist_lab.reference import ReferenceResultsError
from mnist_lab.errors import LabError
from mnist_lab.handwriting import HandwritingSet
from mnist_lab.runs import ACTIVE, ModelUnavailable, RunNotFound, RunStatus, RunStore
from mnist_lab.views.markdown import plain, quoted

GALLERY_SIZE = 40
ANY = "any"
# How the table writes its numbers; a missing one is a dash, never "None".
NUMBER_FORMATS = {"test accuracy %": "{:.2f}", comparison.CLASS_SET_COLUMN: "{:.1f}",
                  "best val. accuracy %": "{:.2f}", "s / 1,000 images": "{:.2f}", "s / epoch": "{:.1f}",
                  "parameters": "{:,}", "training images": "{:,}", "epochs": "{:d}", "batch size": "{:d}"}

st.title("Compare")
st.markdown("The notebook ended on a table, *Architecture / Accuracy-%*. Here it is live: every run you "
            "train joins the notebook's three results, so you can see which net wins, what it costs, and why.")

store = RunStore()
try:
    entries = comparison.entries_from_store(store)
except ReferenceResultsError as error:
    st.error(plain(error))
    entries = comparison.build_entries(store.list(), {}, references=[])
by_key = {entry.key: entry for entry in entries}
runs = [entry for entry in entries if entry.kind == comparison.RUN]
damaged = [entry for entry in runs if entry.status == RunStatus.DAMAGED]
evaluable = [entry for entry in runs if entry.has_model and entry.status != RunStatus.DAMAGED]


def label(key: str) -> str:
    """A run's or notebook result's display name, for the pickers."""
    return by_key[key].label


if notice := st.session_state.pop("compare_notice", None):
    st.success(notice)
if damaged:
    st.warning(f"{len(damaged)} run{' is' if len(damaged) == 1 else 's are'} damaged: "
               + "; ".join(f"{quoted(entry.label)} ({plain(entry.notes)})" for entry in damaged)
               + " Their rows say what is wrong; delete them under *Export or delete*, or repair their files.",
               icon=":material/broken_image:")

# ---- The table ---------------------------------------------------------------------------------
st.header("All runs")
if not runs:
    with st.container(border=True):
        st.markdown("**No runs yet.** Train a network on the Train page: pick one of the notebook's nets (or "
                    "your own), press *Train*, and its row, curves and confusion matrix appear here as soon as "
                    "it has finished an epoch. Meanwhile, here are the notebook's three published results.")
        st.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")

class_images, class_labels, class_ids = HandwritingSet.class_set().load()
class_set = None
if len(class_ids):
    with_models = [entry.key for entry in evaluable]
    class_set = evaluation.class_set_scores(store, with_models, class_images, class_labels)
    unscored = [key for key in with_models if key not in class_set]
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.markdown(f"**A leaderboard on real handwriting:** the column *{comparison.CLASS_SET_COLUMN}* scores each "
                  f"run on the class set, {len(class_ids)} digits drawn by this class (MNIST's test digits were "
                  "written on forms, with pens: the gap between the two columns is how far that is from a mouse "
                  "or a finger).")
    if unscored and right.button(f"Score {len(unscored)} more run{'s' if len(unscored) != 1 else ''}",
                                 icon=":material/scoreboard:", key="compare_score_class_set"):
        with st.spinner("Scoring the runs on the class's handwriting…"):
            class_set = evaluation.class_set_scores(store, with_models, class_images, class_labels, compute=True)
table = comparison.runs_table(entries, class_set)
if runs:
    filters = st.columns([2, 2, 2, 1.3], vertical_alignment="bottom")
    chosen_architectures = filters[0].multiselect(
        "Architecture", sorted(table["architecture"].unique()), key="compare_filter_architecture",
        placeholder="all")
    chosen_statuses = filters[1].multiselect(
        "Status", sorted(table["status"].unique()), key="compare_filter_status", placeholder="all")
    name_text = filters[2].text_input("Name contains", key="compare_filter_name")
    with_notebook = filters[3].toggle("Notebook rows", value=True, key="compare_filter_notebook")
    shown = comparison.filter_table(table, chosen_architectures, chosen_statuses, name_text, with_notebook)
else:
    shown = table


def shade_notebook_rows(row: pd.Series):
    colour = "background-color: #fff6db" if row["source"] == comparison.NOTEBOOK else ""
    return [colour] * len(row)


st.dataframe(
    shown.style.apply(shade_notebook_rows, axis=1).format(
        {column: text for column, text in NUMBER_FORMATS.items() if column in shown.columns},
        na_rep=comparison.MISSING),
    hide_index=True,
    height=min(38 + 35 * max(len(shown), 1), 460),
    column_config={
        "test accuracy %": st.column_config.NumberColumn(
            "test accuracy %", width=112, pinned=True,
            help="On the 10,000 MNIST test images, after the last epoch"),
        "name": st.column_config.TextColumn("name", width="medium"),
        comparison.CLASS_SET_COLUMN: st.column_config.NumberColumn(
            comparison.CLASS_SET_COLUMN, help="On the class set: the digits this class drew, pooled by the teacher"),
        "started": st.column_config.TextColumn("started", help="When the run was created (UTC)"),
        "s / 1,000 images": st.column_config.NumberColumn(
            "s / 1,000 images", help="Median seconds per epoch for each 1,000 training images: epochs of "
                                     "different sizes compared fairly"),
        "s / epoch": st.column_config.NumberColumn("s / epoch", help="Median seconds per epoch"),
        "best val. accuracy %": st.column_config.NumberColumn(
            "best val. accuracy %", help="Highest validation accuracy over the epochs"),
        "notes": st.column_config.TextColumn("notes", width="large"),
    },
    key="compare_table",
)
st.caption(f"{len(shown)} of {len(table)} rows. Click a column header to sort. Shaded rows are the notebook's "
           "published results (Keras 2, all 60,000 training images, batch 128, 12 epochs; its validation "
           "data was the test set).")

# ---- Curves and observations ---------------------------------------------------------------------
st.header("Curves")
keys = [entry.key for entry in entries]
if "compare_overlay" in st.session_state:
    st.session_state.compare_overlay = [key for key in st.session_state.compare_overlay if key in by_key]
else:
    st.session_state.compare_overlay = comparison.default_overlay(
        entries, st.session_state.get("selected_run_ids", []), pinned=classroom.Room(store).pinned())
overlay = st.multiselect("Runs to overlay", keys, format_func=label, key="compare_overlay",
                         placeholder="Choose runs or notebook results")
st.session_state.selected_run_ids = [key for key in overlay if by_key[key].kind == comparison.RUN]
overlaid = [by_key[key] for key in overlay]

curve_data = comparison.curves(overlaid)
if not overlaid:
    st.info("Choose one or more runs above to draw their loss and accuracy per epoch.")
elif curve_data.empty:
    st.info("The chosen runs have no finished epoch yet: their curves appear after the first epoch.")
else:
    labels = [entry.label for entry in overlaid]
    log_loss = st.toggle("Loss on a log scale", key="compare_log_loss",
                         help="Spreads out the small losses of the later epochs, where runs differ.")
    loss_column, accuracy_column = st.columns(2)
    loss_column.subheader("Loss")
    loss_column.altair_chart(comparison.curve_chart(curve_data, "loss", labels, log_loss), width="stretch")
    accuracy_column.subheader("Accuracy")
    accuracy_column.altair_chart(comparison.curve_chart(curve_data, "accuracy", labels), width="stretch")
    st.caption("Solid lines: training data. Dashed lines: validation data. A gap is an epoch the notebook's "
               "printed log does not show. Validation loss rising while training loss falls is overfitting.")

if overlaid:
    with st.container(border=True):
        st.subheader("What the numbers say")
        notebook_entries = [entry for entry in entries if entry.kind == comparison.NOTEBOOK]
        sentences = comparison.observations(overlaid, notebook_entries)
        st.markdown("\n".join(f"- {sentence}" for sentence in sentences) or "Not enough numbers yet.")


# ---- One run in depth, two runs, export and delete -----------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def evaluated(runs_root: str, run_id: str, model_stamp: tuple, data_source: str):
    """Probabilities and labels of a run on the test images (stamp and source key the cache)."""
    mnist = data.load_mnist()
    result = evaluation.evaluate_run(RunStore(runs_root), run_id, mnist.x_test, mnist.y_test)
    return result.probabilities, result.labels


def evaluate(run_id: str):
    """The run's Evaluation, or None after showing why it cannot be had."""
    try:
        mnist = data.load_mnist()
        stat = store.model_path(run_id).stat()
        with st.spinner(f"Testing {quoted(label(run_id))} on the {len(mnist.y_test):,} test images "
                        "(once per saved model)…"):
            probabilities, labels = evaluated(str(store.root), run_id, (stat.st_mtime_ns, stat.st_size),
                                              mnist.source)
    except (ModelUnavailable, data.DataError) as error:
        st.warning(plain(error))
        return None
    except FileNotFoundError:
        st.warning(f"The model file of {quoted(label(run_id))} is gone (the run was deleted).")
        return None
    except OSError as error:
        st.warning(f"The model file of {quoted(label(run_id))} cannot be read "
                   f"({plain(error.strerror or type(error).__name__)}).")
        return None
    return evaluation.Evaluation(probabilities, labels), mnist


def pick_cell(chart_key: str):
    """A click on the confusion matrix sets the gallery's two filters."""
    cells = st.session_state[chart_key].selection.get(evaluation.CELL_SELECTION) or []
    if cells:
        st.session_state.compare_gallery_true = int(cells[0]["true_digit"])
        st.session_state.compare_gallery_predicted = int(cells[0]["predicted_digit"])


def forget_cell():
    """The filters were changed by hand: redraw the matrix without the old cell highlighted."""
    st.session_state.compare_matrix_version = st.session_state.get("compare_matrix_version", 0) + 1


def show_in_depth(run_id: str):
    result = evaluate(run_id)
    if result is None:
        return
    scores, mnist = result
    predictions, confidence = scores.predictions, scores.confidence
    matrix = evaluation.confusion_matrix(scores.labels, predictions)
    digits = evaluation.per_digit_accuracy(scores.labels, predictions)
    if by_key[run_id].status in ACTIVE:
        st.caption(f"Still training: this is its model after epoch {by_key[run_id].epochs}. Reopen the page "
                   "after the next epoch to see it improve.")
    metrics = st.columns(3)
    metrics[0].metric("Test accuracy", f"{100 * scores.accuracy:.2f} %")
    metrics[1].metric("Mistakes", f"{int((predictions != scores.labels).sum()):,} of {len(scores.labels):,}")
    if digits["accuracy"].notna().any():
        hardest = digits.loc[digits["accuracy"].idxmin()]
        metrics[2].metric("Hardest digit", f"{int(hardest['digit'])}  ({hardest['accuracy']:.2f} %)")

    matrix_column, digit_column = st.columns([3, 2])
    with matrix_column:
        st.subheader("Confusion matrix")
        chart_key = f"compare_matrix_{run_id}_{st.session_state.get('compare_matrix_version', 0)}"
        st.altair_chart(evaluation.confusion_chart(matrix), key=chart_key, selection_mode=evaluation.CELL_SELECTION,
                        on_select=functools.partial(pick_cell, chart_key))
        st.caption("Rows: the true digit. Columns: what the model answered. The grey diagonal is right; "
                   "coloured cells are mistakes. Click a cell to see those digits below.")
    with digit_column:
        st.subheader("Accuracy per digit")
        st.altair_chart(evaluation.per_digit_chart(digits), width="stretch")

    st.subheader("Misclassified test digits")
    choices = [ANY] + list(range(10))
    filters = st.columns(2)
    true_digit = filters[0].selectbox("True digit", choices, key="compare_gallery_true", on_change=forget_cell)
    predicted_digit = filters[1].selectbox("Predicted as", choices, key="compare_gallery_predicted",
                                           on_change=forget_cell)
    true_digit = None if true_digit == ANY else true_digit
    predicted_digit = None if predicted_digit == ANY else predicted_digit
    wrong = evaluation.misclassified(scores.labels, predictions, confidence, true_digit, predicted_digit)
    if true_digit is not None and true_digit == predicted_digit:
        st.info(f"That is the diagonal: the {int(matrix[true_digit, true_digit]):,} test images of {true_digit} "
                "the model got right. Pick a cell off the diagonal to see mistakes.")
    elif len(wrong) == 0:
        st.info("No mistakes of that kind.")
    else:
        st.caption(f"{len(wrong):,} mistakes match; the {min(len(wrong), GALLERY_SIZE)} the model was most sure "
                   "of come first. Each caption: true digit, as what the model answered, and its confidence.")
        st.image(evaluation.mistakes_grid(mnist.x_test, scores.labels, predictions, confidence, wrong,
                                          GALLERY_SIZE))


def show_head_to_head(first_id: str, second_id: str):
    first, second = evaluate(first_id), evaluate(second_id)
    if first is None or second is None:
        return
    (first_scores, mnist), (second_scores, _) = first, second
    split = evaluation.disagreement(first_scores.labels, first_scores.predictions, second_scores.predictions)
    counts = st.columns(4)
    counts[0].metric(f"Only {quoted(label(first_id))} right", f"{len(split.only_first_right):,}")
    counts[1].metric(f"Only {quoted(label(second_id))} right", f"{len(split.only_second_right):,}")
    counts[2].metric("Both wrong", f"{len(split.both_wrong):,}")
    counts[3].metric("Both right", f"{split.both_right_count:,}")
    for indices, winner, loser in ((split.only_first_right, first_id, second_id),
                                   (split.only_second_right, second_id, first_id)):
        winner_name, loser_name = quoted(label(winner)), quoted(label(loser))
        st.markdown(f"**{winner_name} right, {loser_name} wrong.** Each caption: true digit, as the answer "
                    f"of {loser_name}, and how sure it was.")
        loser_scores = first_scores if loser == first_id else second_scores
        ordered = indices[(-loser_scores.confidence[indices]).argsort(kind="stable")]
        grid = evaluation.mistakes_grid(mnist.x_test, loser_scores.labels, loser_scores.predictions,
                                        loser_scores.confidence, ordered, GALLERY_SIZE // 2)
        if grid is None:
            st.caption("None.")
        else:
            st.image(grid)


def model_bytes(path) -> bytes:
    """The model file's content, read while the page runs: a deferred read (a callable) is dropped by a
    rerun between showing the button and the click, and the download then silently fails."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def show_export_and_delete(run_id: str):
    try:
        meta = store.get(run_id)
    except RunNotFound as error:
        st.warning(plain(error))
        return
    stem = comparison.export_name(meta)
    buttons = st.columns(4)
    model_path = store.model_path(run_id)
    buttons[0].download_button(
        "Model (.keras)", data=model_bytes(model_path),
        file_name=f"{stem}.keras", mime="application/octet-stream", icon=":material/download:",
        disabled=not model_path.is_file(), on_click="ignore", key="compare_download_model",
        help=None if model_path.is_file() else "This run has no saved model.")
    buttons[1].download_button(
        "History (CSV)", data=comparison.history_csv(store.history(run_id)), file_name=f"{stem}-history.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore", key="compare_download_history")
    try:
        architecture = comparison.architecture_json(meta)
    except ValueError as error:
        buttons[2].caption(plain(error))
    else:
        buttons[2].download_button(
            "Architecture (JSON)", data=architecture, file_name=f"{stem}-architecture.json",
            mime="application/json", icon=":material/download:", on_click="ignore",
            key="compare_download_architecture")
    try:
        script = keras_code.run_script(meta)
    except LabError as error:
        script = None
        buttons[3].caption(f"No Keras script: {plain(error)}")
    else:
        buttons[3].download_button(
            "Keras script (.py)", data=script, file_name=f"{stem}.py", mime="text/x-python",
            icon=":material/download:", on_click="ignore", key="compare_download_code")
    st.caption("The architecture file can be imported on the Architecture page; the model loads with "
               "`keras.saving.load_model`; the script trains the same net again, anywhere Keras runs.")
    if script is not None:
        with st.expander("Keras code", icon=":material/code:"):
            st.caption(keras_code.run_script_summary(meta))
            st.code(script, language="python", height=400)

    st.divider()
    if not app.actor().may_change(meta):
        owner = meta.get("owner_name") or "whoever trained it"
        st.caption(f"Only {plain(owner)} or the teacher can delete this run.")
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


if runs:
    st.header("Look closer")
    depth_tab, versus_tab, manage_tab = st.tabs(
        ["One run in depth", "Two runs head to head", "Export or delete"], key="compare_tab", on_change="rerun")
    evaluable_keys = [entry.key for entry in evaluable]
    first_choice = next((key for key in overlay if key in evaluable_keys), None)
    with depth_tab:
        if depth_tab.open is not False:
            if not evaluable_keys:
                st.info("No run has a saved model yet: a run saves its model after each finished epoch.")
            else:
                chosen = st.selectbox("Run", evaluable_keys, format_func=label, key="compare_depth_run",
                                      index=evaluable_keys.index(first_choice) if first_choice else 0)
                show_in_depth(chosen)
    with versus_tab:
        if versus_tab.open is not False:
            if len(evaluable_keys) < 2:
                st.info("This needs two runs with saved models.")
            else:
                pickers = st.columns(2)
                first_id = pickers[0].selectbox("First run", evaluable_keys, format_func=label,
                                                key="compare_versus_first")
                second_id = pickers[1].selectbox("Second run", evaluable_keys, index=1, format_func=label,
                                                 key="compare_versus_second")
                if first_id == second_id:
                    st.info("Choose two different runs.")
                else:
                    show_head_to_head(first_id, second_id)
    with manage_tab:
        if manage_tab.open is not False:
            run_keys = [entry.key for entry in runs]
            managed = st.selectbox("Run", run_keys, format_func=label, key="compare_manage_run")
            show_export_and_delete(managed)
