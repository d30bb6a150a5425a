"""A run's live progress: what the Keras callback records batch by batch, the snapshot pages and the command
line read, and the publisher that copies it to the run's live.json. The callback only takes a lock and
updates a few floats per batch, so training never waits for a page or the disk."""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from pathlib import Path

from mnist_lab.errors import LabError
from mnist_lab.runs import RunStatus, RunStore, now_iso
from mnist_lab.training.phases import NO_HOLD, HoldPoint, Phase, PhaseHold
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)

# Points kept in a run's live curve (a batch every so often; the smoothing covers those in between).
MAX_CURVE_POINTS = 600
# Exponential smoothing of the per-batch curve: about the last 1 / (1 - 0.95) = 20 batches.
SMOOTHING = 0.95
PUBLISH_SECONDS = 0.5


class StopRequested(Exception):
    """Raised inside fit, before the next batch starts, when a stop was asked for."""


class TrainingDiverged(LabError):
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
        self._phase = Phase.QUEUED.value
        self._status = RunStatus.QUEUED
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
        self._first_batch_done: float | None = None  # when the first batch finished: start-up ends there
        self._epoch_started: float | None = None
        self._epoch_first_batch: tuple[float, int] | None = None
        self._last_batch_time: float | None = None
        self._seconds_per_batch: float | None = None
        self._validation_seconds: float | None = None
        self._diverged = False
        self._finished: float | None = None
        self._shared: tuple[float, dict] | None = None
        self.shutting_down = False
        self._stop_asked_at: int | None = None  # batches started when a stop was asked for

    # training thread -------------------------------------------------------------
    def _bump(self):
        self._version += 1
        self._changed.notify_all()

    def start(self):
        with self._changed:
            self._started = time.monotonic()
            self._phase, self._status = Phase.STARTING.value, RunStatus.RUNNING
            self._bump()

    def set_phase(self, phase: str):
        with self._changed:
            self._phase = self._first_batch_pending(phase)
            self._bump()

    def _first_batch_pending(self, phase: str) -> str:
        """Training before any batch has finished is still starting: Keras prepares its training step
        (traces it into a graph) and runs the first batch, which takes seconds for a large net."""
        return Phase.FIRST_BATCH.value if phase == Phase.TRAINING and self._batches_done == 0 else str(phase)

    def request_stop(self, shutting_down: bool = False):
        """Ask for a stop before the next batch; `shutting_down`: the server is going away (interrupted)."""
        with self._changed:
            if self._stop_asked_at is None:
                self._stop_asked_at = self._batches_started
            self.shutting_down = self.shutting_down or shutting_down
        self.stop_event.set()

    def stop_asked(self) -> bool:
        """Whether a stop was asked for, in this process or through the STOP file (another process)."""
        if self.stop_event.is_set() or (self.stop_file is not None and self.stop_file.exists()):
            self.stop_event.set()
            return True
        return False

    def check_stop(self, count_batch: bool = True):
        """Called before each batch: raise if a stop was asked for (this process or the STOP file)."""
        if self._diverged:
            raise TrainingDiverged(DIVERGED_MESSAGE)
        if self.stop_asked():
            raise StopRequested()
        if count_batch:
            with self._changed:
                self._batches_started += 1

    def begin_epoch(self, epoch: int):
        with self._changed:
            self._epoch, self._batch, self._phase = epoch, 0, self._first_batch_pending(Phase.TRAINING)
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
        if self._phase == Phase.FIRST_BATCH:
            self._phase = Phase.TRAINING.value
        if self._first_batch_done is None:
            self._first_batch_done = when
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
            self._status, self._message, self._phase = status, message, Phase.FINISHED.value
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
            if self._seconds_per_batch is not None and self._status == RunStatus.RUNNING:
                per_epoch = self._steps * self._seconds_per_batch + (self._validation_seconds or 0.0)
                remaining = ((self._steps - self._batch) * self._seconds_per_batch
                             + (epochs - self._epoch - 1) * per_epoch
                             + (self._validation_seconds or 0.0) * (self._phase == Phase.TRAINING))
            latest = self._curve[-1] if self._curve else [None, None, None]
            snapshot = {
                "run_id": self.run_id,
                "status": self._status,
                "message": self._message,
                "phase": self._phase,
                "epoch": self._epoch + 1 if self._status == RunStatus.RUNNING else self._epochs_done,
                "epochs": epochs,
                "epochs_done": self._epochs_done,
                "batch": self._batch,
                "batches": self._steps,
                "batch_size": self.settings.batch_size,
                "batches_done": self._batches_done,
                "batches_started": self._batches_started,
                "batches_after_stop": (None if self._stop_asked_at is None
                                       else self._batches_started - self._stop_asked_at),
                "images_per_second": (self.settings.batch_size / self._seconds_per_batch
                                      if self._seconds_per_batch else None),
                "elapsed": round(elapsed, 2),
                "startup_seconds": (round(self._first_batch_done - self._started, 2)
                                    if self._first_batch_done is not None and self._started is not None else None),
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
        """Feeds a LiveState; checks for a stop before every batch; hands finished epochs on; tells the
        run's hold (a test's) which point of an epoch it has reached."""

        async_safe = True  # its batch-end hook only takes a lock: Keras may run it off the training thread

        def __init__(self, live: LiveState, on_epoch=None, phase_hold: PhaseHold = NO_HOLD):
            super().__init__()
            self.live = live
            self.on_epoch = on_epoch
            self.phase_hold = phase_hold
            self._epoch_started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.phase_hold.reached(HoldPoint.EPOCH_START)
            self._epoch_started = time.monotonic()
            self.live.begin_epoch(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            self.phase_hold.reached(HoldPoint.BATCH)
            self.live.check_stop()

        def on_train_batch_end(self, batch, logs=None):
            self.live.record_batch(batch, logs)

        def on_test_begin(self, logs=None):
            self.phase_hold.reached(HoldPoint.VALIDATING)
            self.live.set_phase(Phase.VALIDATING)

        def on_test_batch_begin(self, batch, logs=None):
            self.live.check_stop(count_batch=False)

        def on_epoch_end(self, epoch, logs=None):
            self.phase_hold.reached(HoldPoint.EPOCH_END)
            row = self.live.end_epoch(epoch, logs, time.monotonic() - self._epoch_started)
            if row["loss"] is None:
                raise TrainingDiverged(DIVERGED_MESSAGE)
            if self.on_epoch is not None:
                self.on_epoch(row)

    return LiveMetrics




class LivePublisher:
    """Copies a LiveState to the run's live.json (and to `sink`, if given) every PUBLISH_SECONDS while it
    changes, off the training thread, so that pages of other processes (and a restarted server) see the
    progress."""

    def __init__(self, store: RunStore, run_id: str, live: LiveState, sink=None):
        self.store, self.run_id, self.live, self.sink = store, run_id, live, sink
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"live-{run_id}", daemon=True)
        self._thread.start()

    def _write(self):
        snapshot = self.live.snapshot()
        try:
            self.store.write_live(self.run_id, snapshot)
        except OSError:
            logger.exception("Could not write the live state of run %s", self.run_id)
        if self.sink is not None:
            self.sink(snapshot)

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
