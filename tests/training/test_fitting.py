"""A run's fit through a manager on one thread: the data split, history epoch by epoch, stop, failure, the
queue's limit, seeds, interrupted runs, refusals, BatchNormalization after a short run, and epoch weights."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_lab import presentation, training
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.architecture.validation import ArchitectureError, normalize_layer
from mnist_lab.runs import RunStore

from helpers import TINY, tiny


RUN_FIELDS = {"id", "name", "status", "message", "created", "started", "finished", "pid", "epochs_done",
              "epoch_seconds", "architecture", "parameters", "multiply_adds", "settings", "device", "backend",
              "versions", "test_loss", "test_accuracy"}


HISTORY_FIELDS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}


@pytest.fixture
def manager(synthetic_data, isolated_storage):
    return training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")


def wait_until(live: training.LiveState, condition, timeout=120):
    """Wait on the run's change notifications (no sleeping) until condition(snapshot) holds."""
    version = -1
    while not condition(live.snapshot()):
        new_version = live.wait_for_change(version, timeout)
        assert new_version != version, "the run made no progress"
        version = new_version
    return live.snapshot()


def test_holdout_split_is_disjoint_and_fixed_by_the_seed():
    settings = training.TrainSettings(train_size=500, validation_size=100, seed=3).resolve(600)
    train, validation = training.split_indices(600, settings)
    assert len(train) == 500 and len(validation) == 100
    assert not set(train) & set(validation)
    again, _ = training.split_indices(600, settings)
    np.testing.assert_array_equal(train, again)
    other, _ = training.split_indices(600, training.TrainSettings(train_size=500, validation_size=100,
                                                                  seed=4).resolve(600))
    assert not np.array_equal(train, other)
    test_settings = training.TrainSettings(validation="test", train_size=600).resolve(600, 200)
    assert training.split_indices(600, test_settings)[1] is None


def test_a_short_run_fills_and_persists_its_history_epoch_by_epoch(manager):
    run_id = manager.submit(tiny(), {"epochs": 3, "batch_size": 32}, name="three epochs")
    live = manager.live_state(run_id)
    wait_until(live, lambda snapshot: snapshot["epochs_done"] >= 1)
    early = manager.store.history(run_id)  # on disk as soon as the epoch ended
    assert manager.wait(run_id, 300)
    store = RunStore(manager.store.root)  # what a restarted server reads
    meta, history = store.get(run_id), store.history(run_id)
    assert early and early == history[:len(early)]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(set(row) == HISTORY_FIELDS and all(math.isfinite(row[key]) for key in HISTORY_FIELDS)
               for row in history)
    assert RUN_FIELDS <= set(meta)
    assert meta["status"] == "completed" and meta["epochs_done"] == 3 and len(meta["epoch_seconds"]) == 3
    assert meta["architecture"] == {**tiny(), "layers": [normalize_layer(layer) for layer in TINY]}
    assert meta["parameters"] == analyze(TINY).total_parameters
    assert meta["settings"] == {"epochs": 3, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.001,
                                "train_size": 500, "validation": "holdout", "validation_size": 100, "seed": 1,
                                "augment": False, "schedule": "constant"}
    assert meta["device"].startswith(("CPU only", "GPU:")) and set(meta["versions"]) == {"keras", "backend", "python"}
    assert 0 <= meta["test_accuracy"] <= 1 and meta["test_loss"] > 0
    assert meta["started"] and meta["finished"] and meta["pid"] == os.getpid()
    model = store.load_model(run_id)
    assert model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 10)
    live_file = store.live(run_id)
    assert live_file["status"] == "completed" and live_file["batches_done"] == 3 * 16
    assert len(live_file["curve"]) == 3 * 16


def test_stop_ends_a_run_within_one_batch_and_keeps_its_finished_epochs(manager):
    run_id = manager.submit(tiny(), {"epochs": 50, "batch_size": 8})
    live = manager.live_state(run_id)
    steps = live.snapshot()["batches"]
    wait_until(live, lambda snapshot: snapshot["batches_done"] >= steps + 5)  # into the second epoch
    manager.stop(run_id)
    assert manager.wait(run_id, 120)
    after = live.snapshot()
    assert after["batches_after_stop"] is not None and after["batches_after_stop"] <= 1
    meta = manager.store.get(run_id)
    assert meta["status"] == "stopped" and "is kept" in meta["message"]
    assert meta["epochs_done"] == len(manager.store.history(run_id)) >= 1
    assert meta["test_accuracy"] is not None
    model = manager.store.load_model(run_id)
    assert model.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 10)


