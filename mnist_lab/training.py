"""Training runs: settings, optimizers, live metrics, and the manager that queues, runs and stops them.

A run trains in a worker thread of the manager, never in Streamlit's script thread, and nothing
here calls Streamlit. The Keras callback only updates a `LiveState` in memory (a lock and a few
floats per batch); a publisher thread copies it to the run's live.json about twice a second, so
training never waits for the disk between batches. Each finished epoch is appended to history.json
and the model is saved atomically, so a killed server loses at most the epoch it was running.

The callback has ``async_safe = True``: on backends where Keras dispatches batch hooks on a
background thread (JAX, torch) it keeps that on, so reading the batch's loss never stalls the
accelerator. TensorFlow always runs batch hooks on the training thread and converts the logs to
Python floats every batch, even in a bare ``fit``; there the callback's own cost is what
benchmarks/training_overhead.py measures.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from mnist_lab import architectures, data, system
from mnist_lab.runs import ACTIVE_STATUSES, RunStore, now_iso, read_json, write_atomic, write_json

logger = logging.getLogger(__name__)

MAX_CONCURRENT_VARIABLE = "MNIST_LAB_MAX_CONCURRENT_RUNS"
MAX_QUEUED_VARIABLE = "MNIST_LAB_MAX_QUEUED_RUNS"
DEFAULT_MAX_CONCURRENT = 1
DEFAULT_MAX_QUEUED = 10

MAX_EPOCHS = 200
MAX_BATCH_SIZE = 4096
MIN_IMAGES = 10
DEFAULT_HOLDOUT = 5000
MAX_NAME_LENGTH = 80
VALIDATION_CHOICES = {
    "holdout": "Held-out training images (recommended)",
    "test": "The 10,000 test images (as the notebook did)",
}
TEST_VALIDATION_NOTE = ("Choosing epochs or settings by their test score and then reporting that score "
                        "flatters it: the test images are no longer unseen.")
QUICK_DEMO = {"train_size": 10_000, "epochs": 1}
# Points kept in a run's live curve (a batch every so often; the smoothing covers those in between).
MAX_CURVE_POINTS = 600
# Exponential smoothing of the per-batch curve: about the last 1 / (1 - 0.95) = 20 batches.
SMOOTHING = 0.95
PUBLISH_SECONDS = 0.5


# --- optimizers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer the lab offers: the registry below is the only place optimizers are defined."""

    key: str
    label: str
    default_learning_rate: float
    description: str

    def build(self, learning_rate: float):
        import keras

        if self.key == "adam":
            return keras.optimizers.Adam(learning_rate=learning_rate)
        if self.key == "adadelta":
            return keras.optimizers.Adadelta(learning_rate=learning_rate)
        if self.key == "sgd":
            return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
        raise ValueError(f"No builder for optimizer {self.key!r}.")


OPTIMIZERS: dict[str, OptimizerChoice] = {
    choice.key: choice
    for choice in (
        OptimizerChoice("adam", "Adam", 0.001,
                        "The notebook's choice: adapts each weight's step size; works well untuned."),
        OptimizerChoice("adadelta", "Adadelta", 1.0,
                        "Adapts step sizes from recent updates; Keras' classic MNIST example used it "
                        "with learning rate 1.0."),
        OptimizerChoice("sgd", "SGD with momentum 0.9", 0.01,
                        "Plain gradient descent that keeps 90 % of its last step: simple, needs a "
                        "well-chosen learning rate."),
    )
}


SCHEDULES: dict[str, str] = {
    "constant": "The same learning rate from the first step to the last, as the notebook trains.",
    "warmup-cosine": "Rises from 0 to the learning rate over the first tenth of the steps, then falls back to "
                     "0 along a cosine: careful first steps, big steps while the loss is high, fine ones at the end.",
}
WARMUP_FRACTION = 0.1


def learning_rate_schedule(settings: "TrainSettings"):
    """What the optimizer gets as its learning rate: a number, or a Keras schedule over all the steps."""
    if settings.schedule == "constant":
        return settings.learning_rate
    import keras

    total = settings.epochs * settings.steps_per_epoch()
    warmup = int(total * WARMUP_FRACTION)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total - warmup),
                                                  warmup_target=settings.learning_rate, warmup_steps=warmup)


# --- settings -------------------------------------------------------------------------------------

def _whole(value, what, minimum, maximum):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)) or value != int(value):
        raise ValueError(f"{what} must be a whole number, not {value!r}.")
    value = int(value)
    if not minimum <= value <= maximum:
        raise ValueError(f"{what} must be from {minimum:,} to {maximum:,}, not {value:,}.")
    return value


