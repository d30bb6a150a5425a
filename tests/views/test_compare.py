"""What the Compare page shows, made without Streamlit: the lineup of entries, the table's look, the numbers
of one run and of two runs head to head, the downloads, and the sentences."""

import io
import re

import numpy as np
import pandas as pd
import pytest

from mnist_lab.evaluation import comparison, evaluation, reference
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.data import DataError
from mnist_lab.runs import ModelUnavailable, RunStatus, RunStore
from mnist_lab.views import compare as view

ONE_EPOCH = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.91, "seconds": 2.0}]


def run_meta(name: str, status=RunStatus.COMPLETED, **fields) -> dict:
    return {"id": f"id-{name}", "name": name, "status": status, "settings": {"epochs": 1},
            "architecture": {"name": "seed-3layer", "layers": preset_layers("seed-3layer")}, **fields}


def lineup_of(*metas, model_ids=(), references=None) -> view.Lineup:
    histories = {meta["id"]: ONE_EPOCH for meta in metas}
    return view.Lineup(comparison.build_entries(list(metas), histories, model_ids, references=references or []))


def test_only_undamaged_runs_with_a_model_can_be_tested():
    lineup = lineup_of(run_meta("tested"), run_meta("no model"), run_meta("broken", RunStatus.DAMAGED,
                                                                          problem="run.json is not JSON"),
                       model_ids=["id-tested", "id-broken"], references=reference.load_references())
    assert lineup.testable == ["id-tested"]
    assert [entry.label for entry in lineup.damaged] == ["broken"]
    assert {entry.kind for entry in lineup.runs} == {comparison.RUN} and len(lineup.runs) == 3
    assert len(lineup.notebook) == 3 and all(entry.kind == comparison.NOTEBOOK for entry in lineup.notebook)
    assert lineup.run_keys(["notebook:seed-3layer", "id-broken", "id-tested"]) == ["id-broken", "id-tested"]


def test_the_run_in_depth_opens_on_the_first_overlaid_run_that_can_be_tested():
    lineup = lineup_of(run_meta("a"), run_meta("b"), run_meta("c"), model_ids=["id-a", "id-c"])
    assert lineup.first_testable(["notebook:seed-3layer", "id-b", "id-c", "id-a"]) == lineup.testable.index("id-c")
    assert lineup.first_testable(["id-b"]) == 0


def test_the_overlay_keeps_the_learners_choice_but_not_deleted_runs():
    lineup = lineup_of(run_meta("kept"), run_meta("other"), references=reference.load_references())
    assert lineup.overlay(["gone", "id-kept"], preferred=["id-other"], pinned=[]) == ["id-kept"]
    assert lineup.overlay([], preferred=["id-other"], pinned=[]) == []  # the learner cleared the overlay
    first_visit = lineup.overlay(None, preferred=["id-other"], pinned=["id-kept"])
    assert first_visit[0] == "id-other" and "id-kept" not in first_visit


def test_without_the_notebooks_results_the_runs_stay_and_the_page_says_why(monkeypatch):
    store = RunStore()
    store.create("mine", {"name": "seed-3layer", "layers": preset_layers("seed-3layer")}, {"epochs": 1})

    def unreadable():
        raise reference.ReferenceResultsError("The notebook's results cannot be read: *broken*.")

    monkeypatch.setattr(reference, "load_references", unreadable)
    lineup, problem = view.Lineup.from_store(store)
    assert [entry.label for entry in lineup.entries] == ["mine"]
    assert problem == "The notebook's results cannot be read\\: \\*broken\\*."


def test_the_table_shades_the_notebook_rows_and_writes_missing_numbers_as_a_dash():
    lineup = lineup_of(run_meta("unscored"), references=reference.load_references())
    styled = view.styled_table(comparison.runs_table(lineup.entries))
    shaded_rows = set()
    for selectors, declarations in re.findall(r"([^{}]+)\{([^}]*)\}", styled.to_html()):
        if "#fff6db" in declarations:
            shaded_rows |= {int(row) for row in re.findall(r"_row(\d+)_", selectors)}
    assert shaded_rows == {1, 2, 3}  # the three notebook rows, after the run
    text = styled.to_string()
    run_line = next(line for line in text.splitlines() if "unscored" in line)
    assert comparison.MISSING in run_line and "None" not in run_line and "nan" not in run_line.lower()
    assert "30,706" in text and "98.60" in text  # the notebook's 3-layer net: thousands, two decimals


