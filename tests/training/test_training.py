"""Training: settings, the data split, live metrics, the manager (queue, stop, failures) and the run store."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import replace
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist_lab import presentation, training
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.sources import architecture_from_argument, custom_architecture, preset_architecture
from mnist_lab.architecture.validation import ArchitectureError, normalize_layer
from mnist_lab.runs import RunStore

TINY = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"}]
RUN_FIELDS = {"id", "name", "status", "message", "created", "started", "finished", "pid", "epochs_done",
              "epoch_seconds", "architecture", "parameters", "multiply_adds", "settings", "device", "backend",
              "versions", "test_loss", "test_accuracy"}
HISTORY_FIELDS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}


@pytest.fixture
def manager(synthetic_data, isolated_storage):
    return training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")


def tiny():
    return custom_architecture(TINY, label="tiny")


def wait_until(live: training.LiveState, condition, timeout=120):
    """Wait on the run's change notifications (no sleeping) until condition(snapshot) holds."""
    version = -1
    while not condition(live.snapshot()):
        new_version = live.wait_for_change(version, timeout)
        assert new_version != version, "the run made no progress"
        version = new_version
    return live.snapshot()


# --- settings ---------------------------------------------------------------------------------------

def test_settings_fill_in_the_notebooks_defaults_and_a_holdout():
    settings = training.TrainSettings().resolve(60_000, 10_000)
    assert (settings.epochs, settings.batch_size, settings.optimizer) == (12, 128, "adam")
    assert settings.learning_rate == pytest.approx(0.001)
    assert (settings.validation_size, settings.train_size) == (5_000, 55_000)
    on_test = training.TrainSettings(validation="test").resolve(60_000, 10_000)
    assert (on_test.train_size, on_test.validation_size) == (60_000, 10_000)
    assert training.TrainSettings(optimizer="adadelta").resolve(60_000).learning_rate == pytest.approx(1.0)


@pytest.mark.parametrize("changes, words", [
    ({"epochs": 0}, "Epochs must be from 1"),
    ({"epochs": 2.5}, "Epochs must be a whole number"),
    ({"batch_size": 0}, "Batch size"),
    ({"optimizer": "rmsprop"}, "Unknown optimizer 'rmsprop'; use one of: adam, adadelta, sgd"),
    ({"learning_rate": float("nan")}, "learning rate must be a number above 0"),
    ({"learning_rate": -1.0}, "learning rate must be a number above 0"),
    ({"validation": "train"}, "Validation must be one of: holdout, test"),
    ({"train_size": 58_000}, "train on at most 55,000"),
    ({"train_size": 70_000}, "Training images must be from 10 to 60,000"),
    ({"seed": -1}, "The seed must be from 0"),
])
def test_bad_settings_say_what_to_change(changes, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        training.TrainSettings(**changes).resolve(60_000, 10_000)


def test_unknown_setting_names_are_refused():
    with pytest.raises(ValueError, match="Unknown training setting"):
        training.TrainSettings.from_dict({"epochs": 1, "momentum": 0.9})


def test_run_names_are_checked_and_defaulted():
    settings = training.TrainSettings(epochs=3, train_size=10_000).resolve(60_000)
    assert training.clean_run_name("  mine  ", tiny(), settings) == "mine"
    assert training.clean_run_name("", tiny(), settings) == "tiny · 3 epochs · 10k images"
    with pytest.raises(ValueError, match="at most 80"):
        training.clean_run_name("x" * 81, tiny(), settings)
    with pytest.raises(ValueError, match="control character"):
        training.clean_run_name("a\nb", tiny(), settings)


def test_every_optimizer_builds_with_its_learning_rate():
    pytest.importorskip("keras")
    for key, choice in training.OPTIMIZERS.items():
        optimizer = choice.build(0.05)
        assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.05), key
    assert float(np.asarray(training.OPTIMIZERS["sgd"].build(0.1).momentum)) == pytest.approx(0.9)


def test_architecture_arguments(tmp_path):
    assert architecture_from_argument("seed-5layer")["source"] == "preset"
    path = tmp_path / "mine.json"
    path.write_text(to_json(TINY, "mine"))
    from_file = architecture_from_argument(str(path))
    assert (from_file["name"], from_file["source"], from_file["label"]) == ("custom", "imported", "mine")
    with pytest.raises(ValueError, match="Unknown architecture 'nope'"):
        architecture_from_argument("nope")
    with pytest.raises(ValueError, match="Cannot read"):
        architecture_from_argument(str(tmp_path / "missing.json"))


# --- data -----------------------------------------------------------------------------------------

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


