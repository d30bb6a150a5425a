"""Evaluation: predictions cached per model file, confusion matrix, per-digit accuracy, mistakes, two runs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from helpers import stored_run, train_model
from mnist_lab.evaluation import evaluation
from mnist_lab.data import load_npz, to_model_input
from mnist_lab.runs import ModelUnavailable, RunStore


@pytest.fixture
def synthetic(synthetic_npz):
    return load_npz(str(synthetic_npz))


@pytest.fixture
def store():
    return RunStore()


@pytest.fixture(scope="module")
def small_model():
    """One tiny trained net shared by this module's tests (training is the slow part)."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=300).astype(np.uint8)
    model, _ = train_model(x, y, epochs=1, layers=[{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3]},
                                                     {"type": "MaxPooling2D", "pool_size": [4, 4]},
                                                     {"type": "Flatten"}])
    return model


def save_model_run(store, model, name="small"):
    meta = stored_run(store, name, [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1,
                                     "val_accuracy": 0.4, "seconds": 1.0}])
    model.save(store.model_path(meta["id"]))
    return meta["id"]


# ---- Confusion matrix, per digit, mistakes ------------------------------------------------------

def independent_confusion(labels, predictions):
    matrix = np.zeros((10, 10), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def test_confusion_matrix_matches_an_independent_count():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 5000)
    predictions = np.where(rng.random(5000) < 0.8, labels, rng.integers(0, 10, 5000))
    matrix = evaluation.confusion_matrix(labels, predictions)
    assert np.array_equal(matrix, independent_confusion(labels, predictions))
    assert matrix.sum() == 5000 and np.trace(matrix) == np.sum(labels == predictions)


def test_confusion_matrix_of_a_known_model_on_known_data(store, synthetic, small_model):
    run_id = save_model_run(store, small_model)
    result = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    expected_predictions = small_model.predict(to_model_input(synthetic.x_test), verbose=0).argmax(axis=1)
    matrix = evaluation.confusion_matrix(result.labels, result.predictions)
    assert np.array_equal(matrix, independent_confusion(synthetic.y_test, expected_predictions))
    assert result.accuracy == pytest.approx(np.mean(expected_predictions == synthetic.y_test))


def test_confusion_matrix_rejects_mismatched_or_out_of_range_input():
    with pytest.raises(ValueError, match="labels but"):
        evaluation.confusion_matrix([1, 2], [1])
    with pytest.raises(ValueError, match="digits from 0 to 9"):
        evaluation.confusion_matrix([1, 10], [1, 2])


def test_confusion_table_colours_only_mistakes():
    matrix = independent_confusion(np.array([4, 4, 4, 9, 1]), np.array([4, 9, 9, 9, 1]))
    table = evaluation.confusion_table(matrix).set_index(["true_digit", "predicted_digit"])
    assert table.loc[(4, 9), "mistakes"] == 2 and table.loc[(4, 9), "count"] == 2
    assert table.loc[(4, 4), "mistakes"] == 0 and table.loc[(4, 4), "count"] == 1
    assert table.loc[(4, 9), "share"] == pytest.approx(200 / 3)
    assert table.loc[(0, 0), "share"] == 0  # no images of 0: no division by zero
    assert len(table) == 100 and table["count"].sum() == 5


def test_per_digit_accuracy():
    labels = np.array([0, 0, 0, 0, 7, 7])
    predictions = np.array([0, 0, 0, 6, 7, 1])
    table = evaluation.per_digit_accuracy(labels, predictions).set_index("digit")
    assert table.loc[0, "accuracy"] == pytest.approx(75.0)
    assert table.loc[7, "accuracy"] == pytest.approx(50.0)
    assert table.loc[0, "images"] == 4 and table.loc[7, "correct"] == 1
    assert np.isnan(table.loc[3, "accuracy"])


def test_misclassified_filters_by_cell_and_puts_the_surest_mistakes_first():
    labels = np.array([4, 4, 4, 4, 9, 2, 4])
    predictions = np.array([9, 4, 9, 7, 4, 2, 9])
    confidence = np.array([0.6, 0.99, 0.95, 0.7, 0.8, 0.9, 0.3])
    assert list(evaluation.misclassified(labels, predictions, confidence)) == [2, 4, 3, 0, 6]
    assert list(evaluation.misclassified(labels, predictions, confidence, true_digit=4, predicted_digit=9)) == [2, 0, 6]
    assert list(evaluation.misclassified(labels, predictions, confidence, true_digit=4)) == [2, 3, 0, 6]
    assert list(evaluation.misclassified(labels, predictions, confidence, predicted_digit=4)) == [4]
    assert len(evaluation.misclassified(labels, predictions, confidence, true_digit=2, predicted_digit=2)) == 0


def test_disagreement_counts_both_ways():
    labels = np.array([1, 2, 3, 4, 5, 6])
    first = np.array([1, 2, 0, 0, 5, 0])
    second = np.array([1, 0, 3, 0, 0, 0])
    split = evaluation.disagreement(labels, first, second)
    assert list(split.only_first_right) == [1, 4]
    assert list(split.only_second_right) == [2]
    assert list(split.both_wrong) == [3, 5]
    assert split.both_right_count == 1
    with pytest.raises(ValueError, match="same images"):
        evaluation.disagreement(labels, first, second[:3])