def test_the_table_is_as_high_as_its_rows_up_to_a_limit():
    heights = [view.table_height(rows) for rows in range(0, 40)]
    assert heights[0] == heights[1] and heights == sorted(heights)
    assert heights[-1] == view.MAX_TABLE_PIXELS and heights[2] < view.MAX_TABLE_PIXELS


def test_the_damaged_warning_names_each_run_as_typed():
    lineup = lineup_of(run_meta("[a](x)", RunStatus.DAMAGED, problem="bad *json*"))
    warning = view.damaged_warning(lineup.damaged)
    assert warning.startswith("1 run is damaged: “\\[a\\]\\(x\\)” (bad \\*json\\*)")
    two = lineup_of(run_meta("a", RunStatus.DAMAGED), run_meta("b", RunStatus.DAMAGED))
    assert view.damaged_warning(two.damaged).startswith("2 runs are damaged: ")


@pytest.mark.parametrize("error, words", [
    (ModelUnavailable("The model file is damaged: train it again."), "The model file is damaged\\: train it again."),
    (DataError("MNIST is not there.", "no file at data/mnist.npz"), "MNIST is not there."),
    (FileNotFoundError(2, "No such file"), "The model file of “a\\_b” is gone (the run was deleted)."),
    (PermissionError(13, "Permission denied"), "The model file of “a\\_b” cannot be read (Permission denied)."),
    (OSError(), "The model file of “a\\_b” cannot be read (OSError)."),
])
def test_a_model_that_cannot_be_tested_is_explained(error, words):
    assert view.model_problem(error, "a_b") == words


