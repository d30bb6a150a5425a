"""The curve data behind the overlay chart, the chart, and which runs it shows at first."""

import pytest

from helpers import entries_of, epochs, stored_run
from mnist_lab.evaluation import comparison, curves, reference
from mnist_lab.runs import RunStore


@pytest.fixture
def store():
    return RunStore()


# ---- Curves --------------------------------------------------------------------------------

def test_curves_are_long_format_with_accuracy_in_percent(store):
    run = stored_run(store, "mine", epochs([0.5, 0.3], [0.4, 0.35], [0.8, 0.9], [0.85, 0.88]))
    data = curves.curves(entries_of(store))
    assert len(data) == 8
    value = data.set_index(["key", "metric", "split", "epoch"])["value"]
    assert value[(run["id"], "loss", "training", 2)] == pytest.approx(0.3)
    assert value[(run["id"], "loss", "validation", 1)] == pytest.approx(0.4)
    assert value[(run["id"], "accuracy", "validation", 2)] == pytest.approx(88.0)
    assert set(data["run"]) == {"mine"}


def test_null_points_are_gaps_never_zeros():
    three = comparison.reference_entry(reference.reference("seed-3layer"))
    data = curves.curves([three])
    training_loss = data[(data["metric"] == "loss") & (data["split"] == "training")]
    assert 10 not in set(training_loss["epoch"])  # the unreadable epoch is left out, not drawn as 0
    assert (data["value"] > 0).all()
    before, after = (training_loss[training_loss["epoch"] == epoch]["segment"].item() for epoch in (9, 11))
    assert before != after  # a new line starts after the gap, so the chart does not bridge it
    validation_loss = data[(data["metric"] == "loss") & (data["split"] == "validation")]
    assert validation_loss["segment"].nunique() == 1 and len(validation_loss) == 12


def test_curve_chart_draws_one_line_per_segment_coloured_by_run(store):
    stored_run(store, "mine", epochs([0.5, 0.3], [0.4, 0.35]))
    entries = entries_of(store, reference.load_references()[:1])
    data = curves.curves(entries)
    spec = curves.curve_chart(data, "loss", [entry.label for entry in entries]).to_dict()
    encoding = spec["encoding"]
    assert encoding["color"]["field"] == "run"
    assert encoding["color"]["scale"]["domain"] == [entry.label for entry in entries]
    assert encoding["detail"]["field"] == "segment" and encoding["strokeDash"]["field"] == "split"
    dataset = next(iter(spec["datasets"].values()))
    assert {row["metric"] for row in dataset} == {"loss"}


def test_default_overlay_is_the_newest_runs_and_their_notebook_nets(store):
    older = stored_run(store, "older", epochs([0.5], [0.4]))
    custom = stored_run(store, "custom", epochs([0.5], [0.4]), architecture="mine")
    stored_run(store, "empty", status="stopped")
    entries = comparison.entries_from_store(store)
    assert curves.default_overlay(entries) == [custom["id"], older["id"], "notebook:seed-3layer"]
    assert curves.default_overlay(entries, preferred=[custom["id"], "gone"]) == [custom["id"],
                                                                                    "notebook:seed-3layer"]
    five = stored_run(store, "five", epochs([0.5], [0.4]), architecture="seed-5layer")
    entries = comparison.entries_from_store(store)
    assert curves.default_overlay(entries, preferred=[five["id"]]) == [five["id"], "notebook:seed-5layer"]


def test_default_overlay_without_runs_shows_the_notebook():
    entries = comparison.build_entries([], {})
    assert curves.default_overlay(entries) == ["notebook:seed-3layer", "notebook:seed-5layer",
                                                   "notebook:seed-7layer"]


def test_default_overlay_opens_with_the_pins_else_the_most_accurate_runs(store):
    weak = stored_run(store, "weak", epochs([0.5], [0.4]), test_accuracy=0.378, owner_name="Ada")
    strong = stored_run(store, "strong", epochs([0.5], [0.4]), test_accuracy=0.991, owner_name="Ben")
    stored_run(store, "newest, unscored", epochs([0.5], [0.4]))
    entries = comparison.entries_from_store(store)
    assert curves.default_overlay(entries, count=2)[:2] == [strong["id"], weak["id"]]
    assert curves.default_overlay(entries, pinned=[weak["id"], "gone"])[:1] == [weak["id"]]
    table = comparison.runs_table(entries)
    assert table.loc[weak["id"], "learner"] == "Ada" and table.loc["notebook:seed-3layer", "learner"] == "–"
