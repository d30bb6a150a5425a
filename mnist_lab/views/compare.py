"""What the Compare page shows that is not Streamlit: the lineup of entries it asks about (runs, damaged runs,
runs with a model to test), how the table looks, and the sentences around its numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnist_lab.architecture import keras_code
from mnist_lab.evaluation import comparison, curves, evaluation
from mnist_lab.evaluation.comparison import CLASS_SET_COLUMN, MISSING, NOTEBOOK, RUN, Entry
from mnist_lab.evaluation.observations import observations
from mnist_lab.data import DataError
from mnist_lab.errors import LabError
from mnist_lab.evaluation.reference import ReferenceResultsError
from mnist_lab.runs import ACTIVE, ModelUnavailable, RunStatus, RunStore
from mnist_lab.views.markdown import plain, quoted

GALLERY_SIZE = 40
NO_RUNS = ("**No runs yet.** Train a network on the Train page: pick one of the notebook's nets (or your own), "
           "press *Train*, and its row, curves and confusion matrix appear here as soon as it has finished an "
           "epoch. Meanwhile, here are the notebook's three published results.")
ANY_DIGIT = "any"
DIGIT_CHOICES = [ANY_DIGIT, *range(10)]  # the gallery's two filters
# How the table writes its numbers; a missing one is a dash, never "None".
NUMBER_FORMATS = {"test accuracy %": "{:.2f}", CLASS_SET_COLUMN: "{:.1f}", "best val. accuracy %": "{:.2f}",
                  "s / 1,000 images": "{:.2f}", "s / epoch": "{:.1f}", "parameters": "{:,}",
                  "training images": "{:,}", "epochs": "{:d}", "batch size": "{:d}"}
NOTEBOOK_SHADE = "background-color: #fff6db"


@dataclass(frozen=True)
class ColumnLook:
    """How the table shows a column: as a number or as text, with a tooltip, a width, pinned in view or not."""

    number: bool
    help: str | None = None
    width: int | str | None = None
    pinned: bool | None = None


COLUMN_LOOKS = {
    "test accuracy %": ColumnLook(True, "On the 10,000 MNIST test images, after the last epoch", 112, pinned=True),
    "name": ColumnLook(False, width="medium"),
    CLASS_SET_COLUMN: ColumnLook(True, "On the class set: the digits this class drew, pooled by the teacher"),
    "started": ColumnLook(False, "When the run was created (UTC)"),
    "s / 1,000 images": ColumnLook(True, "Median seconds per epoch for each 1,000 training images: epochs of "
                                         "different sizes compared fairly"),
    "s / epoch": ColumnLook(True, "Median seconds per epoch"),
    "best val. accuracy %": ColumnLook(True, "Highest validation accuracy over the epochs"),
    "notes": ColumnLook(False, width="large"),
}
ROW_PIXELS, HEADER_PIXELS, MAX_TABLE_PIXELS = 35, 38, 460


class Lineup:
    """Every entry of the comparison by key, and the page's questions about them: which are runs, which are
    damaged, which have a model to test, what a key is called."""

    def __init__(self, entries: list[Entry]):
        self.entries = list(entries)
        self.by_key = {entry.key: entry for entry in self.entries}
        self.runs = [entry for entry in self.entries if entry.kind == RUN]
        self.notebook = [entry for entry in self.entries if entry.kind == NOTEBOOK]
        self.damaged = [entry for entry in self.runs if entry.status == RunStatus.DAMAGED]
        self.testable = [entry.key for entry in self.runs if entry.has_model and entry.status != RunStatus.DAMAGED]

    @classmethod
    def from_store(cls, store: RunStore) -> tuple[Lineup, str | None]:
        """Every run in the store and the notebook's results; without those (their file is unreadable), the runs
        alone and why (Markdown)."""
        try:
            return cls(comparison.entries_from_store(store)), None
        except ReferenceResultsError as error:
            return cls(comparison.build_entries(store.list(), {}, references=[])), plain(error)

    def label(self, key: str) -> str:
        """A run's or notebook result's display name, for the pickers."""
        return self.by_key[key].label

    def overlay(self, kept, preferred, pinned) -> list[str]:
        """The entries to overlay: those the learner `kept` that still exist (a deleted run drops out); on a
        first visit (None kept) the runs `preferred` on another page, else the `pinned` ones, else the best."""
        if kept is not None:
            return [key for key in kept if key in self.by_key]
        return curves.default_overlay(self.entries, preferred, pinned=pinned)

    def run_keys(self, keys) -> list[str]:
        """The runs among the keys: what the Draw page opens with."""
        return [key for key in keys if self.by_key[key].kind == RUN]

    def first_testable(self, keys) -> int:
        """Where the first of the keys that has a model to test stands among the testable runs (0: none)."""
        return next((self.testable.index(key) for key in keys if key in self.testable), 0)


def damaged_warning(damaged: list[Entry]) -> str:
    """One sentence naming every damaged run and what is wrong with it."""
    return (f"{len(damaged)} run{' is' if len(damaged) == 1 else 's are'} damaged: "
            + "; ".join(f"{quoted(entry.label)} ({plain(entry.notes)})" for entry in damaged)
            + " Their rows say what is wrong; delete them under *Export or delete*, or repair their files.")


def class_set_intro(digits: int) -> str:
    return (f"**A leaderboard on real handwriting:** the column *{CLASS_SET_COLUMN}* scores each run on the class "
            f"set, {digits} digits drawn by this class (MNIST's test digits were written on forms, with pens: the "
            "gap between the two columns is how far that is from a mouse or a finger).")


def score_label(unscored: int) -> str:
    return f"Score {unscored} more run{'s' if unscored != 1 else ''}"


def styled_table(shown: pd.DataFrame):
    """The table as its numbers read (a dash for a missing one), the notebook's rows shaded."""
    def shade(row: pd.Series) -> list[str]:
        return [NOTEBOOK_SHADE if row["source"] == NOTEBOOK else ""] * len(row)

    return shown.style.apply(shade, axis=1).format(
        {column: text for column, text in NUMBER_FORMATS.items() if column in shown.columns}, na_rep=MISSING)


