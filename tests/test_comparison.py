"""The comparison table, the curve data behind the overlay chart, the observations and the exports."""

import dataclasses
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from helpers import stored_run
from mnist_lab import comparison, reference
from mnist_lab.architecture.json_format import from_json
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.runs import RunStore


def epochs(losses, val_losses, accuracies=None, val_accuracies=None, seconds=2.0):
    """History rows from parallel lists (None = unreadable)."""
    count = len(losses)
    accuracies = accuracies or [0.9] * count
    val_accuracies = val_accuracies or [0.9] * count
    return [{"epoch": n + 1, "loss": losses[n], "accuracy": accuracies[n], "val_loss": val_losses[n],
             "val_accuracy": val_accuracies[n], "seconds": seconds} for n in range(count)]


@pytest.fixture
def store():
    return RunStore()


def entries_of(store, references=()):
    return comparison.entries_from_store(store, references=list(references))


# ---- The table -----------------------------------------------------------------------------

def test_table_lists_stored_runs_and_the_notebook_rows(store):
    history = epochs([0.5, 0.2], [0.3, 0.25], val_accuracies=[0.95, 0.97], seconds=3.0)
    first = stored_run(store, "first", history, test_accuracy=0.968, settings={"augment": True, "train_size": 12000})
    second = stored_run(store, "second", epochs([0.4], [0.3]), status="running", settings={"epochs": 12})
    table = comparison.runs_table(comparison.entries_from_store(store))
    assert list(table.columns) == list(comparison.TABLE_COLUMNS)
    assert set(table.index) == {first["id"], second["id"], "notebook:seed-3layer", "notebook:seed-5layer",
                                "notebook:seed-7layer"}
    row = table.loc[first["id"]]
    assert row["name"] == "first" and row["source"] == "run" and row["architecture"] == "seed-3layer"
    assert row["parameters"] == 30706 and row["epochs"] == 2 and row["training images"] == 12000
    assert row["augmentation"] == "on" and row["s / epoch"] == 3.0 and row["device"] == "CPU only (2 cores)"
    assert row["best val. accuracy %"] == pytest.approx(97.0) and row["test accuracy %"] == pytest.approx(96.8)
    assert table.loc[second["id"], "notes"] == "training: 1 of 12 epochs done"
    assert pd.isna(table.loc[second["id"], "test accuracy %"])
    notebook = table.loc["notebook:seed-5layer"]
    assert notebook["source"] == "notebook" and notebook["status"] == "published"
    assert notebook["test accuracy %"] == pytest.approx(99.32) and notebook["parameters"] == 759390
    assert list(table.index[:2]) == [second["id"], first["id"]]  # newest run first, then the notebook


def test_broken_runs_keep_their_row_with_a_clear_note(store):
    stopped = stored_run(store, "stopped early", status="stopped", message="Stopped before the first epoch ended.")
    missing = stored_run(store, "lost model", epochs([0.5], [0.4]))
    failed = store.create("bare", {}, {})  # a run.json with almost nothing in it
    store.update(failed["id"], status="failed", message="Out of memory.")
    table = comparison.runs_table(entries_of(store))
    assert "no finished epoch" in table.loc[stopped["id"], "notes"]
    assert "Stopped before" in table.loc[stopped["id"], "notes"]
    assert table.loc[missing["id"], "notes"] == "no saved model file"
    assert table.loc[failed["id"], "status"] == "failed" and "Out of memory" in table.loc[failed["id"], "notes"]
    assert table.loc[failed["id"], "architecture"] == "custom" and pd.isna(table.loc[failed["id"], "parameters"])


def test_runs_with_the_same_name_stay_apart(store):
    first = stored_run(store, "same", epochs([0.5], [0.4]))
    second = stored_run(store, "same", epochs([0.6], [0.5]))
    labels = {entry.key: entry.label for entry in entries_of(store)}
    assert labels[first["id"]] != labels[second["id"]]
    assert labels[first["id"]] == f"same ({first['id']})"