@dataclass(frozen=True)
class TrainSettings:
    """How to train. None means: the optimizer's default rate, all images, the default hold-out."""

    epochs: int = 12
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    train_size: int | None = None
    validation: str = "holdout"
    validation_size: int | None = None
    seed: int = 1
    augment: bool = False
    schedule: str = "constant"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)

    def resolve(self, train_available: int, test_available: int = 10_000) -> "TrainSettings":
        """Check every setting and fill in the defaults; raises ValueError saying what to change."""
        epochs = _whole(self.epochs, "Epochs", 1, MAX_EPOCHS)
        batch_size = _whole(self.batch_size, "Batch size", 1, MAX_BATCH_SIZE)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}.")
        learning_rate = self.learning_rate
        if learning_rate is None:
            learning_rate = OPTIMIZERS[self.optimizer].default_learning_rate
        if (isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
                or not math.isfinite(learning_rate) or not 0 < learning_rate <= 10):
            raise ValueError(f"The learning rate must be a number above 0 and at most 10, not {learning_rate!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown learning-rate schedule {self.schedule!r}; use one of: {', '.join(SCHEDULES)}.")
        if self.validation not in VALIDATION_CHOICES:
            raise ValueError(f"Validation must be one of: {', '.join(VALIDATION_CHOICES)}; not {self.validation!r}.")
        seed = _whole(self.seed, "The seed", 0, 2**31 - 1)
        if self.validation == "test":
            validation_size = test_available
            most = train_available
        else:
            validation_size = self.validation_size
            if validation_size is None:
                validation_size = default_holdout(train_available)
            validation_size = _whole(validation_size, "Held-out validation images", MIN_IMAGES,
                                     max(MIN_IMAGES, train_available - MIN_IMAGES))
            most = train_available - validation_size
        train_size = most if self.train_size is None else _whole(self.train_size, "Training images", MIN_IMAGES,
                                                                 train_available)
        if train_size > most:
            raise ValueError(
                f"{train_size:,} training images plus {validation_size:,} held out for validation is more than "
                f"the {train_available:,} training images there are: train on at most {most:,}, hold out "
                "fewer, or validate on the test images.")
        return replace(self, epochs=epochs, batch_size=batch_size, learning_rate=float(learning_rate),
                       train_size=train_size, validation_size=validation_size, seed=seed,
                       augment=bool(self.augment))

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_size / self.batch_size)


