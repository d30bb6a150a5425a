"""Speed estimates: this machine's training speed, measured once on two reference nets, and the epoch time a
net's multiply-adds predict from it."""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_lab import architectures
from mnist_lab.runs import now_iso, read_json, write_json
from mnist_lab.training.fitting import KERAS_SETUP_LOCK, build_for_training, device_details
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)


CALIBRATION_FILE = ".speed-calibration.json"
CALIBRATION_BATCH = 128
# Two reference nets: one almost free (the per-batch overhead), one dominated by multiply-adds.
_LIGHT_NET = [{"type": "Conv2D", "filters": 8, "kernel_size": [3, 3]}, {"type": "MaxPooling2D"}, {"type": "Flatten"}]
_HEAVY_NET = [{"type": "Conv2D", "filters": 32, "kernel_size": [5, 5], "padding": "same"},
              {"type": "Conv2D", "filters": 64, "kernel_size": [5, 5], "padding": "same"},
              {"type": "MaxPooling2D", "pool_size": [4, 4]}, {"type": "Flatten"}]


@dataclass(frozen=True)
class SpeedCalibration:
    """This machine's training speed: time per batch = fixed cost + multiply-adds x images x rate."""

    batch_seconds: float
    seconds_per_multiply_add: float
    evaluation_batch_seconds: float
    evaluation_seconds_per_multiply_add: float
    device: str
    measured: str

    def epoch_seconds(self, multiply_adds: int, settings: TrainSettings) -> tuple[float, float]:
        """(training, validation) seconds of one epoch of a net with this many multiply-adds per image."""
        size = settings.batch_size
        training = (math.ceil(settings.train_size / size) * self.batch_seconds
                    + settings.train_size * multiply_adds * self.seconds_per_multiply_add)
        validation = (math.ceil(settings.validation_size / size) * self.evaluation_batch_seconds
                      + settings.validation_size * multiply_adds * self.evaluation_seconds_per_multiply_add)
        return training, validation


def _time_batches(layers, batches, seed=0):
    """Seconds per training batch and per evaluation batch of one net, after a warm-up."""
    settings = TrainSettings(batch_size=CALIBRATION_BATCH, train_size=CALIBRATION_BATCH * batches,
                             validation_size=CALIBRATION_BATCH, seed=seed).resolve(10**6)
    model, _ = build_for_training(layers, settings, "calibration")
    rng = np.random.default_rng(seed)
    images = rng.random((CALIBRATION_BATCH * batches, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, len(images)).astype("int32")
    model.fit(images[:2 * CALIBRATION_BATCH], labels[:2 * CALIBRATION_BATCH], batch_size=CALIBRATION_BATCH,
              epochs=1, verbose=0)
    model.evaluate(images[:CALIBRATION_BATCH], labels[:CALIBRATION_BATCH], batch_size=CALIBRATION_BATCH, verbose=0)
    start = time.perf_counter()
    model.fit(images, labels, batch_size=CALIBRATION_BATCH, epochs=1, verbose=0)
    training = (time.perf_counter() - start) / batches
    start = time.perf_counter()
    model.evaluate(images, labels, batch_size=CALIBRATION_BATCH, verbose=0)
    evaluation = (time.perf_counter() - start) / batches
    return training, evaluation


def calibrate(light_batches: int = 20, heavy_batches: int = 4) -> SpeedCalibration:
    """Time a few batches of two reference nets and fit `seconds = fixed + rate x multiply-adds`."""
    light = architectures.analyze(_LIGHT_NET).multiply_adds * CALIBRATION_BATCH
    heavy = architectures.analyze(_HEAVY_NET).multiply_adds * CALIBRATION_BATCH
    with KERAS_SETUP_LOCK:
        light_train, light_eval = _time_batches(_LIGHT_NET, light_batches)
        heavy_train, heavy_eval = _time_batches(_HEAVY_NET, heavy_batches)

    def fit_line(light_seconds, heavy_seconds):
        rate = max(1e-15, (heavy_seconds - light_seconds) / (heavy - light))
        return max(0.0, light_seconds - rate * light), rate

    batch_seconds, rate = fit_line(light_train, heavy_train)
    evaluation_batch_seconds, evaluation_rate = fit_line(light_eval, heavy_eval)
    return SpeedCalibration(batch_seconds, rate, evaluation_batch_seconds, evaluation_rate,
                            device=device_details()["device"], measured=now_iso())


def _calibration_key() -> str:
    details = device_details()
    return f"{details['device']} | {details['versions']['backend']} | keras {details['versions']['keras']}"


_MEASURED: dict[str, SpeedCalibration] = {}  # per process: one machine, one speed, whatever the run folder
_ESTIMATORS: "weakref.WeakSet[SpeedEstimator]" = weakref.WeakSet()
_ESTIMATORS_LOCK = threading.Lock()


def speed_estimators() -> list["SpeedEstimator"]:
    """Every estimator of this process, for waiting until no measurement runs."""
    with _ESTIMATORS_LOCK:
        return list(_ESTIMATORS)


class SpeedEstimator:
    """Measures this machine once (kept in the run store's folder, and in memory) for epoch-time estimates."""

    def __init__(self, root: Path):
        self.path = Path(root) / CALIBRATION_FILE
        self._lock = threading.Lock()
        self._calibration: SpeedCalibration | None = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        with _ESTIMATORS_LOCK:
            _ESTIMATORS.add(self)

    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def calibration(self) -> SpeedCalibration | None:
        return self._calibration

    def start(self, allowed: bool = True) -> None:
        """Load the cached calibration or, if `allowed` (no run is training), measure in the background."""
        with self._lock:
            if self._calibration is not None or (self._thread is not None and self._thread.is_alive()):
                return
            if self.error is not None or not allowed:
                return
            self._thread = threading.Thread(target=self._measure, name="speed-calibration", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> SpeedCalibration | None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._calibration

    def _measure(self):
        try:
            key = _calibration_key()
            cached = read_json(self.path, default={})
            cached = cached if isinstance(cached, dict) else {}
            calibration = _MEASURED.get(key)
            if calibration is None and isinstance(cached.get(key), dict):
                try:
                    calibration = SpeedCalibration(**cached[key])
                except TypeError:  # written by another version: measure again
                    calibration = None
            if calibration is None:
                calibration = calibrate()
            if cached.get(key) != asdict(calibration):
                cached[key] = asdict(calibration)
                write_json(self.path, cached)
            _MEASURED[key] = self._calibration = calibration
        except Exception as error:  # an estimate is a nicety: never let it break the page
            logger.exception("Speed calibration failed")
            self.error = f"The speed of this machine could not be measured ({error})."


@dataclass(frozen=True)
class EpochEstimate:
    training_seconds: float
    validation_seconds: float
    epochs: int

    @property
    def epoch_seconds(self) -> float:
        return self.training_seconds + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        return self.epoch_seconds * self.epochs


def estimate_epoch(calibration: SpeedCalibration, multiply_adds: int, settings: TrainSettings) -> EpochEstimate:
    training, validation = calibration.epoch_seconds(multiply_adds, settings)
    return EpochEstimate(training, validation, settings.epochs)