# --- live metrics ---------------------------------------------------------------------------------

def test_per_batch_values_are_recovered_from_keras_running_means_in_batch_order():
    settings = training.TrainSettings(epochs=1, batch_size=10, train_size=35, validation_size=10).resolve(100)
    live = training.LiveState("run", settings)
    live.start()
    live.begin_epoch(0)
    batch_losses, sizes = [4.0, 2.0, 1.0, 0.5], [10, 10, 10, 5]
    means = [sum(l * s for l, s in zip(batch_losses[:k + 1], sizes)) / sum(sizes[:k + 1]) for k in range(4)]
    for batch in (1, 0, 3, 2):  # Keras' async dispatch may deliver them out of order
        live.record_batch(batch, {"loss": means[batch], "accuracy": 0.5})
    snapshot = live.snapshot()
    assert snapshot["batch"] == 4 and snapshot["batches_done"] == 4
    expected, smoothed = 0.0, []
    for step, value in enumerate(batch_losses, start=1):
        expected = training.SMOOTHING * expected + (1 - training.SMOOTHING) * value
        smoothed.append(expected / (1 - training.SMOOTHING ** step))
    assert [point[1] for point in snapshot["curve"]] == pytest.approx(smoothed, abs=1e-4)
    assert [point[0] for point in snapshot["curve"]] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert [point[2] for point in snapshot["curve"]] == pytest.approx([0.5] * 4, abs=1e-4)


def test_stop_is_checked_before_every_batch(tmp_path):
    settings = training.TrainSettings(epochs=1, train_size=100, validation_size=10).resolve(200)
    live = training.LiveState("run", settings, stop_file=tmp_path / "STOP")
    live.check_stop()
    assert live.snapshot()["batches_started"] == 1
    (tmp_path / "STOP").write_text("now")  # as another process asks for it
    with pytest.raises(training.StopRequested):
        live.check_stop()
    assert live.snapshot()["batches_started"] == 1


def test_a_nan_loss_stops_the_run_as_diverged():
    settings = training.TrainSettings(epochs=1, batch_size=10, train_size=30, validation_size=10).resolve(100)
    live = training.LiveState("run", settings)
    live.begin_epoch(0)
    live.record_batch(0, {"loss": float("nan"), "accuracy": 0.1})
    with pytest.raises(training.TrainingDiverged, match="learning rate"):
        live.check_stop()


# --- time estimate --------------------------------------------------------------------------------

def test_epoch_estimate_grows_with_multiply_adds_and_images():
    calibration = training.SpeedCalibration(batch_seconds=0.01, seconds_per_multiply_add=1e-10,
                                            evaluation_batch_seconds=0.005, evaluation_seconds_per_multiply_add=3e-11,
                                            device="test", measured="now")
    settings = training.TrainSettings(batch_size=100, train_size=1000, validation_size=500).resolve(60_000)
    training_seconds, validation_seconds = calibration.epoch_seconds(10**6, settings)
    assert training_seconds == pytest.approx(10 * 0.01 + 1000 * 1e6 * 1e-10)
    assert validation_seconds == pytest.approx(5 * 0.005 + 500 * 1e6 * 3e-11)
    macs = {preset: analyze(preset_layers(preset)).multiply_adds
            for preset in ("seed-3layer", "seed-5layer")}
    small, big = (training.estimate_epoch(calibration, macs[p], settings) for p in ("seed-3layer", "seed-5layer"))
    assert big.epoch_seconds > 5 * small.epoch_seconds
    assert small.total_seconds == pytest.approx(small.epoch_seconds * settings.epochs)
    assert presentation.format_duration(260) == "4 min 20 s" and presentation.format_duration(3900) == "1 h 05 min"
    assert presentation.format_duration(260, compact=True) == "4m 20s" and presentation.format_duration(None) == "–"


def test_the_estimate_line_never_promises_epochs_of_0_seconds():
    settings = training.TrainSettings(epochs=12, train_size=500, validation_size=100).resolve(60_000)
    tiny = training.EpochEstimate(0.2, 0.05, 12, startup_seconds=3.0, finish_seconds=2.0)
    assert presentation.estimate_parts(tiny, settings)[1].startswith("12 epochs of under 1 s (500 training")
    longer = training.EpochEstimate(40.0, 5.0, 12, startup_seconds=3.0, finish_seconds=2.0)
    assert presentation.estimate_parts(longer, settings)[1].startswith("12 epochs of ≈ 45 s (")


