"""Speed estimates: this machine's training speed, measured once on three reference nets, and the time a run
of a net takes from it: start-up (reading the images, building the net, Keras preparing its first batch),
each epoch (training batches, then validation) and the end (test images, BatchNormalization's
re-estimation).

A batch costs a fixed overhead, plus per image a price per multiply-add (convolutions and dense layers)
and a price per value a layer outputs (every layer writes its output to memory, and for BatchNormalization,
Dropout and pooling that is most of the work: the notebook's 7-layer net spends more time there than its
multiply-adds say).

The start-up is measured in a fresh process, as a run's worker meets it: the first net a process builds
pays the backend's one-time start as well, seconds that a process which has trained before no longer sees.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mnist_lab.architecture.report import ArchitectureReport, analyze
from mnist_lab.evaluation import batch_normalization
from mnist_lab.runs import now_iso, read_json, write_json
from mnist_lab.training.fitting import BATCH_NORMALIZATION_IMAGES, KERAS_SETUP_LOCK, build_for_training, device_details
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)


CALIBRATION_FILE = ".speed-calibration.json"
CALIBRATION_VERSION = 4  # calibrations of another version are measured again
CALIBRATION_BATCH = 32  # the quick demo's batch size
TEST_IMAGES = 10_000
EVALUATION_REPEATS = 4  # evaluation batches are timed over this many passes of the training batches
# Three reference nets: one almost free (the per-batch overhead), one dominated by multiply-adds, one by the
# values its layers write (BatchNormalization, Dropout and pooling on a wide image).
_LIGHT_NET = [{"type": "Conv2D", "filters": 8, "kernel_size": [3, 3]}, {"type": "MaxPooling2D"}, {"type": "Flatten"}]
_HEAVY_NET = [{"type": "Conv2D", "filters": 32, "kernel_size": [5, 5], "padding": "same"},
              {"type": "Conv2D", "filters": 64, "kernel_size": [5, 5], "padding": "same"},
              {"type": "MaxPooling2D", "pool_size": [4, 4]}, {"type": "Flatten"}]
_WIDE_NET = [{"type": "Conv2D", "filters": 64, "kernel_size": [1, 1]}, {"type": "BatchNormalization", "axis": 1},
             {"type": "Dropout", "rate": 0.25}, {"type": "MaxPooling2D", "pool_size": [1, 1]},
             {"type": "BatchNormalization", "axis": 1}, {"type": "Dropout", "rate": 0.25},
             {"type": "MaxPooling2D", "pool_size": [4, 4]}, {"type": "Flatten"}]
_REFERENCE_NETS = ((_LIGHT_NET, 12), (_HEAVY_NET, 3), (_WIDE_NET, 4))  # (layers, timed batches)


@dataclass(frozen=True)
class NetWork:
    """What one image costs a net: multiply-adds, values written by its layers, and its number of layers."""

    multiply_adds: int
    values: int = 0
    layers: int = 0
    batch_normalization: bool = False

    @classmethod
    def of(cls, net) -> "NetWork":
        """From an ArchitectureReport (or a layer list); a bare number is a count of multiply-adds."""
        if isinstance(net, NetWork):
            return net
        if isinstance(net, (int, float)):
            return cls(int(net))
        report = net if isinstance(net, ArchitectureReport) else analyze(net)
        return cls(report.multiply_adds, sum(math.prod(layer.output_shape) for layer in report.layers),
                   len(report.layers), any(layer.type == "BatchNormalization" for layer in report.layers))


@dataclass(frozen=True)
class SpeedCalibration:
    """This machine's training speed: time per batch = fixed cost + images x (multiply-adds x rate + values
    x rate); a run starts in `startup_seconds` + `startup_seconds_per_layer` x layers."""

    batch_seconds: float
    seconds_per_multiply_add: float
    evaluation_batch_seconds: float
    evaluation_seconds_per_multiply_add: float
    device: str
    measured: str
    seconds_per_value: float = 0.0
    evaluation_seconds_per_value: float = 0.0
    startup_seconds: float = 0.0
    startup_seconds_per_layer: float = 0.0
    version: int = 0

    def batch_seconds_of(self, work: NetWork, images: int, evaluation: bool = False) -> float:
        if evaluation:
            return (self.evaluation_batch_seconds + images * (work.multiply_adds * self.evaluation_seconds_per_multiply_add
                                                              + work.values * self.evaluation_seconds_per_value))
        return self.batch_seconds + images * (work.multiply_adds * self.seconds_per_multiply_add
                                              + work.values * self.seconds_per_value)

    def _pass_seconds(self, work: NetWork, images: int, batch_size: int, evaluation: bool) -> float:
        full, rest = divmod(images, batch_size)
        return (full * self.batch_seconds_of(work, batch_size, evaluation)
                + (self.batch_seconds_of(work, rest, evaluation) if rest else 0.0))

    def epoch_seconds(self, net, settings: TrainSettings) -> tuple[float, float]:
        """(training, validation) seconds of one epoch of a net (a report, or its multiply-adds per image)."""
        work = NetWork.of(net)
        return (self._pass_seconds(work, settings.train_size, settings.batch_size, False),
                self._pass_seconds(work, settings.validation_size, settings.batch_size, True))

    def startup(self, net) -> float:
        """From pressing Train to the end of the first batch, less that batch: reading the images, building
        the net, and Keras tracing its training and evaluation steps (more layers, more to trace)."""
        return self.startup_seconds + NetWork.of(net).layers * self.startup_seconds_per_layer

    def finish(self, net, settings: TrainSettings) -> float:
        """After the last epoch: the test images, and for a short run of a net with BatchNormalization its
        statistics measured again and the test images once more."""
        work = NetWork.of(net)
        test = 0.0 if settings.validation == "test" else self._pass_seconds(work, TEST_IMAGES, settings.batch_size, True)
        batches = settings.epochs * settings.steps_per_epoch()
        if work.batch_normalization and batch_normalization.lag(batches) >= batch_normalization.BATCH_NORMALIZATION_LAG_LIMIT:
            test = 2 * test + self._pass_seconds(work, BATCH_NORMALIZATION_IMAGES, 256, True)
        return test


def _time_batches(layers, batches, seed=0):
    """Seconds per training batch and per evaluation batch of one net after a warm-up, and the seconds the
    warm-up (building, tracing and a first batch of each) took beyond those batches."""
    settings = TrainSettings(batch_size=CALIBRATION_BATCH, train_size=CALIBRATION_BATCH * batches,
                             validation_size=CALIBRATION_BATCH, seed=seed).resolve(10**6)
    rng = np.random.default_rng(seed)
    images = rng.random((CALIBRATION_BATCH * batches, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, len(images)).astype("int32")
    first = images[:CALIBRATION_BATCH], labels[:CALIBRATION_BATCH]
    start = time.perf_counter()
    model, _ = build_for_training(layers, settings, "calibration")
    model.fit(*first, batch_size=CALIBRATION_BATCH, epochs=1, verbose=0, validation_data=first)
    warm_up = time.perf_counter() - start
    training = _quickest(lambda: model.fit(images, labels, batch_size=CALIBRATION_BATCH, epochs=1,
                                           verbose=0)) / batches
    # Evaluation is cheap per batch, so the call's own fixed cost (its dataset, its iterator) would weigh on
    # a few batches far more than on a test pass of 313: it is timed over EVALUATION_REPEATS times the batches.
    many_images, many_labels = (np.concatenate([array] * EVALUATION_REPEATS) for array in (images, labels))
    evaluation = _quickest(lambda: model.evaluate(many_images, many_labels, batch_size=CALIBRATION_BATCH,
                                                  verbose=0)) / (batches * EVALUATION_REPEATS)
    return training, evaluation, max(0.0, warm_up - training - evaluation)


def _quickest(call, times: int = 2) -> float:
    """The least seconds of a few calls: another program's moment of load only ever adds time, and this
    calibration is kept for good, so one slow moment must not make every estimate of this machine slow."""
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def _solve(works: list[NetWork], seconds: list[float]) -> tuple[float, float, float]:
    """(fixed, per multiply-add, per value) from per-batch seconds of the reference nets: no rate below 0."""
    rows = np.array([[1.0, work.multiply_adds * CALIBRATION_BATCH, work.values * CALIBRATION_BATCH]
                     for work in works])
    scale = rows.max(axis=0)
    solution, *_ = np.linalg.lstsq(rows / scale, np.array(seconds), rcond=None)
    fixed, per_multiply_add, per_value = (solution / scale).tolist()
    per_multiply_add, per_value = max(per_multiply_add, 1e-15), max(per_value, 0.0)
    fixed = max(0.0, min(seconds[0] - CALIBRATION_BATCH * (works[0].multiply_adds * per_multiply_add
                                                            + works[0].values * per_value), fixed))
    return fixed, per_multiply_add, per_value


def _data_seconds() -> float:
    """Reading the images and making the model inputs, as a worker does when a run starts (0 without data)."""
    from mnist_lab import data
    from mnist_lab.training.fitting import prepare_arrays

    try:
        start = time.perf_counter()
        path = os.environ.get(data.DATA_VARIABLE)
        mnist = data.load_npz(path) if path else data.load_mnist()  # a worker process reads the file afresh
        prepare_arrays(mnist, TrainSettings(train_size=10_000).resolve(len(mnist.x_train), len(mnist.x_test)))
        return time.perf_counter() - start
    except Exception:  # no data here: the page says so elsewhere
        return 0.0


def _warm_up_seconds(layers) -> float:
    """Building a net and its first training and evaluation batch, less those batches' own work: the
    tracing a run pays before its first batch."""
    return _time_batches(layers, 1)[2]


def measure_startup() -> dict:
    """The start-up of a run as a worker process meets it, measured in this (fresh) process: reading the
    images, then the lightest and the widest reference net warmed up, then the lightest again. The first
    net of a process also pays the backend's one-time start (its first graph, thread pools), which a
    process that has trained before does not: that is why a fresh process measures it."""
    import keras  # noqa: F401 - untimed: a worker has imported Keras before its run arrives

    data_seconds = _data_seconds()
    first = _warm_up_seconds(_LIGHT_NET)
    wide = _warm_up_seconds(_WIDE_NET)
    light = _warm_up_seconds(_LIGHT_NET)
    return {"data": data_seconds, "first": first, "light": light, "wide": wide}


_MEASURING: set[subprocess.Popen] = set()  # the measuring processes this process waits on now
_MEASURING_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set at exit: a measurement cut short then is no failure to report


def _in_fresh_process(code: str, *args: str, timeout: float = 600,
                      own_group: bool = False) -> subprocess.CompletedProcess:
    """Python `code` in a new process that imports this package from this checkout; its JSON answer is
    the last line it prints. With `own_group`, the process and every process it starts form a group of
    their own, which `stop_measuring` ends together."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, "-c", "from mnist_lab import system; system.configure_gpu_memory(); "
                                + code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=path), start_new_session=own_group)
    with _MEASURING_LOCK:
        _MEASURING.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        with _MEASURING_LOCK:
            _MEASURING.discard(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def stop_measuring() -> None:
    """At exit: end every measuring process and those it started, rather than wait for them (a calibration
    takes up to a minute on a loaded machine: a server stopped with Ctrl-C waited for it) or leave them
    running behind this process."""
    _STOPPING.set()
    with _MEASURING_LOCK:
        processes = list(_MEASURING)
    for process in processes:
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass  # it has just ended


def _startup_in_fresh_process() -> dict | None:
    """`measure_startup` in a new Python process, as the process executor starts a worker (None if it
    could not run: the in-process measurement stands in)."""
    code = "import json; from mnist_lab.training.speed import measure_startup; print(json.dumps(measure_startup()))"
    try:
        done = _in_fresh_process(code)
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def calibrate() -> SpeedCalibration:
    """Time a few batches of three reference nets and fit the costs of a batch; measure the start-up in a
    fresh process, as a run's worker meets it."""
    works = [NetWork.of(layers) for layers, _ in _REFERENCE_NETS]
    with KERAS_SETUP_LOCK:
        timings = [_time_batches(layers, batches) for layers, batches in _REFERENCE_NETS]
    batch_seconds, rate, value_rate = _solve(works, [timing[0] for timing in timings])
    evaluation_batch_seconds, evaluation_rate, evaluation_value_rate = _solve(works, [timing[1] for timing in timings])
    startup = _startup_in_fresh_process()
    if startup is None:  # the warm-ups of this process, which has paid the one-time start already
        startup = {"data": _data_seconds(), "first": timings[0][2], "light": timings[0][2], "wide": timings[2][2]}
    # Tracing grows with the layers: a line through the lightest and the widest reference net, warmed up
    # after the process' first net; the first net's extra is the one-time start, paid by every worker.
    light_layers, wide_layers = works[0].layers, works[2].layers
    per_layer = max(0.0, (startup["wide"] - startup["light"]) / (wide_layers - light_layers))
    fixed = max(0.0, startup["first"] - per_layer * light_layers) + startup["data"]
    return SpeedCalibration(batch_seconds, rate, evaluation_batch_seconds, evaluation_rate,
                            device=device_details()["device"], measured=now_iso(), seconds_per_value=value_rate,
                            evaluation_seconds_per_value=evaluation_value_rate, startup_seconds=fixed,
                            startup_seconds_per_layer=per_layer, version=CALIBRATION_VERSION)


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
        """Measured in a process of its own: in the server's, importing Keras and tracing the reference
        nets held the interpreter lock from the event loop, while a class opened the Train page at once,
        for seconds (docs/performance.md)."""
        try:
            if _MEASURED:  # one machine, one speed, whatever the run folder
                key, calibration = next(iter(_MEASURED.items()))
                keep_calibration(self.path, key, calibration)
            else:
                key, calibration = _calibration_in_fresh_process(self.path)
            _MEASURED[key] = self._calibration = calibration
        except Exception as error:  # an estimate is a nicety: never let it break the page
            if not _STOPPING.is_set():  # cut short at exit, on purpose, is no failure to report
                logger.exception("Speed calibration failed")
            self.error = f"The speed of this machine could not be measured ({error})."


def keep_calibration(path: Path, key: str, calibration: SpeedCalibration) -> None:
    """Write the calibration under its key into the calibration file at `path`, unless it is there already."""
    cached = read_json(path, default={})
    cached = cached if isinstance(cached, dict) else {}
    if cached.get(key) != asdict(calibration):
        cached[key] = asdict(calibration)
        write_json(path, cached)


def measured_calibration(path: Path) -> tuple[str, SpeedCalibration]:
    """(key, calibration) of this machine: the one kept at `path` if it is of this version, else measured
    now and kept there. Imports Keras and trains: the server runs it in a fresh process."""
    key = _calibration_key()
    cached = read_json(Path(path), default={})
    stored = cached.get(key) if isinstance(cached, dict) else None
    calibration = None
    if isinstance(stored, dict):
        try:
            calibration = SpeedCalibration(**stored)
        except TypeError:  # written by another version: measure again
            calibration = None
    if calibration is None or calibration.version != CALIBRATION_VERSION:
        calibration = calibrate()
    keep_calibration(Path(path), key, calibration)
    return key, calibration


def _calibration_in_fresh_process(path: Path) -> tuple[str, SpeedCalibration]:
    code = ("import json, sys; from dataclasses import asdict; "
            "from mnist_lab.training.speed import measured_calibration; "
            "key, calibration = measured_calibration(sys.argv[1]); print(json.dumps([key, asdict(calibration)]))")
    done = _in_fresh_process(code, str(path), timeout=900, own_group=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"the measuring process ended with {done.returncode}")
    key, values = json.loads(done.stdout.strip().splitlines()[-1])
    return key, SpeedCalibration(**values)


@dataclass(frozen=True)
class EpochEstimate:
    training_seconds: float
    validation_seconds: float
    epochs: int
    startup_seconds: float = 0.0
    finish_seconds: float = 0.0

    @property
    def epoch_seconds(self) -> float:
        return self.training_seconds + self.validation_seconds

    @property
    def total_seconds(self) -> float:
        """Every epoch, without the start and the end."""
        return self.epoch_seconds * self.epochs

    @property
    def run_seconds(self) -> float:
        """From pressing Train to the test accuracy: start-up, every epoch, the end."""
        return self.startup_seconds + self.total_seconds + self.finish_seconds


def estimate_epoch(calibration: SpeedCalibration, net, settings: TrainSettings) -> EpochEstimate:
    """The estimate for a net (its ArchitectureReport, or only its multiply-adds per image) and settings."""
    training, validation = calibration.epoch_seconds(net, settings)
    return EpochEstimate(training, validation, settings.epochs, calibration.startup(net),
                         calibration.finish(net, settings))
