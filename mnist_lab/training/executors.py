"""Where runs train, behind one small interface: an executor submits a stored run and hands back a RunHandle
that streams its progress, stops it and reports how it ended.

    thread   in a thread of this process (tests, and the command line's --executor thread)
    process  in a worker process of its own, the default: a crash there cannot take the server down
    ray      as a Ray task, on a local instance or the cluster at RAY_ADDRESS (mnist_lab.training.ray_executor)

MNIST_LAB_EXECUTOR chooses one (executor_choice); the manager queues runs and hands each to its executor
when a slot frees.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from mnist_lab import data
from mnist_lab.errors import LabError
from mnist_lab.runs import RunStatus, RunStore
from mnist_lab.training.fitting import train_run
from mnist_lab.training.packed_runs import train_pack
from mnist_lab.training.progress import LivePublisher, LiveState
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)


class ExecutorUnavailable(LabError):
    """The chosen executor cannot run here (for example Ray is not installed); `detail` says why."""


UNAVAILABLE = "This server is set up to train in a way it cannot use, so no run can start: ask your teacher."


class ProgressBoard:
    """The latest progress snapshot of a run that trains elsewhere, with LiveState's reader interface."""

    def __init__(self, snapshot: dict):
        self._changed = threading.Condition()
        self._snapshot = snapshot
        self._version = 0

    def update(self, snapshot: dict) -> None:
        with self._changed:
            self._snapshot = snapshot
            self._version += 1
            self._changed.notify_all()

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self, max_age: float | None = None) -> dict:
        return self._snapshot

    def wait_for_change(self, version: int, timeout: float | None = None) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version


class RunHandle:
    """One submitted run, as the manager sees it whatever trains it.

    `progress` is the LiveState (or a ProgressBoard mirroring one); `stop()` asks for a stop before the
    next batch; `wait()` blocks until the run has ended; `result` is (status, message) once it has.
    Callbacks given to `when_done` run once, on the thread that saw the end.
    """

    def __init__(self, run_id: str, progress):
        self.run_id = run_id
        self.progress = progress
        self.result: tuple[str, str] | None = None
        self._done = threading.Event()
        self._callbacks: list = []
        self._lock = threading.Lock()

    def stop(self) -> None:
        raise NotImplementedError

    def shut_down(self) -> None:
        """The server is going away: stop before the next batch and end as interrupted."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def done(self) -> bool:
        return self._done.is_set()

    def when_done(self, callback) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.result = (status, message)
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("A callback for the end of run %s failed", self.run_id)


class ThreadHandle(RunHandle):
    def stop(self) -> None:
        self.progress.request_stop()

    def shut_down(self) -> None:
        self.progress.request_stop(shutting_down=True)


class ThreadExecutor:
    """Trains each run in a thread of this process: no start-up cost, but a crash of TensorFlow is the
    process's crash. `load_data` lets tests train on arrays they make."""

    name = "thread"

    def __init__(self, load_data=data.load_mnist):
        self._load_data = load_data

    def submit(self, store: RunStore, run_id: str, architecture: dict, settings: TrainSettings) -> RunHandle:
        live = LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")
        handle = ThreadHandle(run_id, live)

        def work():
            status, message = RunStatus.FAILED, "The training thread stopped unexpectedly."
            try:
                status, message = train_run(store, run_id, architecture, settings, live, self._load_data,
                                            LivePublisher(store, run_id, live))
            finally:
                handle._finish(status, message)

        threading.Thread(target=work, name=f"train-{run_id}", daemon=True).start()
        return handle

    def submit_pack(self, store: RunStore, run_ids: list[str], architecture: dict,
                    settings_list: list[TrainSettings]) -> list[RunHandle]:
        """Runs that train as one pack, in one thread (training.packed_runs)."""
        lives = [LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")
                 for run_id, settings in zip(run_ids, settings_list, strict=True)]
        handles = {live.run_id: ThreadHandle(live.run_id, live) for live in lives}

        def work():
            try:
                train_pack(store, run_ids, architecture, settings_list, lives, self._load_data,
                           [LivePublisher(store, live.run_id, live) for live in lives],
                           on_end=lambda run_id, status, message: handles[run_id]._finish(status, message))
            finally:
                for handle in handles.values():  # an end train_pack could not report
                    handle._finish(RunStatus.FAILED, "The training thread stopped unexpectedly.")

        threading.Thread(target=work, name=f"train-pack-{run_ids[0]}", daemon=True).start()
        return list(handles.values())

    def close(self) -> None:
        """Nothing to release: the threads end with their runs."""


def wait_all(handles, timeout: float | None = None) -> bool:
    """Wait for every handle to end; True if they all did within the timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for handle in handles:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not handle.wait(left):
            return False
    return True