def test_a_failing_run_is_marked_failed_and_the_next_one_still_trains(manager, monkeypatch):
    import keras

    def out_of_memory(*args, **kwargs):
        raise MemoryError("simulated: could not allocate 12 GiB")

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "fit", out_of_memory)
        failing = manager.submit(tiny(), {"epochs": 1})
        assert manager.wait(failing, 120)
    meta = manager.store.get(failing)
    assert meta["status"] == "failed"
    assert meta["message"].startswith("Out of memory while training") and "12 GiB" in meta["message"]
    working = manager.submit(tiny(), {"epochs": 1})
    assert manager.wait(working, 120)
    assert manager.store.get(working)["status"] == "completed"


def test_the_queue_never_trains_more_than_the_limit(synthetic_data, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, max_queued=2,
                                       executor="thread")
    first = manager.submit(tiny(), {"epochs": 40, "batch_size": 8})
    second = manager.submit(tiny(), {"epochs": 1})
    third = manager.submit(tiny(), {"epochs": 1})
    assert manager.counts()["running"] == 1 and manager.counts()["queued"] == 2
    assert [manager.queue_position(run_id) for run_id in (first, second, third)] == [None, 1, 2]
    with pytest.raises(training.QueueFull, match="queue is full: 1 run\\(s\\) training and 2 waiting"):
        manager.submit(tiny(), {"epochs": 1})
    queued = manager.store.get(third)
    assert queued["status"] == "queued" and not manager.store.has_model(third)
    assert manager.live_state(third).snapshot()["phase"] == "queued"  # nothing built or copied for it
    manager.stop(first)
    for run_id in (first, second, third):
        assert manager.wait(run_id, 300)
    assert [manager.store.get(run_id)["status"] for run_id in (second, third)] == ["completed", "completed"]
    assert manager.peak_running == 1


def test_two_slots_train_two_runs_at_once_and_no_more(synthetic_data, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=2, max_queued=5,
                                       executor="thread")
    run_ids = [manager.submit(tiny(), {"epochs": 40, "batch_size": 8}) for _ in range(4)]
    assert manager.counts() == {"running": 2, "queued": 2, "max_concurrent": 2, "max_queued": 5, "executor": "thread"}
    for run_id in run_ids:
        wait_until(manager.live_state(run_id), lambda snapshot: snapshot["batches_done"] >= 1)
        manager.stop(run_id)  # the next queued run starts in the freed slot
        assert manager.wait(run_id, 120)
    assert manager.peak_running == 2
    assert {manager.store.get(run_id)["status"] for run_id in run_ids} == {"stopped"}


def test_stopping_a_queued_run_takes_it_out_of_the_queue(synthetic_data, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor="thread")
    first = manager.submit(tiny(), {"epochs": 40, "batch_size": 8})
    waiting = manager.submit(tiny(), {"epochs": 1})
    manager.stop(waiting)
    assert manager.wait(waiting, 5)
    assert manager.queue_position(waiting) is None
    meta = manager.store.get(waiting)
    assert meta["status"] == "stopped" and "never started" in meta["message"] and meta["started"] is None
    manager.stop(first)
    assert manager.wait(first, 120)


def test_validating_on_the_test_images_reports_the_last_epoch_as_the_test_score(manager):
    run_id = manager.submit(tiny(), {"epochs": 2, "validation": "test", "augment": True})
    assert manager.wait(run_id, 300)
    meta, history = manager.store.get(run_id), manager.store.history(run_id)
    assert meta["status"] == "completed", meta["message"]
    assert meta["settings"]["train_size"] == 600 and meta["settings"]["validation_size"] == 200
    assert (meta["test_loss"], meta["test_accuracy"]) == (history[-1]["val_loss"], history[-1]["val_accuracy"])
    saved = manager.store.load_model(run_id)
    assert not any("augment" in layer.name for layer in saved.layers)


def test_the_seed_makes_runs_repeatable(manager):
    first = manager.submit(tiny(), {"epochs": 1, "seed": 7})
    second = manager.submit(tiny(), {"epochs": 1, "seed": 7})
    assert manager.wait(first, 120) and manager.wait(second, 120)
    one, two = manager.store.history(first)[0], manager.store.history(second)[0]
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-4)
    assert one["val_accuracy"] == pytest.approx(two["val_accuracy"], abs=1e-6)


def test_runs_of_a_dead_process_become_interrupted_when_a_manager_starts(synthetic_data, isolated_storage):
    store = RunStore(isolated_storage / "runs")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    meta = store.create("orphan", tiny(), {"epochs": 3}, pid=int(dead.stdout))
    store.update(meta["id"], status="running")
    store.append_epoch(meta["id"], {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
                                    "val_accuracy": 0.5, "seconds": 1.0})
    manager = training.TrainingManager(store, executor="thread")
    assert manager.recovered == [meta["id"]]
    recovered = store.get(meta["id"])
    assert recovered["status"] == "interrupted" and "1 finished epoch" in recovered["message"]


