"""The projector's charts and tables, from a store of crafted experiment runs: curves by value, one dot per
finished run beside its value's median and spread, counts per value, and the CSV and PNG downloads."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from PIL import Image

from mnist_lab import experiments
from mnist_lab.views import projector as view


def layer_data(chart, index: int) -> pd.DataFrame:
    return chart.layer[index].data


def test_curves_hold_each_runs_training_line_and_validation_dots_coloured_by_value(class_runs):
    class_experiments, experiment = class_runs
    frame = view.curve_frame(experiment, class_experiments.runs_of(experiment), class_experiments.stores_of(experiment))
    training = frame[frame["measured"] == view.TRAINING]
    validation = frame[frame["measured"] == view.VALIDATION]
    assert len(training) == 3 * 2  # three runs started, each with two readable points (a null is left out)
    assert sorted(validation["accuracy"].round(1)) == [90.0, 90.0, 95.0, 97.0]
    assert set(frame["value"]) == set(experiment["labels"][:2])  # the waiting run has no curve yet
    spec = view.curves_chart(frame, experiment).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == experiment["labels"]


def test_each_finished_run_is_one_dot_and_each_value_its_median_and_spread(class_runs):
    class_experiments, experiment = class_runs
    runs = class_experiments.runs_of(experiment)
    table = view.result_frame(experiment, runs, show_names=False)
    chart = view.results_chart(table, experiments.summarize(experiment, runs), experiment)
    spread, dots, median = (layer_data(chart, index) for index in range(3))
    assert sorted(dots["accuracy"].round(1)) == [95.0, 97.0]
    assert median.to_dict("records") == [{"value": experiment["labels"][0], "median": pytest.approx(96.0),
                                          "low": pytest.approx(95.0), "high": pytest.approx(97.0)}]
    assert spread is median  # one summary feeds both
    axis = chart.to_dict()["layer"][1]["encoding"]["x"]
    assert axis["title"] == "batch size"  # named once; each value shows only its number
    assert axis["axis"]["labelExpr"] == "replace(datum.label, 'batch size ', '')"


def test_names_stay_hidden_until_the_teacher_shows_them(class_runs):
    class_experiments, experiment = class_runs
    runs = class_experiments.runs_of(experiment)
    hidden = view.csv_bytes(view.result_frame(experiment, runs, show_names=False)).decode()
    shown = view.csv_bytes(view.result_frame(experiment, runs, show_names=True)).decode()
    assert "Ada" not in hidden and "learner 1" in hidden
    assert "Ada" in shown
    assert hidden.splitlines()[0] == "experiment,value,learner,run,status,test_accuracy,epochs_done"
    assert len(hidden.splitlines()) == 1 + 4


def test_the_counts_per_value_say_done_training_and_waiting(class_runs):
    class_experiments, experiment = class_runs
    summaries = experiments.summarize(experiment, class_experiments.runs_of(experiment))
    table = view.status_table(summaries)
    assert table.to_dict("records") == [
        {"value": experiment["labels"][0], "done": 2, "training": 0, "waiting": 0},
        {"value": experiment["labels"][1], "done": 0, "training": 1, "waiting": 0},
        {"value": experiment["labels"][2], "done": 0, "training": 0, "waiting": 1}]


def test_the_chart_downloads_as_a_png_image(class_runs):
    class_experiments, experiment = class_runs
    runs = class_experiments.runs_of(experiment)
    chart = view.results_chart(view.result_frame(experiment, runs, False), experiments.summarize(experiment, runs),
                               experiment)
    picture = Image.open(io.BytesIO(view.png_bytes(chart)))
    assert picture.format == "PNG" and picture.width > 400


def test_an_experiment_is_labelled_by_its_question_values_and_state(class_runs):
    _, experiment = class_runs
    assert view.experiment_label(experiment).startswith("Does batch size matter? (batch size 16, batch size 32")
    assert view.experiment_label(experiment).endswith("open now")
    closed = {**experiment, "status": "closed", "archive": "/somewhere"}
    assert view.experiment_label(closed).endswith(f"{experiment['created'][:10]} · archived")
