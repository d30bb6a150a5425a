"""The test-only hold at a named phase: a held run is at that point, a stop while held ends it with what it
had, a release lets it complete; unset, nothing holds."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mnist_lab import training
from mnist_lab.runs import RunStore
from mnist_lab.training import phases
from mnist_lab.training.phases import HoldPoint

from helpers import tiny

EPOCHS, BATCH_SIZE = 3, 32


@pytest.fixture
def manager(synthetic_npz, isolated_storage, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    return training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")


def submit(manager, monkeypatch, hold: str | None) -> str:
    if hold is None:
        monkeypatch.delenv(phases.HOLD_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(phases.HOLD_VARIABLE, hold)
    architecture = tiny()
    return manager.submit(architecture, {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "train_size": 500,
                                         "validation_size": 100, "seed": 1})


def wait_held(manager, run_id: str, point: HoldPoint, timeout: float = 120) -> Path:
    """Wait for the run's HELD marker. The training thread writes it; polling for the file is how this
    codebase's tests wait on what another thread or process writes. Between looks the wait is on the run's
    end, so a run that finishes without holding fails at once."""
    marker = phases.held_marker(manager.store.path(run_id), point)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert not manager.wait(run_id, 0.05), f"the run ended without holding at {point}: {manager.store.get(run_id)}"
        assert time.monotonic() < deadline, f"the run did not reach {point} in {timeout} s"
    return marker


def steps_per_epoch() -> int:
    return -(-500 // BATCH_SIZE)


@pytest.mark.parametrize("text, expected", [
    ("batch", (HoldPoint.BATCH, 1)), ("batch:17", (HoldPoint.BATCH, 17)), ("epoch-end:2", (HoldPoint.EPOCH_END, 2)),
    ("loading-data", (HoldPoint.LOADING_DATA, 1)), ("", None), (None, None),
])
def test_a_hold_is_a_point_and_an_optional_count(text, expected):
    assert phases.parse_hold(text) == expected


@pytest.mark.parametrize("text", ["batches", "batch:0", "batch:two", "first batch"])
def test_a_wrong_hold_is_refused_rather_than_ignored(text):
    with pytest.raises(ValueError, match="hold point"):
        phases.parse_hold(text)


def test_the_live_phases_keep_the_words_pages_show():
    assert [phase.value for phase in phases.Phase] == ["queued", "starting", "first batch", "training", "validating",
                                                       "testing", "normalizing", "finished"]


def test_a_run_held_in_its_second_epoch_is_there_and_a_stop_while_held_keeps_the_first(manager, monkeypatch):
    first_of_second = steps_per_epoch() + 1
    run_id = submit(manager, monkeypatch, f"batch:{first_of_second}")
    marker = wait_held(manager, run_id, HoldPoint.BATCH)
    assert marker.read_text().split()[0] == str(first_of_second)
    assert [row["epoch"] for row in manager.store.history(run_id)] == [1]  # epoch 1 saved, epoch 2 not begun
    assert manager.store.get(run_id)["status"] == "running"
    manager.stop(run_id)
    assert manager.wait(run_id, 120)
    meta = manager.store.get(run_id)
    assert meta["status"] == "stopped" and "after epoch 1 is kept" in meta["message"]
    assert meta["epochs_done"] == 1 and meta["test_accuracy"] is not None
    live = manager.store.live(run_id)  # the final live state, as written when the run ended
    assert live["batches_started"] == steps_per_epoch() and live["batches_after_stop"] == 0  # no batch after it
    model = manager.store.load_model(run_id)
    assert model.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 10)


def test_a_stop_while_held_before_an_epoch_is_saved_still_saves_that_epoch(manager, monkeypatch):
    run_id = submit(manager, monkeypatch, "epoch-end:1")
    wait_held(manager, run_id, HoldPoint.EPOCH_END)
    assert manager.store.history(run_id) == [] and not manager.store.has_model(run_id)
    manager.stop(run_id)
    assert manager.wait(run_id, 120)
    meta = manager.store.get(run_id)
    assert meta["status"] == "stopped" and meta["epochs_done"] == 1 and manager.store.has_model(run_id)


def test_a_run_stopped_while_held_at_its_start_ends_stopped_with_nothing(manager, monkeypatch):
    run_id = submit(manager, monkeypatch, "starting")
    wait_held(manager, run_id, HoldPoint.STARTING)
    assert manager.store.get(run_id)["status"] == "running"
    manager.stop(run_id)
    assert manager.wait(run_id, 120)
    meta = manager.store.get(run_id)
    assert meta["status"] == "stopped" and meta["epochs_done"] == 0 and "no model to keep" in meta["message"]
    assert not manager.store.has_model(run_id)


@pytest.mark.parametrize("point", [HoldPoint.LOADING_DATA, HoldPoint.SAVING, HoldPoint.TESTING, HoldPoint.FINISHING])
def test_a_held_run_released_completes(manager, monkeypatch, point):
    run_id = submit(manager, monkeypatch, point.value)
    wait_held(manager, run_id, point)
    assert manager.store.get(run_id)["status"] == "running"
    phases.release_marker(manager.store.path(run_id), point).write_text("")
    assert manager.wait(run_id, 120)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["epochs_done"] == EPOCHS and meta["test_accuracy"] is not None


def test_without_a_hold_nothing_is_held(manager, monkeypatch):
    run_id = submit(manager, monkeypatch, None)
    assert manager.wait(run_id, 120)
    assert manager.store.get(run_id)["status"] == "completed"
    assert not any(phases.held_marker(manager.store.path(run_id), point).exists() for point in HoldPoint)


def test_a_wrong_hold_fails_the_run_instead_of_training_unheld(manager, monkeypatch):
    run_id = submit(manager, monkeypatch, "batchez")
    assert manager.wait(run_id, 120)
    meta = manager.store.get(run_id)
    assert meta["status"] == "failed" and "unknown hold point 'batchez'" in meta["message"]
    assert phases.HOLD_VARIABLE not in meta["message"]