def table_height(rows: int) -> int:
    """Pixels that show every row up to a dozen, then scroll."""
    return min(HEADER_PIXELS + ROW_PIXELS * max(rows, 1), MAX_TABLE_PIXELS)


def observation_list(overlaid: list[Entry], notebook: list[Entry]) -> str:
    """What the numbers of the overlaid entries say, as a Markdown list."""
    return "\n".join(f"- {sentence}" for sentence in observations(overlaid, notebook)) or "Not enough numbers yet."


def model_problem(error: OSError | ModelUnavailable | DataError, label: str) -> str:
    """Why a run's model cannot be tested, in the learner's words."""
    if isinstance(error, (ModelUnavailable, DataError)):
        return plain(error)
    if isinstance(error, FileNotFoundError):
        return f"The model file of {quoted(label)} is gone (the run was deleted)."
    return f"The model file of {quoted(label)} cannot be read ({plain(error.strerror or type(error).__name__)})."


def still_training(entry: Entry) -> str | None:
    """For a run still training: whose model the numbers are."""
    if entry.status not in ACTIVE:
        return None
    return (f"Still training: this is its model after epoch {entry.epochs}. Reopen the page after the next epoch "
            "to see it improve.")


def depth_metrics(scores: evaluation.Evaluation, digits: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, value) of the in-depth metrics: accuracy, mistakes and, when known, the hardest digit."""
    wrong = int((scores.predictions != scores.labels).sum())
    metrics = [("Test accuracy", f"{100 * scores.accuracy:.2f} %"),
               ("Mistakes", f"{wrong:,} of {len(scores.labels):,}")]
    if digits["accuracy"].notna().any():
        hardest = digits.loc[digits["accuracy"].idxmin()]
        metrics.append(("Hardest digit", f"{int(hardest['digit'])}  ({hardest['accuracy']:.2f} %)"))
    return metrics


def digit_filter(choice) -> int | None:
    """A gallery filter's digit, None for any."""
    return None if choice == ANY_DIGIT else int(choice)


class MatrixClicks:
    """The confusion matrix's clicks and the gallery's two filters, kept in a session mapping (st.session_state):
    a click on a cell sets both filters; a filter changed by hand redraws the matrix (a new chart key) without
    the old cell highlighted."""

    def __init__(self, state):
        self.state = state

    def chart_key(self, run_id: str) -> str:
        return f"compare_matrix_{run_id}_{self.state.get('compare_matrix_version', 0)}"

    def pick(self, chart_key: str) -> None:
        """A click on the matrix drawn under `chart_key`: its cell's digits become the filters."""
        cells = self.state[chart_key].selection.get(evaluation.CELL_SELECTION) or []
        if cells:
            self.state["compare_gallery_true"] = int(cells[0]["true_digit"])
            self.state["compare_gallery_predicted"] = int(cells[0]["predicted_digit"])

    def forget(self) -> None:
        self.state["compare_matrix_version"] = self.state.get("compare_matrix_version", 0) + 1