def test_table_filters_by_architecture_status_name_and_source(store):
    for number in range(30):
        stored_run(store, f"run {number}", epochs([0.5], [0.4]), status="completed" if number % 3 else "failed",
                   architecture="seed-3layer" if number % 2 else "mine")
    table = comparison.runs_table(comparison.entries_from_store(store))
    assert len(table) == 33
    mine = comparison.filter_table(table, architectures=["mine"])
    assert len(mine) == 15 and set(mine["architecture"]) == {"mine"}
    failed_mine = comparison.filter_table(table, architectures=["mine"], statuses=["failed"])
    assert len(failed_mine) == 5
    assert list(comparison.filter_table(table, text="RUN 2")["name"]) == ["run 29", "run 28", "run 27", "run 26",
                                                                         "run 25", "run 24", "run 23", "run 22",
                                                                         "run 21", "run 20", "run 2"]
    assert len(comparison.filter_table(table, include_notebook=False)) == 30
    assert len(comparison.filter_table(table, statuses=["published"])) == 3


def test_median_seconds_per_epoch_ignores_a_slow_first_epoch(store):
    history = epochs([0.5, 0.4, 0.3], [0.5, 0.4, 0.3])
    for row, seconds in zip(history, [30.0, 4.0, 5.0]):
        row["seconds"] = seconds
    run = stored_run(store, "timed", history)
    entry = next(entry for entry in entries_of(store) if entry.key == run["id"])
    assert entry.seconds_per_epoch == 5.0


# ---- Curves --------------------------------------------------------------------------------

def test_curves_are_long_format_with_accuracy_in_percent(store):
    run = stored_run(store, "mine", epochs([0.5, 0.3], [0.4, 0.35], [0.8, 0.9], [0.85, 0.88]))
    data = comparison.curves(entries_of(store))
    assert len(data) == 8
    value = data.set_index(["key", "metric", "split", "epoch"])["value"]
    assert value[(run["id"], "loss", "training", 2)] == pytest.approx(0.3)
    assert value[(run["id"], "loss", "validation", 1)] == pytest.approx(0.4)
    assert value[(run["id"], "accuracy", "validation", 2)] == pytest.approx(88.0)
    assert set(data["run"]) == {"mine"}


def test_null_points_are_gaps_never_zeros():
    three = comparison.reference_entry(reference.reference("seed-3layer"))
    data = comparison.curves([three])
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
    data = comparison.curves(entries)
    spec = comparison.curve_chart(data, "loss", [entry.label for entry in entries]).to_dict()
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
    assert comparison.default_overlay(entries) == [custom["id"], older["id"], "notebook:seed-3layer"]
    assert comparison.default_overlay(entries, preferred=[custom["id"], "gone"]) == [custom["id"],
                                                                                    "notebook:seed-3layer"]
    five = stored_run(store, "five", epochs([0.5], [0.4]), architecture="seed-5layer")
    entries = comparison.entries_from_store(store)
    assert comparison.default_overlay(entries, preferred=[five["id"]]) == [five["id"], "notebook:seed-5layer"]


def test_default_overlay_without_runs_shows_the_notebook():
    entries = comparison.build_entries([], {})
    assert comparison.default_overlay(entries) == ["notebook:seed-3layer", "notebook:seed-5layer",
                                                   "notebook:seed-7layer"]


# ---- Observations -------------------------------------------------------------------------------

def test_overfitting_is_training_loss_falling_while_validation_loss_rises():
    found = comparison.overfitting(epochs([0.5, 0.3, 0.2, 0.1, 0.05], [0.40, 0.30, 0.36, 0.40, 0.45]))
    assert found == {"best_epoch": 2, "best_val_loss": 0.30, "last_epoch": 5, "last_val_loss": 0.45,
                     "loss_at_best": 0.3, "last_loss": 0.05}
    # Still improving: no overfitting.
    assert comparison.overfitting(epochs([0.5, 0.3, 0.2], [0.4, 0.3, 0.25])) is None
    # One noisy epoch at the end is not enough.
    assert comparison.overfitting(epochs([0.5, 0.3, 0.2, 0.1], [0.4, 0.3, 0.29, 0.5])) is None
    # Both losses rising: training has gone wrong, it is not overfitting.
    assert comparison.overfitting(epochs([0.3, 0.2, 0.4, 0.6], [0.4, 0.3, 0.5, 0.6])) is None
    # Unreadable values are skipped, not treated as zeros.
    assert comparison.overfitting(epochs([0.5, None, 0.2, 0.1, 0.05], [0.4, 0.3, None, 0.4, 0.45]))["best_epoch"] == 2