def default_holdout(train_available: int) -> int:
    """5,000 held-out images for MNIST's 60,000 (as Keras' classic 55,000/5,000 split); a sixth of fewer."""
    return max(MIN_IMAGES, min(DEFAULT_HOLDOUT, train_available // 6))


def settings_fields() -> tuple[str, ...]:
    return tuple(item.name for item in fields(TrainSettings))


def clean_run_name(name: str | None, architecture: dict, settings: TrainSettings) -> str:
    """The learner's name for a run (trimmed), or a descriptive default."""
    name = (name or "").strip()
    if not name:
        label = architecture.get("label") or architecture["name"]
        images = f"{settings.train_size // 1000}k" if settings.train_size >= 1000 else str(settings.train_size)
        return f"{label} · {settings.epochs} epoch{'s' if settings.epochs != 1 else ''} · {images} images"
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"The run name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}.")
    if any(not character.isprintable() for character in name):
        raise ValueError("The run name contains a control character (such as a line break): use plain text.")
    return name


# --- architectures --------------------------------------------------------------------------------

def preset_architecture(preset_id: str) -> dict:
    return {"name": preset_id, "source": "preset", "layers": architectures.preset_layers(preset_id)}


def saved_architecture(name: str) -> dict:
    from mnist_lab.architecture_store import ArchitectureStore

    return {"name": name, "source": "saved", "layers": ArchitectureStore().load(name)}


def custom_architecture(layers: list, label: str = "custom") -> dict:
    """An architecture that is neither a preset nor saved, e.g. the one being edited, or a file."""
    return {"name": "custom", "source": "custom", "layers": layers, "label": label or "custom"}


def saved_architecture_names() -> list[str]:
    """The saved architectures' names; none if the store is missing or unreadable."""
    try:
        from mnist_lab.architecture_store import ArchitectureStore

        return list(ArchitectureStore().list())
    except (ImportError, OSError, ValueError):
        return []


def architecture_from_argument(text: str) -> dict:
    """A preset id, a saved architecture's name, or the path of an exported architecture JSON file."""
    if text in architectures.PRESETS:
        return preset_architecture(text)
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        try:
            source = path.read_text()
        except OSError as error:
            raise ValueError(f"Cannot read the architecture file {text} ({error.strerror or error}).") from None
        name, layers = architectures.from_json(source)
        return custom_architecture(layers, label=name)
    if text in saved_architecture_names():
        return saved_architecture(text)
    raise ValueError(f"Unknown architecture {text!r}: use a preset ({', '.join(architectures.PRESETS)}), "
                     "a saved architecture's name, or the path of an architecture .json file.")


def preset_training_defaults(preset_id: str) -> dict:
    """The settings a preset recommends (Preset.training), limited to the settings the lab knows."""
    preset = architectures.PRESETS.get(preset_id)
    known = set(settings_fields())
    return {key: value for key, value in (preset.training if preset else {}).items() if key in known}


def check_architecture(architecture: dict) -> tuple[dict, architectures.ArchitectureReport]:
    """Validate an architecture dict; returns it with normalised layers, and its report."""
    if not isinstance(architecture, dict) or not isinstance(architecture.get("layers"), list):
        raise ValueError("An architecture is a dict with a 'layers' list.")
    if architecture.get("source") not in ("preset", "saved", "custom"):
        raise ValueError("An architecture's source must be 'preset', 'saved' or 'custom'.")
    layers = [architectures.normalize_layer(layer, number)
              for number, layer in enumerate(architecture["layers"], start=1)]
    report = architectures.analyze(layers)
    return {**architecture, "layers": layers}, report


# --- data -----------------------------------------------------------------------------------------

def split_indices(train_available: int, settings: TrainSettings) -> tuple[np.ndarray, np.ndarray | None]:
    """Which training images train and which validate (None: the test images validate); fixed by the seed."""
    order = np.random.default_rng(settings.seed).permutation(train_available)
    train = order[:settings.train_size]
    if settings.validation == "test":
        return train, None
    return train, order[settings.train_size:settings.train_size + settings.validation_size]


def prepare_arrays(mnist: data.Mnist, settings: TrainSettings) -> dict[str, np.ndarray]:
    """Float model inputs for one run; made when the run starts, never for a queued run."""
    train, validation = split_indices(len(mnist.x_train), settings)
    arrays = {
        "x_train": data.to_model_input(mnist.x_train[train]),
        "y_train": mnist.y_train[train].astype("int32"),
        "x_test": data.to_model_input(mnist.x_test),
        "y_test": mnist.y_test.astype("int32"),
    }
    if validation is None:
        arrays["x_validation"], arrays["y_validation"] = arrays["x_test"], arrays["y_test"]
    else:
        arrays["x_validation"] = data.to_model_input(mnist.x_train[validation])
        arrays["y_validation"] = mnist.y_train[validation].astype("int32")
    return arrays


# --- live state -----------------------------------------------------------------------------------

class StopRequested(Exception):
    """Raised inside fit, before the next batch starts, when a stop was asked for."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


DIVERGED_MESSAGE = ("The loss became NaN (not a number): training blew up, usually because the learning "
                    "rate is too high for this net. Try a learning rate 10 times lower.")


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class LiveState:
    """A run's progress, written by its training thread and read by pages, the CLI and live.json.

    Keras reports each metric as the mean over the epoch so far; the per-batch value is recovered
    from two consecutive means, then smoothed. Batch hooks may arrive on several threads and out of
    order (Keras' async dispatch), so they are buffered and applied in batch order.
    """

    def __init__(self, run_id: str, settings: TrainSettings, stop_event: threading.Event | None = None,
                 stop_file: Path | None = None):
        self.run_id = run_id
        self.settings = settings
        self.stop_event = stop_event or threading.Event()
        self.stop_file = stop_file
        self._changed = threading.Condition()
        self._version = 0
        self._steps = settings.steps_per_epoch()
        self._stride = max(1, math.ceil(self._steps * settings.epochs / MAX_CURVE_POINTS))
        self._phase = "queued"
        self._status = "queued"
        self._message = ""
        self._epoch = 0  # 0-based epoch being trained
        self._epochs_done = 0
        self._batch = 0  # batches finished in this epoch
        self._batches_done = 0
        self._batches_started = 0
        self._pending: dict[int, tuple[float, dict]] = {}
        self._previous_means = (0.0, 0.0)
        self._smoothed = [0.0, 0.0]
        self._smoothing_steps = 0
        self._curve: list[list] = []
        self._started: float | None = None
        self._epoch_started: float | None = None
        self._epoch_first_batch: tuple[float, int] | None = None
        self._last_batch_time: float | None = None
        self._seconds_per_batch: float | None = None
        self._validation_seconds: float | None = None
        self._diverged = False
        self._finished: float | None = None
        self._shared: tuple[float, dict] | None = None
        self.shutting_down = False

    # training thread -------------------------------------------------------------
    def _bump(self):
        self._version += 1
        self._changed.notify_all()

    def start(self):
        with self._changed:
            self._started = time.monotonic()
            self._phase, self._status = "starting", "running"
            self._bump()

    def set_phase(self, phase: str):
        with self._changed:
            self._phase = phase
            self._bump()

    def check_stop(self, count_batch: bool = True):
        """Called before each batch: raise if a stop was asked for (this process or the STOP file)."""
        if self._diverged:
            raise TrainingDiverged(DIVERGED_MESSAGE)
        if self.stop_event.is_set() or (self.stop_file is not None and self.stop_file.exists()):
            self.stop_event.set()
            raise StopRequested()
        if count_batch:
            with self._changed:
                self._batches_started += 1

    def begin_epoch(self, epoch: int):
        with self._changed:
            self._epoch, self._batch, self._phase = epoch, 0, "training"
            self._pending.clear()
            self._previous_means = (0.0, 0.0)
            self._epoch_started = time.monotonic()
            self._epoch_first_batch = None
            self._bump()

    def record_batch(self, batch: int, logs: dict | None):
        with self._changed:
            self._pending[batch] = (time.monotonic(), logs or {})
            while self._batch in self._pending:
                self._apply_batch(self._batch, *self._pending.pop(self._batch))
            self._bump()

    def _apply_batch(self, batch, when, logs):
        size, seen = self.settings.batch_size, self.settings.train_size
        before, after = min(batch * size, seen), min((batch + 1) * size, seen)
        means = (logs.get("loss"), logs.get("accuracy"))
        values = []
        for mean, previous in zip(means, self._previous_means):
            if mean is None or not math.isfinite(mean):
                values.append(None)
                continue
            values.append((after * mean - before * previous) / max(1, after - before))
        if means[0] is not None and not math.isfinite(means[0]):
            self._diverged = True
        self._previous_means = tuple(m if m is not None and math.isfinite(m) else 0.0 for m in means)
        self._smoothing_steps += 1
        correction = 1 - SMOOTHING ** self._smoothing_steps
        smoothed = []
        for index, value in enumerate(values):
            if value is not None:
                self._smoothed[index] = SMOOTHING * self._smoothed[index] + (1 - SMOOTHING) * value
            smoothed.append(self._smoothed[index] / correction if value is not None else None)
        self._batch = batch + 1
        self._batches_done += 1
        if self._epoch_first_batch is None:
            self._epoch_first_batch = (when, self._batch)
        elif self._batch > self._epoch_first_batch[1]:
            first_time, first_batch = self._epoch_first_batch
            self._seconds_per_batch = (when - first_time) / (self._batch - first_batch)
        self._last_batch_time = when
        if self._batch % self._stride == 0 or self._batch == self._steps:
            x = round(self._epoch + self._batch / self._steps, 4)
            self._curve.append([x] + [None if v is None else round(v, 5) for v in smoothed])

    def end_epoch(self, epoch: int, logs: dict, seconds: float) -> dict:
        """The history row of a finished epoch (train and validation means over the whole epoch)."""
        logs = logs or {}
        row = {"epoch": epoch + 1, "loss": _finite(logs.get("loss")), "accuracy": _finite(logs.get("accuracy")),
               "val_loss": _finite(logs.get("val_loss")), "val_accuracy": _finite(logs.get("val_accuracy")),
               "seconds": round(seconds, 3)}
        if row["loss"] is None:
            self._diverged = True
        with self._changed:
            if self._last_batch_time is not None:
                self._validation_seconds = max(0.0, time.monotonic() - self._last_batch_time)
            self._bump()
        return row

    def epoch_saved(self, epochs_done: int):
        with self._changed:
            self._epochs_done = epochs_done
            self._bump()

    def finish(self, status: str, message: str = ""):
        with self._changed:
            self._status, self._message, self._phase = status, message, "finished"
            self._finished = time.monotonic()
            self._bump()

    # readers ---------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        """Block until the state is newer than `version` (or the timeout); returns the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    def snapshot(self, max_age: float | None = None) -> dict:
        """A JSON-ready copy: progress, speed, time left, the smoothed per-batch curve.

        With `max_age`, a copy made less than that many seconds ago is returned instead: every page
        polling the run then shares one snapshot (and one chart) per interval. Do not modify it.
        """
        with self._changed:
            now = time.monotonic()
            if max_age is not None and self._shared is not None and now - self._shared[0] < max_age:
                return self._shared[1]
            end = self._finished or now
            elapsed = end - self._started if self._started is not None else 0.0
            epochs = self.settings.epochs
            remaining = None
            if self._seconds_per_batch is not None and self._status == "running":
                per_epoch = self._steps * self._seconds_per_batch + (self._validation_seconds or 0.0)
                remaining = ((self._steps - self._batch) * self._seconds_per_batch
                             + (epochs - self._epoch - 1) * per_epoch
                             + (self._validation_seconds or 0.0) * (self._phase == "training"))
            latest = self._curve[-1] if self._curve else [None, None, None]
            snapshot = {
                "run_id": self.run_id,
                "status": self._status,
                "message": self._message,
                "phase": self._phase,
                "epoch": self._epoch + 1 if self._status == "running" else self._epochs_done,
                "epochs": epochs,
                "epochs_done": self._epochs_done,
                "batch": self._batch,
                "batches": self._steps,
                "batch_size": self.settings.batch_size,
                "batches_done": self._batches_done,
                "batches_started": self._batches_started,
                "images_per_second": (self.settings.batch_size / self._seconds_per_batch
                                      if self._seconds_per_batch else None),
                "elapsed": round(elapsed, 2),
                "remaining": None if remaining is None else round(max(0.0, remaining), 1),
                "loss": latest[1],
                "accuracy": latest[2],
                "curve": [list(point) for point in self._curve],
                "updated": now_iso(),
                "version": self._version,
            }
            self._shared = (now, snapshot)
            return snapshot


@functools.cache
def live_metrics_class():
    """The Keras callback class, defined on first use so that importing this module stays light."""
    import keras

    class LiveMetrics(keras.callbacks.Callback):
        """Feeds a LiveState; checks for a stop before every batch; hands finished epochs on."""

        async_safe = True  # its batch-end hook only takes a lock: Keras may run it off the training thread

        def __init__(self, live: LiveState, on_epoch=None):
            super().__init__()
            self.live = live
            self.on_epoch = on_epoch
            self._epoch_started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_started = time.monotonic()
            self.live.begin_epoch(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            self.live.check_stop()

        def on_train_batch_end(self, batch, logs=None):
            self.live.record_batch(batch, logs)

        def on_test_begin(self, logs=None):
            self.live.set_phase("validating")

        def on_test_batch_begin(self, batch, logs=None):
            self.live.check_stop(count_batch=False)

        def on_epoch_end(self, epoch, logs=None):
            row = self.live.end_epoch(epoch, logs, time.monotonic() - self._epoch_started)
            if row["loss"] is None:
                raise TrainingDiverged(DIVERGED_MESSAGE)
            if self.on_epoch is not None:
                self.on_epoch(row)

    return LiveMetrics


# --- building and saving --------------------------------------------------------------------------

# Building a model and tracing its functions is not thread-safe with TensorFlow (keras-team/keras#20382,
# tensorflow/tensorflow#78338): a run holds this lock from building its model to the end of its first
# epoch (by then every step function is traced), the speed calibration holds it throughout, and the
# final test evaluation takes it again. Steady training, the bulk of the time, runs in parallel.
KERAS_SETUP_LOCK = threading.RLock()


class SetupHold:
    """The set-up lock as one run holds it: taken before building, given back after the first epoch."""

    def __init__(self, live: LiveState):
        self.live = live
        self.held = False

    def acquire(self):
        """Wait for the lock; a stop asked for meanwhile is honoured (StopRequested)."""
        while not KERAS_SETUP_LOCK.acquire(timeout=0.2):
            self.live.check_stop(count_batch=False)
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            KERAS_SETUP_LOCK.release()


def build_for_training(layers: list, settings: TrainSettings, name: str = "mnist_cnn"):
    """(model to save, model to fit): the same weights; the second adds augmentation when asked for.

    Seeding and building happen under the set-up lock: Keras' global seed decides initial weights and
    dropout, and building in two threads at once is unsafe.
    """
    import keras

    with KERAS_SETUP_LOCK:
        keras.utils.set_random_seed(settings.seed)
        model = architectures.build_model(layers, name)
        fit_model = model
        if settings.augment:
            from mnist_lab import augmentation

            fit_model = augmentation.with_augmentation(model, seed=settings.seed)
        fit_model.compile(optimizer=OPTIMIZERS[settings.optimizer].build(learning_rate_schedule(settings)),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, fit_model


def save_model_atomic(model, path: Path) -> None:
    """Save a .keras file so that a reader (or a crash) never sees half of it."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".saving-", suffix=".keras")
    os.close(handle)
    try:
        model.save(temporary)
        write_atomic(path, Path(temporary).read_bytes())
    finally:
        Path(temporary).unlink(missing_ok=True)


def readable_error(error: BaseException) -> str:
    """A failure as a learner can act on it; details go to the server log."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    name = type(error).__name__
    if isinstance(error, MemoryError) or "ResourceExhausted" in name or "out of memory" in str(error).lower():
        return ("Out of memory while training: use a smaller batch size, fewer training images or a smaller "
                f"net, or wait until other runs finish. ({name}: {text})")
    if isinstance(error, (data.DataError, architectures.ArchitectureError, TrainingDiverged)):
        return str(error)
    return f"Training failed: {name}: {text}"


def device_details() -> dict:
    """run.json's device fields for this process: device, backend, versions."""
    info = system.device_info()
    return {
        "device": info.description,
        "backend": info.backend,
        "versions": {"keras": info.keras_version, "backend": f"{info.backend} {info.framework_version}".strip(),
                     "python": platform.python_version()},
    }


# --- speed estimate -------------------------------------------------------------------------------

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


class SpeedEstimator:
    """Measures this machine once (kept in the run store's folder, and in memory) for epoch-time estimates."""

    def __init__(self, root: Path):
        self.path = Path(root) / CALIBRATION_FILE
        self._lock = threading.Lock()
        self._calibration: SpeedCalibration | None = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        with _PROCESS_LOCK:
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


def format_duration(seconds: float | None, compact: bool = False) -> str:
    """'45 s', '4 min 20 s', '1 h 05 min'; compact (for narrow figures): '45s', '4m 20s', '1h 05m'."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    second, minute, hour = ("s", "m", "h") if compact else (" s", " min", " h")
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}{second}"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}{minute} {seconds:02d}{second}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}{hour} {minutes:02d}{minute}"


# --- describing runs ------------------------------------------------------------------------------

TRAINING_SIZE_CHOICES = (1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
LEARNING_RATE_CHOICES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCH_SIZE_CHOICES = (16, 32, 64, 128, 256, 512, 1024)
SERIES = ("training batches (smoothed)", "training (epoch mean)", "validation (epoch mean)")
BATCH_NORMALIZATION_MOMENTUM = 0.99  # Keras' default: running averages move 1 % per batch


def training_size_choices(most: int) -> list[int]:
    """Round numbers of training images up to `most`, then `most` itself (all there are)."""
    return [size for size in TRAINING_SIZE_CHOICES if size < most] + [most]


def describe_settings(settings: dict) -> str:
    """One line: '12 epochs · batch 128 · Adam 0.001 · 55,000 images · validated on 5,000 held out · seed 1'."""
    optimizer = OPTIMIZERS.get(settings.get("optimizer"))
    validation = (f"validated on {settings.get('validation_size') or 0:,} held-out images"
                  if settings.get("validation") == "holdout" else "validated on the test images")
    parts = [f"{settings.get('epochs')} epoch{'s' if settings.get('epochs') != 1 else ''}",
             f"batch {settings.get('batch_size')}",
             f"{optimizer.label if optimizer else settings.get('optimizer')} {settings.get('learning_rate'):g}"
             if isinstance(settings.get("learning_rate"), (int, float)) else str(settings.get("optimizer")),
             f"{settings.get('train_size') or 0:,} training images", validation, f"seed {settings.get('seed')}"]
    if settings.get("schedule", "constant") != "constant":
        parts.insert(3, f"{settings['schedule']} schedule")
    if settings.get("augment"):
        parts.append("augmented")
    return " · ".join(parts)


def result_notes(meta: dict, history: list[dict]) -> list[str]:
    """What a learner may wonder about a finished run, explained."""
    notes = []
    settings = meta.get("settings") or {}
    layers = (meta.get("architecture") or {}).get("layers") or []
    last = history[-1] if history else {}
    accuracy, validation_accuracy = last.get("accuracy"), last.get("val_accuracy")
    batches = len(history) * math.ceil((settings.get("train_size") or 1) / (settings.get("batch_size") or 1))
    if (any(layer.get("type") == "BatchNormalization" for layer in layers) and accuracy is not None
            and validation_accuracy is not None and accuracy - validation_accuracy > 0.15 and batches < 1000):
        caught_up = 1 - BATCH_NORMALIZATION_MOMENTUM ** batches
        notes.append(
            f"Validation accuracy ({100 * validation_accuracy:.1f} %) is far below training accuracy "
            f"({100 * accuracy:.1f} %) after only {batches:,} batches. On images it does not train on, "
            "BatchNormalization uses running averages, which move 1 % per batch: they are only "
            f"{100 * caught_up:.0f} % of the way to the real values. More batches (more images or epochs, "
            "or a smaller batch size) close the gap.")
    return notes


def chart_rows(snapshot: dict, history: list[dict], metric: str) -> list[dict]:
    """One metric's points for a live chart: the smoothed per-batch training curve, and the
    per-epoch training and validation means (as the notebook plotted them)."""
    column = {"loss": 1, "accuracy": 2}[metric]
    rows = [{"epoch": point[0], "value": point[column], "series": SERIES[0]}
            for point in snapshot.get("curve") or [] if len(point) == 3 and point[column] is not None]
    for row in history:
        for series, key in ((SERIES[1], metric), (SERIES[2], f"val_{metric}")):
            if row.get(key) is not None:
                rows.append({"epoch": row["epoch"], "value": row[key], "series": series})
    return rows


def metric_chart(metric: str, epochs: int):
    """An altair chart of one metric over epochs (data added by chart_spec): a thin smoothed batch
    line, and the epoch means as dots and lines."""
    import altair as alt

    title = {"loss": "loss (cross-entropy)", "accuracy": "accuracy"}[metric]
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, max(1, epochs)]),
              axis=alt.Axis(tickMinStep=1))
    y = alt.Y("value:Q", title=title, scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".0%" if metric == "accuracy" else "~g"))
    color = alt.Color("series:N", title=None, scale=alt.Scale(domain=list(SERIES),
                                                              range=["#9ecae9", "#1f77b4", "#ff7f0e"]),
                      legend=alt.Legend(orient="top", direction="horizontal", labelLimit=200, columns=2,
                                        symbolSize=60, labelFontSize=11))
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("epoch:Q", format=".2f"),
               alt.Tooltip("value:Q", format=".2%" if metric == "accuracy" else ".4f")]
    base = alt.Chart().encode(x=x, y=y, color=color, tooltip=tooltip)
    batches = base.transform_filter(alt.datum.series == SERIES[0]).mark_line(strokeWidth=1.5)
    epochs_ = base.transform_filter(alt.datum.series != SERIES[0]).mark_line(point=True, strokeWidth=2)
    return alt.layer(batches, epochs_).properties(height=300)


@functools.lru_cache(maxsize=64)
def _chart_template(metric: str, epochs: int) -> str:
    spec = metric_chart(metric, epochs).to_dict()
    spec.pop("datasets", None)
    for layer in spec["layer"]:
        layer.pop("data", None)  # the layers share the chart's data
    return json.dumps(spec)


def chart_spec(snapshot: dict, history: list[dict], metric: str, epochs: int) -> dict:
    """A Vega-Lite spec of one live chart. Building it with altair takes tens of milliseconds, far too
    much once a second for every learner watching: the chart is built once per shape, the points added."""
    spec = json.loads(_chart_template(metric, epochs))
    spec["data"] = {"values": chart_rows(snapshot, history, metric)}
    return spec


# --- the manager ----------------------------------------------------------------------------------

class QueueFull(ValueError):
    """Too many runs are waiting; the message says what to do."""


@dataclass
class _Job:
    run_id: str
    architecture: dict
    settings: TrainSettings
    live: LiveState
    done: threading.Event = field(default_factory=threading.Event)


# Every job of this process, whichever manager runs it: so that `recover_interrupted` never marks a
# run that this process is still training, and tests can wait for a run started by a page.
_PROCESS_JOBS: dict[str, _Job] = {}
_PROCESS_LOCK = threading.Lock()


def _active_process_runs() -> set[str]:
    with _PROCESS_LOCK:
        return {run_id for run_id, job in _PROCESS_JOBS.items() if not job.done.is_set()}


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until no run of this process trains and no speed measurement runs; True if so in time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _PROCESS_LOCK:
        jobs = list(_PROCESS_JOBS.values())
        estimators = list(_ESTIMATORS)
    for job in jobs:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not job.done.wait(left):
            return False
    for estimator in estimators:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if estimator.wait(left) is None and estimator.running():
            return False
    return True


def _shut_down(timeout: float = 15.0) -> None:
    """At exit: stop the runs still training before the next batch, so that they end as interrupted
    with their finished epochs, rather than the process aborting inside TensorFlow."""
    with _PROCESS_LOCK:
        jobs = [job for job in _PROCESS_JOBS.values() if not job.done.is_set()]
    for job in jobs:
        job.live.shutting_down = True
        job.live.stop_event.set()
    wait_for_background(timeout)


def wait_for_run(run_id: str, timeout: float | None = None) -> bool:
    """Wait until a run trained by this process has ended; True if it has (or is not this process's)."""
    with _PROCESS_LOCK:
        job = _PROCESS_JOBS.get(run_id)
    return True if job is None else job.done.wait(timeout)


@functools.cache
def _register_exit_hook() -> None:
    atexit.register(_shut_down)


def _environment_limit(variable: str, default: int, minimum: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{variable} must be a whole number, not {text!r}.") from None
    if value < minimum:
        raise ValueError(f"{variable} must be at least {minimum}, not {value}.")
    return value


class TrainingManager:
    """Queues runs and trains at most `max_concurrent` at once in worker threads. Thread-safe.

    Shared by every session of the app (one per process and run folder). Creating it marks runs
    whose process died as interrupted. A queued run holds no model and no copy of the data.
    """

    def __init__(self, store: RunStore | None = None, max_concurrent: int | None = None,
                 max_queued: int | None = None, load_data=data.load_mnist):
        self.store = store or RunStore()
        self.max_concurrent = max_concurrent or _environment_limit(MAX_CONCURRENT_VARIABLE, DEFAULT_MAX_CONCURRENT, 1)
        self.max_queued = (max_queued if max_queued is not None
                           else _environment_limit(MAX_QUEUED_VARIABLE, DEFAULT_MAX_QUEUED, 0))
        self._load_data = load_data
        self._lock = threading.Lock()
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: dict[str, _Job] = {}
        self.peak_running = 0
        self.speed = SpeedEstimator(self.store.root)
        self.recovered = self.store.recover_interrupted(alive_run_ids=_active_process_runs())
        _register_exit_hook()
        self._list_cache: tuple[float, list[dict]] = (0.0, [])

    # submitting ------------------------------------------------------------------
    def data_sizes(self) -> tuple[int, int]:
        mnist = self._load_data()
        return len(mnist.x_train), len(mnist.x_test)

    def prepare(self, architecture: dict, settings: TrainSettings | dict, name: str | None = None):
        """Validate a request without starting it: (architecture, report, resolved settings, name)."""
        if isinstance(settings, dict):
            settings = TrainSettings.from_dict(settings)
        architecture, report = check_architecture(architecture)
        settings = settings.resolve(*self.data_sizes())
        return architecture, report, settings, clean_run_name(name, architecture, settings)

    def submit(self, architecture: dict, settings: TrainSettings | dict, name: str | None = None) -> str:
        """Store a new run and train it now or queue it; returns its id.

        Raises ValueError (bad settings or architecture), QueueFull, data.DataError.
        """
        architecture, report, settings, name = self.prepare(architecture, settings, name)
        with self._lock:
            if len(self._running) >= self.max_concurrent and len(self._queue) >= self.max_queued:
                raise QueueFull(
                    f"The training queue is full: {len(self._running)} run(s) training and {len(self._queue)} "
                    "waiting. Try again when one has finished (a teacher can allow more with "
                    f"{MAX_QUEUED_VARIABLE}).")
            meta = self.store.create(name, architecture, settings.as_dict(), parameters=report.total_parameters,
                                     multiply_adds=report.multiply_adds, device="", backend="", versions={})
            run_id = meta["id"]
            live = LiveState(run_id, settings, stop_file=self.store.path(run_id) / "STOP")
            job = _Job(run_id, architecture, settings, live)
            with _PROCESS_LOCK:
                _PROCESS_JOBS[run_id] = job
            if len(self._running) < self.max_concurrent:
                self._start_worker(job)
            else:
                self._queue.append(job)
        return run_id

    def _start_worker(self, job: _Job) -> None:
        """Called with the lock held."""
        self._running[job.run_id] = job
        self.peak_running = max(self.peak_running, len(self._running))
        threading.Thread(target=self._worker, args=(job,), name=f"train-{job.run_id}", daemon=True).start()

    def _worker(self, job: _Job) -> None:
        while job is not None:
            try:
                self._train(job)
            finally:
                job.done.set()
                with self._lock:
                    self._running.pop(job.run_id, None)
                    job = self._queue.popleft() if self._queue else None
                    if job is not None:
                        self._running[job.run_id] = job
                        self.peak_running = max(self.peak_running, len(self._running))

    # controlling -----------------------------------------------------------------
    def stop(self, run_id: str) -> None:
        """Stop a run before its next batch (or take it out of the queue). Finished epochs are kept."""
        with self._lock:
            queued = next((job for job in self._queue if job.run_id == run_id), None)
            if queued is not None:
                self._queue.remove(queued)
            running = self._running.get(run_id)
        if queued is not None:
            message = "Stopped while waiting in the queue: it never started."
            self.store.update(run_id, status="stopped", finished=now_iso(), message=message)
            queued.live.finish("stopped", message)
            self.store.write_live(run_id, queued.live.snapshot())
            queued.done.set()
            return
        if running is not None:
            running.live.stop_event.set()
        meta = self.store.get(run_id)
        if meta["status"] in ACTIVE_STATUSES:
            self.store.request_stop(run_id)  # also reaches a run trained by another process (the CLI)

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or the timeout passed (False)."""
        return wait_for_run(run_id, timeout)

    # reading ---------------------------------------------------------------------
    def live(self, run_id: str) -> dict:
        """The run's live progress: from memory if this process trains it, else its live.json."""
        with _PROCESS_LOCK:
            job = _PROCESS_JOBS.get(run_id)
        if job is not None and not job.done.is_set():
            return job.live.snapshot(max_age=PUBLISH_SECONDS)
        return self.store.live(run_id)

    def live_state(self, run_id: str) -> LiveState | None:
        with _PROCESS_LOCK:
            job = _PROCESS_JOBS.get(run_id)
        return job.live if job is not None else None

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None if the run is not waiting here."""
        with self._lock:
            for position, job in enumerate(self._queue, start=1):
                if job.run_id == run_id:
                    return position
        return None

    def counts(self) -> dict:
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue),
                    "max_concurrent": self.max_concurrent, "max_queued": self.max_queued}

    def is_training(self) -> bool:
        with self._lock:
            return bool(self._running)

    def runs(self, max_age: float = 1.0) -> list[dict]:
        """The store's runs, newest first; shared by all sessions and re-read at most every `max_age` s."""
        with self._lock:
            stamp, runs = self._list_cache
            if time.monotonic() - stamp < max_age:
                return [dict(meta) for meta in runs]
        runs = self.store.list()
        with self._lock:
            self._list_cache = (time.monotonic(), runs)
        return [dict(meta) for meta in runs]

    def estimate(self, multiply_adds: int, settings: TrainSettings) -> EpochEstimate | None:
        """Seconds per epoch on this machine; None until the speed is known (measuring starts here)."""
        self.speed.start(allowed=not self.is_training())
        calibration = self.speed.calibration()
        return None if calibration is None else estimate_epoch(calibration, multiply_adds, settings)

    # the worker ------------------------------------------------------------------
    def _train(self, job: _Job) -> None:
        run_id, live, settings, store = job.run_id, job.live, job.settings, self.store
        if live.stop_event.is_set() or store.stop_requested(run_id):
            message = "Stopped before it started."
            store.update(run_id, status="stopped", finished=now_iso(), message=message)
            live.finish("stopped", message)
            store.write_live(run_id, live.snapshot())
            return
        live.start()
        publisher = LivePublisher(store, run_id, live)
        hold = SetupHold(live)
        status, message = "failed", ""
        try:
            store.update(run_id, status="running", started=now_iso(), pid=os.getpid())
            store.update(run_id, **device_details())
            hold.acquire()
            arrays = prepare_arrays(self._load_data(), settings)
            model, fit_model = build_for_training(job.architecture["layers"], settings, store.get(run_id)["name"])
            outcome = fit_epochs(store, run_id, live, model, fit_model, arrays, settings, setup_hold=hold)
            status, message = outcome.status, outcome.message
            if outcome.history and status != "failed":
                live.set_phase("testing")
                with KERAS_SETUP_LOCK:
                    store.update(run_id, **test_scores(outcome, model, fit_model, arrays, settings))
        except StopRequested:
            status, message = "stopped", "Stopped before it started training."
        except Exception as error:
            logger.exception("Run %s failed", run_id)
            status, message = "failed", readable_error(error)
        finally:
            hold.release()
            if live.shutting_down:
                status = "interrupted"
                message = (f"The server shut down during this run; {len(store.history(run_id))} finished "
                           "epoch(s) kept.")
            try:
                store.update(run_id, status=status, message=message, finished=now_iso())
            finally:
                live.finish(status, message)
                publisher.close()


class LivePublisher:
    """Copies a LiveState to the run's live.json every PUBLISH_SECONDS while it changes, off the
    training thread, so that pages of other processes (and a restarted server) see the progress."""

    def __init__(self, store: RunStore, run_id: str, live: LiveState):
        self.store, self.run_id, self.live = store, run_id, live
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"live-{run_id}", daemon=True)
        self._thread.start()

    def _write(self):
        try:
            self.store.write_live(self.run_id, self.live.snapshot())
        except OSError:
            logger.exception("Could not write the live state of run %s", self.run_id)

    def _loop(self):
        version = -1
        while not self._closed.wait(PUBLISH_SECONDS):
            if self.live.version != version:
                version = self.live.version
                self._write()

    def close(self):
        """Stop publishing and write the final state."""
        self._closed.set()
        self._thread.join()
        self._write()


@dataclass
class FitOutcome:
    status: str  # completed, stopped or failed
    message: str
    history: list[dict]
    epoch_weights: list | None  # the weights saved with the last finished epoch


def fit_epochs(store: RunStore, run_id: str, live: LiveState, model, fit_model, arrays: dict,
               settings: TrainSettings, callback_class=None, setup_hold: SetupHold | None = None) -> FitOutcome:
    """The app's training path: fit with the live-metrics callback; after each epoch save the model
    (atomically) and append the epoch to the history. A stop or a NaN loss ends it cleanly.
    `setup_hold` is given back once the first epoch (and so all tracing) is done."""
    history: list[dict] = []
    saved: list = [None]

    def on_epoch(row):
        save_model_atomic(model, store.model_path(run_id))
        store.append_epoch(run_id, row)
        history.append(row)
        saved[0] = model.get_weights()
        live.epoch_saved(len(history))
        if setup_hold is not None:
            setup_hold.release()

    callback = (callback_class or live_metrics_class())(live, on_epoch)
    live.set_phase("training")
    try:
        fit_model.fit(arrays["x_train"], arrays["y_train"], batch_size=settings.batch_size, epochs=settings.epochs,
                      validation_data=(arrays["x_validation"], arrays["y_validation"]), callbacks=[callback],
                      verbose=0, shuffle=True)
        return FitOutcome("completed", "", history, saved[0])
    except StopRequested:
        if history:
            model.set_weights(saved[0])  # back to the last finished epoch: the saved model
            message = (f"Stopped by request during epoch {len(history) + 1}; the model after epoch "
                       f"{len(history)} is kept.")
        else:
            message = "Stopped before the first epoch ended: there is no model to keep."
        return FitOutcome("stopped", message, history, saved[0])
    except TrainingDiverged:
        return FitOutcome("failed", DIVERGED_MESSAGE, history, saved[0])


def test_scores(outcome: FitOutcome, model, fit_model, arrays: dict, settings: TrainSettings) -> dict:
    """test_loss and test_accuracy of the kept model on the test images.

    When the test images were the validation set, the last epoch already measured them.
    """
    if settings.validation == "test":
        last = outcome.history[-1]
        return {"test_loss": last["val_loss"], "test_accuracy": last["val_accuracy"]}
    loss, accuracy = fit_model.evaluate(arrays["x_test"], arrays["y_test"], batch_size=settings.batch_size, verbose=0)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}


def run_summary(store: RunStore, run_id: str) -> dict:
    """The one-line JSON result of a run, as the command line prints it."""
    meta = store.get(run_id)
    seconds = [value for value in meta.get("epoch_seconds") or [] if isinstance(value, (int, float))]
    return {
        "run_id": run_id,
        "name": meta.get("name"),
        "status": meta.get("status"),
        "message": meta.get("message") or "",
        "architecture": (meta.get("architecture") or {}).get("name"),
        "test_accuracy": meta.get("test_accuracy"),
        "test_loss": meta.get("test_loss"),
        "epochs": meta.get("epochs_done", 0),
        "seconds_per_epoch": round(statistics.median(seconds), 3) if seconds else None,
        "device": meta.get("device"),
        "model": str(store.model_path(run_id)) if store.has_model(run_id) else None,
    }


def summary_json(store: RunStore, run_id: str) -> str:
    return json.dumps(run_summary(store, run_id))