def test_mistakes_grid_captions_and_limit():
    images = np.zeros((50, 28, 28), np.uint8)
    labels, predictions = np.full(50, 4), np.full(50, 9)
    confidence = np.full(50, 0.97)
    grid = evaluation.mistakes_grid(images, labels, predictions, confidence, np.arange(50), limit=20, columns=10)
    assert grid.size[0] > grid.size[1] and grid.size[1] < 2 * grid.size[0] / 5  # two rows of ten tiles
    assert evaluation.mistakes_grid(images, labels, predictions, confidence, np.array([], int)) is None
    assert evaluation.mistake_caption(4, 9, 0.971) == "4 as 9, 97%"


def test_confusion_chart_selects_cells_by_true_and_predicted_digit():
    spec = evaluation.confusion_chart(np.eye(10, dtype=int) * 5).to_dict()
    params = spec.get("params", []) + [param for layer in spec["layer"] for param in layer.get("params", [])]
    assert [param["name"] for param in params] == [evaluation.CELL_SELECTION]
    assert params[0]["select"]["fields"] == ["true_digit", "predicted_digit"]


# ---- Evaluating a run, with its cache on disk ------------------------------------------------

def test_evaluation_is_cached_per_model_file(store, synthetic, small_model, monkeypatch):
    run_id = save_model_run(store, small_model)
    first = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    assert evaluation.cache_path(store, run_id).is_file()

    def refuse(run_id):
        raise AssertionError("the model was loaded although the cache is current")

    monkeypatch.setattr(store, "load_model", refuse)
    again = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    assert np.array_equal(again.probabilities, first.probabilities)

    stat = store.model_path(run_id).stat()
    os.utime(store.model_path(run_id), ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert evaluation.cached_evaluation(store, run_id, synthetic.x_test, synthetic.y_test) is None
    with pytest.raises(AssertionError, match="was loaded"):
        evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)


def test_cache_made_on_other_data_is_not_reused(store, synthetic, small_model):
    run_id = save_model_run(store, small_model)
    evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    other = synthetic.x_test.copy()
    other[0, 0, 0] ^= 1
    assert evaluation.cached_evaluation(store, run_id, other, synthetic.y_test) is None
    assert evaluation.cached_evaluation(store, run_id, synthetic.x_test, synthetic.y_test) is not None


def test_damaged_cache_is_recomputed(store, synthetic, small_model):
    run_id = save_model_run(store, small_model)
    first = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    evaluation.cache_path(store, run_id).write_bytes(b"not an npz")
    again = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    assert np.allclose(again.probabilities, first.probabilities, atol=1e-6)
    assert evaluation.cached_evaluation(store, run_id, synthetic.x_test, synthetic.y_test) is not None


def test_batched_prediction_equals_one_image_at_a_time(small_model, synthetic):
    batched = evaluation.predict_probabilities(small_model, synthetic.x_test[:20], batch_size=7)
    single = np.concatenate([small_model(to_model_input(image), training=False) for image in synthetic.x_test[:20]])
    assert batched.shape == (20, 10) and batched.dtype == np.float32
    assert np.allclose(batched, single, atol=1e-5)
    assert evaluation.predict_probabilities(small_model, synthetic.x_test[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match="at least 1"):
        evaluation.predict_probabilities(small_model, synthetic.x_test, batch_size=0)


def test_missing_or_unreadable_model_gives_a_readable_error(store, synthetic):
    meta = stored_run(store, "stopped early", status="stopped")
    with pytest.raises(ModelUnavailable, match="no saved model"):
        evaluation.evaluate_run(store, meta["id"], synthetic.x_test, synthetic.y_test)
    store.model_path(meta["id"]).write_bytes(b"garbage")
    with pytest.raises(ModelUnavailable, match="cannot be read"):
        evaluation.evaluate_run(store, meta["id"], synthetic.x_test, synthetic.y_test)


def test_per_digit_chart_says_where_its_axis_starts():
    good = pd.DataFrame({"digit": range(10), "images": [100] * 10, "correct": [97] * 10,
                         "accuracy": [97.4] + [99.0] * 9})
    spec = evaluation.per_digit_chart(good).to_dict()
    x = spec["layer"][0]["encoding"]["x"]
    assert x["scale"]["domain"] == [96.0, 100] and "starts at 96 %, not 0" in x["title"]
    assert spec["layer"][1]["encoding"]["text"]["field"] == "accuracy"  # each bar shows its value
    poor = good.assign(accuracy=[30.0] + [99.0] * 9)
    assert evaluation.per_digit_chart(poor).to_dict()["layer"][0]["encoding"]["x"]["title"] == "accuracy %"


def test_class_set_scores_are_kept_apart_from_the_test_sets_and_computed_only_when_asked(store, synthetic,
                                                                                       small_model):
    run_id = save_model_run(store, small_model)
    no_model = stored_run(store, "no model", status="stopped")["id"]
    evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    images, labels = synthetic.x_test[:30], synthetic.y_test[:30]
    assert evaluation.class_set_scores(store, [run_id, no_model], images, labels) == {}
    scores = evaluation.class_set_scores(store, [run_id, no_model], images, labels, compute=True)
    expected = np.mean(small_model.predict(to_model_input(images), verbose=0).argmax(axis=1) == labels)
    assert list(scores) == [run_id] and scores[run_id] == pytest.approx(expected)
    assert evaluation.class_set_scores(store, [run_id], images, labels) == scores  # now from its cache
    assert evaluation.cached_evaluation(store, run_id, synthetic.x_test, synthetic.y_test) is not None