def test_observations_name_the_most_accurate_the_fastest_and_the_overfitting_run(store):
    stored_run(store, "steady", epochs([0.5, 0.3, 0.2, 0.15], [0.4, 0.3, 0.25, 0.22], seconds=8.0),
               test_accuracy=0.985)
    stored_run(store, "memoriser", epochs([0.5, 0.3, 0.1, 0.05], [0.40, 0.30, 0.38, 0.45], seconds=2.0),
               test_accuracy=0.97, architecture="mine")
    text = "\n".join(comparison.observations(entries_of(store)))
    assert "**Most accurate:** “steady”, 98.50 %" in text
    assert "1.50 points ahead of “memoriser” (97.00 %)" in text
    assert ("**Fastest:** “memoriser”, 3.33 s per 1,000 training images (2.0 s per epoch of 600); “steady” takes "
            "4.0x as long (13.33 s per 1,000 training images (8.0 s per epoch of 600))") in text
    assert "**“memoriser” overfits:** its validation loss was lowest at epoch 2 (0.3000) and rose to 0.4500 " \
           "by epoch 4" in text
    assert "“steady” overfits" not in text and "No clear overfitting" not in text
    assert "What accuracy costs" not in text  # the more accurate net is not the bigger one


def test_a_tiny_accuracy_gap_is_called_noise(store):
    stored_run(store, "a", epochs([0.5], [0.4]), test_accuracy=0.9861)
    stored_run(store, "b", epochs([0.5], [0.4]), test_accuracy=0.9855)
    text = " ".join(comparison.observations(entries_of(store)))
    assert "0.06 points ahead" in text and "random start alone" in text


def test_observations_say_whether_a_run_tracks_the_notebook(store):
    notebook = comparison.reference_entry(reference.reference("seed-3layer"))
    close = stored_run(store, "close", epochs([0.4, 0.12, 0.09], [0.12, 0.08, 0.07],
                                              val_accuracies=[0.962, 0.975, 0.980]), settings={"train_size": 60000})
    small = stored_run(store, "small", epochs([0.9, 0.6], [0.8, 0.5], val_accuracies=[0.80, 0.90]),
                       settings={"train_size": 6000, "batch_size": 128}, architecture="dense",
                       layers=[{"type": "Flatten"}, {"type": "Dense", "units": 10}])
    notebook_dense = dataclasses.replace(notebook, key="notebook:dense", architecture="dense")
    entries = [entry for entry in entries_of(store) if entry.key in (close["id"], small["id"])] + [
        notebook, notebook_dense]
    text = "\n".join(comparison.observations(entries))
    assert "**“close” tracks the notebook:** after epoch 3 it has 98.00 % validation accuracy; the notebook's " \
           "net of the same architecture had 97.92 % (+0.08 points)." in text
    assert "**“small” is behind the notebook:** after epoch 2 it has 90.00 %" in text
    assert "It trains on 6,000 images per epoch, the notebook on 60,000" in text
    assert text.count("images per epoch") == 1  # not said of the run that trained on all of them
    assert "BatchNormalization" not in text  # neither of these short runs has a lagging one


def test_a_short_run_with_batch_normalization_is_explained_by_its_running_averages(store):
    """The quick demo's 37.8 %: 79 batches of the 3-layer net; not blamed on its 10,000 images per epoch."""
    notebook = comparison.reference_entry(reference.reference("seed-3layer"))
    demo = stored_run(store, "quick demo", epochs([0.4], [2.1], val_accuracies=[0.378]), test_accuracy=0.378,
                      settings={"train_size": 10000, "batch_size": 128})
    meta = store.get(demo["id"])
    explanation = comparison.short_run_explanation(meta)
    assert "After only 79 batches" in explanation and "55 % of the way" in explanation
    text = "\n".join(comparison.observations(entries_of(store) + [notebook]))
    assert "**“quick demo” is behind the notebook:**" in text and explanation in text
    assert "images per epoch" not in text
    corrected = dict(meta, test_accuracy=0.93, batch_normalization={
        "batches": 79, "caught_up": 0.5479, "images": 2048, "validation_accuracy_before": 0.378})
    assert "37.8 % on held-out images before (the last validation score), 93.0 % test accuracy after" \
        in comparison.short_run_explanation(corrected)
    stored_before_the_change = dict(corrected, batch_normalization={
        "batches": 79, "caught_up": 0.5479, "images": 2048, "test_accuracy_before": 0.401})
    assert "40.1 % on held-out images before" in comparison.short_run_explanation(stored_before_the_change)
    long_run = dict(meta, epochs_done=12, settings=dict(meta["settings"], train_size=60000))
    assert comparison.short_run_explanation(long_run) is None  # 12 x 469 batches: the averages have caught up
    assert comparison.short_run_explanation(dict(meta, architecture={"layers": [{"type": "Flatten"}]})) is None