def gallery_notice(true_digit: int | None, predicted_digit: int | None, matrix: np.ndarray,
                   mistakes: int) -> str | None:
    """What the gallery says instead of showing digits (None: it shows them): a diagonal cell holds no mistake,
    and the filters may match none."""
    if true_digit is not None and true_digit == predicted_digit:
        return diagonal_notice(true_digit, matrix)
    return "No mistakes of that kind." if mistakes == 0 else None


def table_caption(shown: int, rows: int) -> str:
    return (f"{shown} of {rows} rows. Click a column header to sort. Shaded rows are the notebook's published "
            "results (Keras 2, all 60,000 training images, batch 128, 12 epochs; its validation data was the test "
            "set).")


def diagonal_notice(digit: int, matrix: np.ndarray) -> str:
    return (f"That is the diagonal: the {int(matrix[digit, digit]):,} test images of {digit} the model got right. "
            "Pick a cell off the diagonal to see mistakes.")


def gallery_caption(mistakes: int) -> str:
    return (f"{mistakes:,} mistakes match; the {min(mistakes, GALLERY_SIZE)} the model was most sure of come first. "
            "Each caption: true digit, as what the model answered, and its confidence.")


def head_to_head_counts(split: evaluation.Disagreement, first: str, second: str) -> list[tuple[str, str]]:
    """(label, value) of the four ways two runs' answers on the test images fall (`first`, `second`: labels)."""
    return [(f"Only {quoted(first)} right", f"{len(split.only_first_right):,}"),
            (f"Only {quoted(second)} right", f"{len(split.only_second_right):,}"),
            ("Both wrong", f"{len(split.both_wrong):,}"),
            ("Both right", f"{split.both_right_count:,}")]


def one_right_only(split: evaluation.Disagreement, first: tuple[str, evaluation.Evaluation],
                   second: tuple[str, evaluation.Evaluation], images: np.ndarray) -> list[tuple[str, object]]:
    """For each of two runs (label, scores), the test digits only it gets right: a heading, and a picture of
    them as the other run's mistakes, the ones it was most sure of first (None: there are none)."""
    sides = []
    for indices, (winner, _), (loser, scores) in ((split.only_first_right, first, second),
                                                  (split.only_second_right, second, first)):
        mistakes = evaluation.misclassified(scores.labels, scores.predictions, scores.confidence)
        grid = evaluation.mistakes_grid(images, scores.labels, scores.predictions, scores.confidence,
                                        mistakes[np.isin(mistakes, indices)], GALLERY_SIZE // 2)
        sides.append((f"**{quoted(winner)} right, {quoted(loser)} wrong.** Each caption: true digit, as the answer "
                      f"of {quoted(loser)}, and how sure it was.", grid))
    return sides


@dataclass(frozen=True)
class Download:
    """One of a run's download buttons, or with `problem` (Markdown) why it has none."""

    label: str
    key: str
    data: bytes | str = b""
    file_name: str = ""
    mime: str = ""
    problem: str = ""
    missing: str | None = None  # why the button is there but disabled


def downloads(store: RunStore, meta: dict) -> list[Download]:
    """The run's model, history, architecture and Keras script, in that order, each ready to download."""
    stem, model_path = comparison.export_name(meta), store.model_path(meta["id"])
    found = [Download("Model (.keras)", "compare_download_model", comparison.model_bytes(model_path), f"{stem}.keras",
                      "application/octet-stream",
                      missing=None if model_path.is_file() else "This run has no saved model."),
             Download("History (CSV)", "compare_download_history", comparison.history_csv(store.history(meta["id"])),
                      f"{stem}-history.csv", "text/csv")]
    architecture = Download("Architecture (JSON)", "compare_download_architecture")
    try:
        found.append(Download(architecture.label, architecture.key, comparison.architecture_json(meta),
                              f"{stem}-architecture.json", "application/json"))
    except ValueError as error:
        found.append(Download(architecture.label, architecture.key, problem=plain(error)))
    script = Download("Keras script (.py)", "compare_download_code")
    try:
        found.append(Download(script.label, script.key, keras_code.run_script(meta), f"{stem}.py", "text/x-python"))
    except LabError as error:
        found.append(Download(script.label, script.key, problem=f"No Keras script: {plain(error)}"))
    return found


def delete_refusal(meta: dict) -> str:
    return f"Only {plain(meta.get('owner_name') or 'whoever trained it')} or the teacher can delete this run."
