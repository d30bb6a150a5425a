"""This machine's speed and the epoch-time estimates made from it."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path

import pytest

from mnist_lab import presentation, training
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.training import speed


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


def _state(pid: int) -> str | None:
    """A process's state letter (Z: ended, not yet reaped), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_at_exit_a_measuring_process_and_what_it_started_end_at_once(tmp_path, monkeypatch):
    """A server stopped during its speed measurement neither waits for it nor leaves it running behind."""
    monkeypatch.setattr(speed, "_STOPPING", threading.Event())
    started = tmp_path / "started"
    code = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; "
            "time.sleep(300)']); print(child.pid, flush=True); open(sys.argv[1], 'w').close(); time.sleep(300)")
    outcome = {}
    measuring = threading.Thread(target=lambda: outcome.update(done=speed._in_fresh_process(
        code, str(started), own_group=True)))
    measuring.start()
    while not started.exists() and measuring.is_alive():
        measuring.join(0.05)
    speed.stop_measuring()
    measuring.join(60)
    assert not measuring.is_alive() and outcome["done"].returncode == -signal.SIGKILL
    grandchild = int(outcome["done"].stdout.split()[0])
    deadline = time.monotonic() + 60  # long before its own sleep would end it
    while _state(grandchild) not in (None, "Z") and time.monotonic() < deadline:  # the group's SIGKILL lands
        time.sleep(0.05)
    assert _state(grandchild) in (None, "Z")
    assert not speed._MEASURING