def test_run_labels_say_whose_each_run_is_and_tell_alike_runs_apart():
    ada = {"id": "a1", "name": "Ada · seed-3layer · 1 epoch", "owner_name": "Ada", "test_accuracy": 0.9791}
    ben = {"id": "b1", "name": "seed-3layer · 1 epoch", "owner_name": "Ben", "test_accuracy": 0.5}
    twin = {**ben, "id": "b2"}
    nobody = {"id": "c1", "name": "from the command line", "test_accuracy": None}
    assert presentation.run_label(ada) == "Ada · seed-3layer · 1 epoch (97.9 %)"  # the owner not repeated
    assert presentation.run_label(ben) == "Ben · seed-3layer · 1 epoch (50.0 %)"
    assert presentation.run_label(nobody) == "from the command line"
    labels = presentation.run_labels([ada, ben, twin, nobody])
    assert labels["a1"] == presentation.run_label(ada) and labels["c1"] == "from the command line"
    assert labels["b1"] != labels["b2"] and labels["b2"].endswith("[b2]")  # alike runs told apart


def test_calibration_measures_a_positive_rate_and_is_cached(isolated_storage):
    pytest.importorskip("keras")
    estimator = training.SpeedEstimator(isolated_storage)
    estimator.start()
    calibration = estimator.wait(300)
    assert estimator.error is None and calibration is not None
    assert calibration.seconds_per_multiply_add > 0 and calibration.batch_seconds >= 0
    saved = json.loads((isolated_storage / training.CALIBRATION_FILE).read_text())
    assert list(saved.values()) == [dataclasses.asdict(calibration)]
    elsewhere = training.SpeedEstimator(isolated_storage / "other")
    elsewhere.start()
    assert elsewhere.wait(60) == calibration  # one machine, one speed: not measured again


def test_the_start_up_comes_from_a_fresh_process_one_time_start_included(monkeypatch):
    """A worker's first net pays the backend's one-time start: the estimate's start-up takes the fresh
    process' first warm-up, and the per-layer tracing from the warm-ups after it."""
    speed = training.speed
    monkeypatch.setattr(speed, "_time_batches", lambda layers, batches, seed=0: (0.02, 0.01, 0.5))
    monkeypatch.setattr(speed, "device_details", lambda: {"device": "test"})
    monkeypatch.setattr(speed, "_startup_in_fresh_process",
                        lambda: {"data": 1.0, "first": 6.0, "light": 2.0, "wide": 4.5})
    light, wide = (training.speed.NetWork.of(net).layers for net in (speed._LIGHT_NET, speed._WIDE_NET))
    calibration = speed.calibrate()
    per_layer = 2.5 / (wide - light)
    assert calibration.startup_seconds_per_layer == pytest.approx(per_layer)
    assert calibration.startup_seconds == pytest.approx(6.0 - per_layer * light + 1.0)
    assert calibration.startup(speed._LIGHT_NET) == pytest.approx(7.0)  # the first net: one-time start, data
    monkeypatch.setattr(speed, "_startup_in_fresh_process", lambda: None)  # no fresh process: this one's
    monkeypatch.setattr(speed, "_data_seconds", lambda: 1.0)
    fallback = speed.calibrate()
    assert fallback.startup_seconds_per_layer == 0.0 and fallback.startup_seconds == pytest.approx(1.5)


# --- the manager ----------------------------------------------------------------------------------

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