def test_notebook_observations_match_its_own_conclusion():
    entries = [comparison.reference_entry(result) for result in reference.load_references()]
    text = "\n".join(comparison.observations(entries))
    assert "**Most accurate:** “Notebook\\: 5 layer CNN, kernel size 5x5”, 99.32 %" in text
    assert ("**Fastest in the notebook:** “Notebook\\: 3 layer CNN, kernel size 3x3”, 1.15 s per 1,000 training "
            "images (69.0 s per epoch of 60,000)") in text
    assert "13.9x as long" in text
    assert "**What accuracy costs:** “Notebook\\: 5 layer CNN, kernel size 5x5” has 24.7x the parameters of " \
           "“Notebook\\: 3 layer CNN, kernel size 3x3” (759,390 against 30,706) for 0.72 more points" in text
    assert "**Fastest:**" not in text  # no runs of this machine to time


def test_observations_without_test_scores_use_validation_accuracy(store):
    stored_run(store, "running", epochs([0.5], [0.4], val_accuracies=[0.91]), status="running")
    text = " ".join(comparison.observations(entries_of(store)))
    assert "**Most accurate so far:** “running”, 91.00 % best validation accuracy" in text


def test_missing_values_are_a_dash_and_identical_runs_have_a_start_time(store):
    first = stored_run(store, "same", epochs([0.5], [0.4]), device=None, settings={"optimizer": None})
    second = stored_run(store, "same", epochs([0.5], [0.4]))
    table = comparison.runs_table(entries_of(store))
    assert table.loc[first["id"], "device"] == "–" and table.loc[first["id"], "optimizer"] == "–"
    started = table.loc[[first["id"], second["id"]], "started"]
    assert all(len(value) == 19 and value[:2] == "20" for value in started)
    assert "None" not in table.astype(str).loc[first["id"], ["device", "optimizer", "started", "notes"]].tolist()


# ---- Exports ---------------------------------------------------------------------------------

def test_history_csv_round_trip(store):
    history = epochs([0.5, None], [0.4, 0.3], [0.8, None], [0.85, 0.9])
    run = stored_run(store, "csv", history)
    read = pd.read_csv(io.StringIO(comparison.history_csv(store.history(run["id"]))))
    assert list(read.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert read["epoch"].tolist() == [1, 2] and read["val_loss"].tolist() == [0.4, 0.3]
    assert math.isnan(read["loss"][1]) and read["loss"][0] == 0.5


def test_architecture_json_imports_back(store):
    run = stored_run(store, "exported", epochs([0.5], [0.4]))
    name, layers = from_json(comparison.architecture_json(store.get(run["id"])))
    assert name == "seed-3layer" and layers == json.loads(json.dumps(preset_layers("seed-3layer")))
    with pytest.raises(ValueError, match="no stored layer list"):
        comparison.architecture_json({"id": "x", "name": "x", "architecture": {}})


def test_export_name_is_safe_for_a_file():
    assert comparison.export_name({"id": "20260101-abc", "name": "my run/../x"}) == "my-run----x-20260101-abc"
    assert comparison.export_name({"id": "20260101-abc", "name": ""}) == "20260101-abc"
    assert np.all([c.isalnum() or c in "-_" for c in comparison.export_name({"id": "i", "name": "a b:c"})])


def test_default_overlay_opens_with_the_pins_else_the_most_accurate_runs(store):
    weak = stored_run(store, "weak", epochs([0.5], [0.4]), test_accuracy=0.378, owner_name="Ada")
    strong = stored_run(store, "strong", epochs([0.5], [0.4]), test_accuracy=0.991, owner_name="Ben")
    stored_run(store, "newest, unscored", epochs([0.5], [0.4]))
    entries = comparison.entries_from_store(store)
    assert comparison.default_overlay(entries, count=2)[:2] == [strong["id"], weak["id"]]
    assert comparison.default_overlay(entries, pinned=[weak["id"], "gone"])[:1] == [weak["id"]]
    table = comparison.runs_table(entries)
    assert table.loc[weak["id"], "learner"] == "Ada" and table.loc["notebook:seed-3layer", "learner"] == "–"