def test_a_bad_architecture_or_setting_is_refused_before_anything_is_stored(manager):
    with pytest.raises(ArchitectureError, match="Layer 1"):
        manager.submit(custom_architecture([{"type": "Dense", "units": 8}]), {"epochs": 1})
    with pytest.raises(ValueError, match="Epochs"):
        manager.submit(tiny(), {"epochs": 0})
    assert manager.store.list() == []


def test_readable_errors():
    assert training.readable_error(MemoryError()).startswith("Out of memory")
    assert training.readable_error(RuntimeError("x" * 400)).endswith("...")
    assert training.readable_error(ValueError("bad shape")) == "Training failed: ValueError: bad shape"


def test_batch_normalization_lag_is_explained():
    meta = {"settings": {"train_size": 10_000, "batch_size": 128},
            "architecture": {"layers": preset_layers("seed-3layer")}}
    history = [{"epoch": 1, "accuracy": 0.64, "val_accuracy": 0.38}]
    notes = presentation.result_notes(meta, history)
    assert len(notes) == 1 and "79 batches" in notes[0] and "55 %" in notes[0]
    assert presentation.result_notes(meta, [{"epoch": 1, "accuracy": 0.9, "val_accuracy": 0.88}]) == []


@pytest.mark.parametrize("axis", [-1, 1])
def test_reestimated_statistics_are_those_of_the_whole_training_set(axis):
    import keras

    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3]}, {"type": "BatchNormalization", "axis": axis},
              {"type": "Conv2D", "filters": 3, "kernel_size": [3, 3]}, {"type": "BatchNormalization", "axis": axis},
              {"type": "Flatten"}]
    model = build_model(layers)
    images = np.random.default_rng(0).random((300, 28, 28, 1), dtype=np.float32)
    training.reestimate_batch_normalization(model, images, batch_size=64)
    for layer in (layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)):
        normalized_as_trained = keras.Model(model.inputs[0], layer.output)
        # One batch holding every image: the batch statistics are the statistics of the whole set.
        whole_batch = keras.ops.convert_to_numpy(normalized_as_trained(images, training=True))
        inference = keras.ops.convert_to_numpy(normalized_as_trained(images, training=False))
        np.testing.assert_allclose(inference, whole_batch, rtol=1e-3, atol=2e-3)


def test_batch_normalization_lag_counts_the_batches():
    model = build_model(preset_layers("seed-3layer"))
    assert training.batch_normalization_lag(model, 79) == pytest.approx(0.99 ** 79)
    assert training.batch_normalization_lag(build_model(TINY), 79) is None


def test_a_short_run_of_a_batch_normalized_net_is_corrected_and_says_so(manager):
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3]}, {"type": "BatchNormalization", "axis": -1},
              {"type": "Flatten"}]
    run_id = manager.submit(custom_architecture(layers, "bn"), {"epochs": 1, "batch_size": 50})
    assert manager.wait(run_id, 300)
    meta = manager.store.get(run_id)
    record = meta["batch_normalization"]
    assert meta["status"] == "completed" and record["batches"] == 10 and record["images"] == 500
    assert record["caught_up"] == pytest.approx(1 - 0.99 ** 10, abs=1e-4)
    last = manager.store.history(run_id)[-1]
    assert record["validation_accuracy_before"] == last["val_accuracy"]
    assert record["validation_loss_before"] == last["val_loss"]
    # The synthetic digits are easy enough that both accuracies may be 100 %; the loss shows the statistics changed.
    assert meta["test_loss"] != pytest.approx(record["validation_loss_before"])
    note = presentation.result_notes(meta, manager.store.history(run_id))[0]
    assert "only 10 batches" in note and "10 % of the way" in note and "changes no weight" in note
    assert f"{100 * meta['test_accuracy']:.1f} %" in note


def test_each_epochs_weights_are_kept_and_the_last_is_the_saved_model(manager):
    """With BatchNormalization after a short run, every kept epoch has its averages re-estimated, as the
    saved model has: the last kept epoch is the model itself."""
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": [3, 3]}, {"type": "BatchNormalization", "axis": -1},
              {"type": "Flatten"}]
    run_id = manager.submit(custom_architecture(layers, "bn"), {"epochs": 3, "batch_size": 50})
    assert manager.wait(run_id, 300)
    store = manager.store
    assert store.epoch_weights(run_id) == [1, 2, 3]
    model = store.load_model(run_id)
    last = build_model(layers, "last")
    last.load_weights(store.epoch_weights_path(run_id, 3))
    for kept, saved in zip(last.get_weights(), model.get_weights()):
        np.testing.assert_allclose(kept, saved, rtol=1e-6, atol=1e-6)
    first = build_model(layers, "first")
    first.load_weights(store.epoch_weights_path(run_id, 1))
    assert not all(np.allclose(a, b) for a, b in zip(first.get_weights(), model.get_weights()))