def test_chart_spec_has_batches_epochs_and_validation():
    snapshot = {"curve": [[0.5, 2.0, 0.3], [1.0, 1.5, 0.5]]}
    history = [{"epoch": 1, "loss": 1.6, "accuracy": 0.45, "val_loss": 1.4, "val_accuracy": 0.55, "seconds": 1}]
    spec = presentation.chart_spec(snapshot, history, "accuracy", epochs=3)
    assert spec["data"]["values"] == [
        {"epoch": 0.5, "value": 0.3, "series": presentation.SERIES[0]},
        {"epoch": 1.0, "value": 0.5, "series": presentation.SERIES[0]},
        {"epoch": 1, "value": 0.45, "series": presentation.SERIES[1]},
        {"epoch": 1, "value": 0.55, "series": presentation.SERIES[2]}]
    assert spec["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 3]
    assert spec["layer"][0]["encoding"]["y"]["axis"]["format"] == ".0%"
    assert presentation.chart_spec(snapshot, history, "loss", epochs=3)["data"]["values"][0]["value"] == 2.0


def test_batch_normalization_lag_is_explained():
    meta = {"settings": {"train_size": 10_000, "batch_size": 128},
            "architecture": {"layers": preset_layers("seed-3layer")}}
    history = [{"epoch": 1, "accuracy": 0.64, "val_accuracy": 0.38}]
    notes = presentation.result_notes(meta, history)
    assert len(notes) == 1 and "79 batches" in notes[0] and "55 %" in notes[0]
    assert presentation.result_notes(meta, [{"epoch": 1, "accuracy": 0.9, "val_accuracy": 0.88}]) == []


def test_learning_rate_schedules():
    constant = training.TrainSettings(epochs=2, batch_size=100, train_size=1000, learning_rate=0.01).resolve(2000)
    assert training.learning_rate_schedule(constant) == 0.01
    cosine = replace(constant, schedule="warmup-cosine")
    schedule = training.learning_rate_schedule(cosine)
    total = cosine.epochs * cosine.steps_per_epoch()
    rates = [float(schedule(step)) for step in (0, total // 20, total // 10, total // 2, total)]
    assert rates[0] == 0.0 and 0 < rates[1] < rates[2]
    assert rates[2] == pytest.approx(0.01)
    assert rates[2] > rates[3] > rates[4] and rates[4] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'wavy'"):
        replace(constant, schedule="wavy").resolve(2000)


def test_quick_cnn_comes_with_its_schedule():
    defaults = training.preset_training_defaults("quick-cnn")
    assert defaults["schedule"] == "warmup-cosine" and defaults["batch_size"] == 256


# --- BatchNormalization after a short run, and the one-click plans -----------------------------------

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


def test_presets_fill_in_their_recipe_and_plans_cap_the_images():
    assert training.plans.recipe("preset", "seed-3layer") == {
        "epochs": 12, "batch_size": 128, "optimizer": "adam", "learning_rate": 0.001, "schedule": "constant"}
    quick_cnn = training.plans.recipe("preset", "quick-cnn")
    assert (quick_cnn["batch_size"], quick_cnn["schedule"], quick_cnn["epochs"]) == (256, "warmup-cosine", 2)
    assert training.plans.recipe("saved", "mine") == {} and training.plans.recipe("edited", "") == {}
    quick, notebook = training.plans.PLANS["quick"], training.plans.PLANS["notebook"]
    assert quick.values(55_000) == {"train_size": 10_000, "epochs": 1, "batch_size": 32}
    assert quick.values(500)["train_size"] == 500 and notebook.values(55_000)["train_size"] == 55_000


@pytest.mark.slow
def test_the_quick_demo_of_the_notebooks_3_layer_net_gives_a_good_model(real_mnist, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    run_id = manager.submit(preset_architecture("seed-3layer"),
                            {**training.plans.recipe("preset", "seed-3layer"),
                             **training.plans.PLANS["quick"].values(55_000)})
    assert manager.wait(run_id, 900)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["test_accuracy"] >= 0.90, meta


def test_a_saved_architecture_may_be_named_with_json_on_the_command_line(isolated_storage):
    from mnist_lab.architecture.saved import ArchitectureStore

    ArchitectureStore().save("x.json", TINY)
    architecture = architecture_from_argument("x.json")
    assert (architecture["source"], architecture["name"]) == ("saved", "x")
    with pytest.raises(ValueError, match="no such file, and no saved architecture 'y'"):
        architecture_from_argument("y.json")


# --- fast-cnn: two epochs on one one-cycle schedule ---------------------------------------------------

def test_the_one_cycle_schedule_rises_for_30_percent_then_decays_to_almost_nothing():
    settings = training.TrainSettings(epochs=1, batch_size=100, train_size=1000, learning_rate=0.01,
                                      schedule="one-cycle").resolve(2000)
    schedule = training.learning_rate_schedule(settings)
    total = settings.steps_per_epoch()
    rise = int(total * 0.3)
    rates = [float(schedule(step)) for step in (0, rise // 2, rise, (rise + total) // 2, total)]
    assert rates[0] == pytest.approx(0.01 / 25) and rates[0] < rates[1] < rates[2]
    assert rates[2] == pytest.approx(0.01)
    assert rates[2] > rates[3] > rates[4] and rates[4] == pytest.approx(0.01 / 25 / 10_000, rel=1e-3)


@pytest.mark.slow
def test_fast_cnn_reaches_98_5_percent_in_two_epochs_with_its_recipe(real_mnist, isolated_storage):
    """Two epochs of fast-cnn with its own recipe (seed 1). The aim is 99.0 % on every seed; measured so far
    it reaches 98.9 to 99.1 % over seeds 1 to 3 (one epoch: 98.6 to 98.9 %), so this checks the level it
    reaches with margin rather than the aim."""
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    recipe = training.plans.recipe("preset", "fast-cnn")
    assert recipe["epochs"] == 2 and recipe["schedule"] == "one-cycle"
    run_id = manager.submit(preset_architecture("fast-cnn"), recipe)
    assert manager.wait(run_id, 900)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["epochs_done"] == 2 and meta["test_accuracy"] >= 0.985, meta


def test_a_plan_may_differ_for_one_preset_and_says_why():
    quick, notebook = training.plans.PLANS["quick"], training.plans.PLANS["notebook"]
    seven = quick.values(55_000, "seed-7layer")
    assert (seven["train_size"], seven["epochs"], seven["batch_size"]) == (10_000, 1, 32)
    assert (seven["schedule"], seven["learning_rate"]) == ("warmup-cosine", 0.003)
    assert "88.5 %" in quick.note("seed-7layer") and quick.note("seed-3layer") is None
    assert quick.values(55_000, "seed-3layer") == quick.values(55_000)
    assert notebook.values(55_000, "seed-7layer")["schedule"] == "constant"  # the notebook's plan undoes it
    assert training.plans.describe(quick, 500, "seed-7layer") == "Quick demo: 500 images, 1 epoch, batch 32"


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("preset", ["seed-5layer", "seed-7layer"])
def test_the_quick_demo_of_the_notebooks_deeper_nets_gives_a_good_model(preset, real_mnist, isolated_storage):
    """Minutes each on a 2-core CPU (the 3-layer net's quick demo, above, stays in the main run)."""
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    run_id = manager.submit(preset_architecture(preset),
                            {**training.plans.recipe("preset", preset),
                             **training.plans.PLANS["quick"].values(55_000, preset)})
    assert manager.wait(run_id, 1800)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["test_accuracy"] >= 0.90, meta


def test_the_start_up_is_named_until_the_first_batch_has_finished():
    from mnist_lab import presentation

    settings = training.TrainSettings(epochs=1, batch_size=10, train_size=100, validation_size=10).resolve(1000)
    live = training.LiveState("run", settings)
    live.start()
    assert presentation.progress_line(live.snapshot(), 1) == "Starting: building the model and loading data…"
    live.set_phase("training")  # fit is called: Keras traces its step before the first batch ends
    live.begin_epoch(0)
    assert live.snapshot()["phase"] == "first batch" and live.snapshot()["startup_seconds"] is None
    assert presentation.progress_line(live.snapshot(), 1).startswith("Starting: Keras prepares its training step")
    live.record_batch(0, {"loss": 2.0, "accuracy": 0.1})
    snapshot = live.snapshot()
    assert snapshot["phase"] == "training" and snapshot["startup_seconds"] >= 0
    assert presentation.progress_line(snapshot, 1) == "Epoch 1 of 1 · batch 1 of 10 · training"
    estimate = training.EpochEstimate(8.0, 2.0, 1, startup_seconds=5.0, finish_seconds=3.0)
    assert estimate.run_seconds == 18.0 and estimate.total_seconds == 10.0
    assert presentation.time_left({"phase": "starting", "elapsed": 4.0}, estimate) == (14.0, True)
    assert presentation.time_left({"phase": "training", "remaining": 6.0}, estimate) == (9.0, False)
    assert presentation.time_left({"phase": "training", "remaining": None}, None) == (None, False)


def test_the_estimate_prices_what_the_layers_write_as_well_as_multiply_adds():
    calibration = training.SpeedCalibration(0.01, 1e-10, 0.005, 3e-11, "test", "now", seconds_per_value=1e-8,
                                            evaluation_seconds_per_value=2e-9, startup_seconds=2.0,
                                            startup_seconds_per_layer=0.5, version=training.speed.CALIBRATION_VERSION)
    settings = training.TrainSettings(epochs=2, batch_size=32, train_size=1000, validation_size=100).resolve(60_000)
    report = analyze(preset_layers("seed-7layer"))
    values = sum(math.prod(layer.output_shape) for layer in report.layers)
    estimate = training.estimate_epoch(calibration, report, settings)
    batches = [32] * 31 + [8]
    assert estimate.training_seconds == pytest.approx(
        sum(0.01 + size * (report.multiply_adds * 1e-10 + values * 1e-8) for size in batches))
    assert estimate.startup_seconds == pytest.approx(2.0 + 0.5 * len(report.layers))
    # 64 batches leave BatchNormalization's averages far behind: the test images are scored twice
    assert estimate.finish_seconds > 2 * calibration.epoch_seconds(report, dataclasses.replace(
        settings, validation_size=10_000))[1]
    assert estimate.run_seconds == pytest.approx(estimate.startup_seconds + 2 * estimate.epoch_seconds
                                                 + estimate.finish_seconds)


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
