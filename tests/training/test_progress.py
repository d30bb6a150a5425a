"""A run's live progress: per-batch values recovered from Keras' running means, the stop before every batch,
a diverged loss, the phase named until the first batch, and the live chart's spec."""

from __future__ import annotations


import pytest

from mnist_lab import presentation, training


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
