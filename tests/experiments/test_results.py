"""The sentence of what a class found, on crafted results: it must say only what the data support."""

import pytest

from mnist_lab.experiments import ValueSummary, findings, result_rows, summarize
from mnist_lab.runs import RunStatus

EXPERIMENT = {"id": "20261207-090000-ab12", "labels": ["batch size 32", "batch size 128", "batch size 512"]}


def run(index, status=RunStatus.COMPLETED, accuracy=None, owner="ada", name="Ada", created="1"):
    return {"id": f"run-{index}-{accuracy}-{owner}-{status}", "status": status, "test_accuracy": accuracy,
            "owner": owner, "owner_name": name, "created": created, "epochs_done": 2,
            "experiment": {"id": EXPERIMENT["id"], "index": index, "value": EXPERIMENT["labels"][index]}}


def value(label, *accuracies):
    return ValueSummary(0, label, tuple(sorted(accuracies)))


def test_a_clear_winner_is_named_with_its_median_the_gap_and_the_spread():
    sentence = findings([value("batch 32", 0.970, 0.971, 0.973), value("batch 512", 0.955, 0.957, 0.958)])
    assert sentence == "batch 32: median 97.1 %, 1.4 points above batch 512; spread within a value 0.3 points."


def test_a_difference_within_the_spread_is_called_so_plainly():
    sentence = findings([value("batch 32", 0.960, 0.971, 0.975), value("batch 512", 0.962, 0.969, 0.980)])
    assert sentence.startswith("batch 32: median 97.1 %, 0.2 points above batch 512, but runs of one value "
                               "differ by up to 1.8 points: the difference lies within the spread")
    assert "cannot tell the values apart" in sentence


def test_a_value_with_a_single_run_is_flagged_and_alone_it_proves_nothing():
    mixed = findings([value("lr 0.001", 0.980, 0.982), value("lr 0.1", 0.900)])
    assert mixed.startswith("lr 0.001: median 98.1 %, 8.1 points above lr 0.1; spread within a value 0.2 points.")
    assert "lr 0.1 has a single finished run, so how far its runs vary is not known yet." in mixed
    singles = findings([value("lr 0.001", 0.980), value("lr 0.1", 0.900)])
    assert "every value has a single finished run" in singles and "spread within a value" not in singles


def test_a_value_with_no_finished_run_is_named_as_waiting():
    summaries = [value("batch 32", 0.970, 0.972), value("batch 128", 0.960, 0.961), ValueSummary(2, "batch 512")]
    assert findings(summaries).endswith("No finished run yet for batch 512.")
    only = findings([value("batch 32", 0.970, 0.972), ValueSummary(1, "batch 512", training=3)])
    assert only.startswith("Only batch 32 has finished runs so far (median 97.1 % over 2)")
    assert findings([ValueSummary(0, "batch 32", waiting=2)]).startswith("No run has finished yet")


def test_summaries_count_each_value_and_only_completed_runs_count_as_results():
    runs = [run(0, accuracy=0.97), run(0, accuracy=0.95), run(1, RunStatus.RUNNING), run(1, RunStatus.QUEUED),
            run(2, RunStatus.STOPPED, accuracy=0.5), run(2, RunStatus.FAILED),
            {"id": "lone", "status": RunStatus.COMPLETED, "test_accuracy": 0.99}]
    first, second, third = summarize(EXPERIMENT, runs)
    assert (first.done, first.median, first.spread) == (2, pytest.approx(0.96), pytest.approx(0.02))
    assert (second.done, second.training, second.waiting, second.median) == (0, 1, 1, None)
    assert (third.done, third.other) == (0, 2)


def test_rows_hide_learners_names_unless_the_teacher_shows_them():
    runs = [run(0, accuracy=0.97, owner="ada", name="Ada", created="1"),
            run(1, accuracy=0.96, owner="ben", name="Ben", created="2"),
            run(2, RunStatus.RUNNING, owner="ada", name="Ada", created="3")]
    hidden = result_rows(EXPERIMENT, runs, show_names=False)
    assert [row["learner"] for row in hidden] == ["learner 1", "learner 2", "learner 1"]
    assert [row["value"] for row in hidden] == EXPERIMENT["labels"]
    assert [row["test_accuracy"] for row in hidden] == [0.97, 0.96, None]
    assert [row["learner"] for row in result_rows(EXPERIMENT, runs, show_names=True)] == ["Ada", "Ben", "Ada"]
