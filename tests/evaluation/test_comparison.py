"""The comparison table, its entries and a run's downloads."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from helpers import entries_of, epochs, stored_run
from mnist_lab.architecture.json_format import from_json
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.evaluation import comparison
from mnist_lab.runs import RunStore


@pytest.fixture
def store():
    return RunStore()


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
    assert row["class experiment"] == comparison.MISSING
    notebook = table.loc["notebook:seed-5layer"]
    assert notebook["source"] == "notebook" and notebook["status"] == "published"
    assert notebook["test accuracy %"] == pytest.approx(99.32) and notebook["parameters"] == 759390
    assert list(table.index[:2]) == [second["id"], first["id"]]  # newest run first, then the notebook


def test_a_class_experiments_run_carries_its_value_into_the_table(store):
    tagged = stored_run(store, "my part", epochs([0.4], [0.3]), test_accuracy=0.95,
                        experiment={"id": "20261207-090000-ab12", "index": 1, "value": "batch size 128"})
    table = comparison.runs_table(comparison.entries_from_store(store))
    assert table.loc[tagged["id"], "class experiment"] == "batch size 128"
    assert table.loc["notebook:seed-3layer", "class experiment"] == comparison.MISSING


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