def scores_of(predictions, labels, confidence=None) -> evaluation.Evaluation:
    """An Evaluation whose answers are `predictions`, each given `confidence` (default 0.9)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    confidence = np.full(len(labels), 0.9) if confidence is None else np.asarray(confidence)
    probabilities = np.tile(((1 - confidence) / 9)[:, None], (1, 10))
    probabilities[np.arange(len(labels)), predictions] = confidence
    return evaluation.Evaluation(probabilities, labels)


def test_the_in_depth_metrics_name_the_hardest_digit():
    labels = np.repeat(np.arange(10), 10)
    predictions = labels.copy()
    predictions[np.flatnonzero(labels == 7)[:3]] = 1  # 7 is wrong three times in ten
    predictions[np.flatnonzero(labels == 2)[:1]] = 3
    scores = scores_of(predictions, labels)
    metrics = dict(view.depth_metrics(scores, evaluation.per_digit_accuracy(labels, predictions)))
    assert metrics == {"Test accuracy": "96.00 %", "Mistakes": "4 of 100", "Hardest digit": "7  (70.00 %)"}
    nothing = scores_of(np.zeros(0, int), np.zeros(0, int))
    empty = evaluation.per_digit_accuracy(np.zeros(0, int), np.zeros(0, int))
    assert [name for name, _ in view.depth_metrics(nothing, empty)] == ["Test accuracy", "Mistakes"]


def test_the_gallery_filters_read_any_as_no_filter():
    assert view.DIGIT_CHOICES[0] == view.ANY_DIGIT and view.DIGIT_CHOICES[1:] == list(range(10))
    assert view.digit_filter(view.ANY_DIGIT) is None and view.digit_filter(0) == 0 and view.digit_filter(9) == 9


def test_head_to_head_shows_each_runs_wins_as_the_others_surest_mistakes_first():
    labels = np.array([1, 2, 3, 4, 5, 6])
    first = scores_of([1, 2, 0, 0, 5, 0], labels, confidence=[0.9, 0.9, 0.6, 0.95, 0.9, 0.5])
    second = scores_of([0, 0, 3, 4, 5, 0], labels, confidence=[0.7, 0.99, 0.9, 0.9, 0.9, 0.8])
    split = evaluation.disagreement(labels, first.predictions, second.predictions)
    counts = dict(view.head_to_head_counts(split, "one", "two"))
    assert counts == {"Only “one” right": "2", "Only “two” right": "2", "Both wrong": "1", "Both right": "1"}
    images = np.stack([np.full((28, 28), 40 * index, np.uint8) for index in range(len(labels))])
    (first_heading, first_grid), (second_heading, second_grid) = view.one_right_only(
        split, ("one", first), ("two", second), images)
    assert first_heading.startswith("**“one” right, “two” wrong.**") and "the answer of “two”" in first_heading
    assert second_heading.startswith("**“two” right, “one” wrong.**")
    expected = evaluation.mistakes_grid(images, labels, second.predictions, second.confidence, [1, 0])  # 0.99, 0.7
    assert np.array_equal(np.asarray(first_grid), np.asarray(expected))
    expected = evaluation.mistakes_grid(images, labels, first.predictions, first.confidence, [3, 2])  # 0.95, 0.6
    assert np.array_equal(np.asarray(second_grid), np.asarray(expected))
    agreed = evaluation.disagreement(labels, first.predictions, first.predictions)
    assert [grid for _, grid in view.one_right_only(agreed, ("one", first), ("one", first), images)] == [None, None]


def test_only_a_run_still_training_says_whose_model_it_shows():
    running, done = lineup_of(run_meta("r", RunStatus.RUNNING, epochs_done=2), run_meta("d")).runs
    assert "after epoch 2" in view.still_training(running)
    assert view.still_training(done) is None


def test_a_run_offers_its_four_files_and_says_why_one_is_missing():
    store = RunStore()
    meta = store.create("my net", {"name": "custom", "layers": "not a list"}, {"epochs": 1})
    store.append_epoch(meta["id"], ONE_EPOCH[0])
    downloads = view.downloads(store, store.get(meta["id"]))
    assert [download.label for download in downloads] == [
        "Model (.keras)", "History (CSV)", "Architecture (JSON)", "Keras script (.py)"]
    model, history, architecture, script = downloads
    assert model.missing == "This run has no saved model." and model.data == b""
    assert history.file_name == f"my-net-{meta['id']}-history.csv" and not history.problem
    assert pd.read_csv(io.StringIO(history.data))["val_accuracy"].tolist() == [0.91]
    assert architecture.problem and not architecture.data  # no layer list: a reason instead of a button
    assert script.problem.startswith("No Keras script: ")
    assert len({download.key for download in downloads}) == 4


def test_only_the_owner_or_the_teacher_may_delete_and_the_owner_is_named_as_typed():
    assert view.delete_refusal({"owner_name": "*Ada*"}) == "Only \\*Ada\\* or the teacher can delete this run."
    assert view.delete_refusal({}) == "Only whoever trained it or the teacher can delete this run."


def test_a_click_on_the_matrix_sets_both_filters_and_a_filter_changed_by_hand_redraws_it():
    from types import SimpleNamespace

    state = {}
    clicks = view.MatrixClicks(state)
    key = clicks.chart_key("run")
    state[key] = SimpleNamespace(selection={evaluation.CELL_SELECTION: [{"true_digit": 4, "predicted_digit": 9}]})
    clicks.pick(key)
    assert (state["compare_gallery_true"], state["compare_gallery_predicted"]) == (4, 9)
    state[key] = SimpleNamespace(selection={})
    clicks.pick(key)  # a click that leaves no cell chosen keeps the filters
    assert state["compare_gallery_true"] == 4
    clicks.forget()
    assert clicks.chart_key("run") != key


def test_the_gallery_explains_the_diagonal_and_an_empty_filter_and_otherwise_shows_digits():
    matrix = np.diag([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert view.gallery_notice(3, 3, matrix, 0) == view.diagonal_notice(3, matrix)
    assert view.gallery_notice(3, 5, matrix, 0) == "No mistakes of that kind."
    assert view.gallery_notice(None, None, matrix, 12) is None
    assert view.table_caption(3, 6).startswith("3 of 6 rows.")
