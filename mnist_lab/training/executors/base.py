"""What every executor hands the manager: a RunHandle per submitted run, its progress (a LiveState, or a
ProgressBoard mirroring one that trains elsewhere), and ExecutorUnavailable when it cannot run here."""

from __future__ import annotations

import logging
import threading
import time

from mnist_lab.errors import LabError

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


def wait_all(handles, timeout: float | None = None) -> bool:
    """Wait for every handle to end; True if they all did within the timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for handle in handles:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not handle.wait(left):
            return False
    return True
