"""The runs this process trains, across every training manager it holds: waiting for them (tests, and pages
that start runs), and stopping them at exit. Apart from manager.py so that the manager's class is the queue
alone; a manager registers itself here when it is made."""

from __future__ import annotations

import atexit
import functools
import threading
import time
import weakref

from mnist_lab.training.speed import speed_estimators, stop_measuring

# Every manager of this process: so that `recover_interrupted` never marks a run that this process is
# still training, the exit hook stops them all, and tests can wait for a run started by a page.
_MANAGERS: weakref.WeakSet = weakref.WeakSet()
_MANAGERS_LOCK = threading.Lock()


def _managers() -> list:
    """The managers alive now (TrainingManager; named only here, so that no import cycle comes back)."""
    with _MANAGERS_LOCK:
        return list(_MANAGERS)


def _job(run_id: str):
    for manager in _managers():
        job = manager._jobs.get(run_id)
        if job is not None:
            return job
    return None


def wait_for_run(run_id: str, timeout: float | None = None) -> bool:
    """Wait until a run of this process has ended; True if it has (or is not this process's)."""
    job = _job(run_id)
    return True if job is None else job.done.wait(timeout)


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until no run of this process trains and no speed measurement runs; True if so in time."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def left():
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    for manager in _managers():
        for job in list(manager._jobs.values()):
            if not job.done.wait(left()):
                return False
    for estimator in speed_estimators():
        if estimator.wait(left()) is None and estimator.running():
            return False
    return True


def _shut_down(timeout: float = 15.0) -> None:
    """At exit: stop the runs still training before the next batch, so that they end as interrupted with
    their finished epochs, rather than aborting inside TensorFlow; end a speed measurement (in a process
    of its own, it holds nothing that could be lost) rather than wait for it."""
    stop_measuring()
    for manager in _managers():
        manager.shut_down(timeout)
    for estimator in speed_estimators():
        estimator.wait(timeout)


@functools.cache
def _register_exit_hook() -> None:
    atexit.register(_shut_down)


def training_run_ids() -> set[str]:
    """The runs that some manager of this process still trains or queues."""
    return {run_id for manager in _managers() for run_id, job in manager._jobs.items() if not job.done.is_set()}


def register(manager) -> None:
    """Count a new manager among this process's, and stop its runs at exit with the others."""
    with _MANAGERS_LOCK:
        _MANAGERS.add(manager)
    _register_exit_hook()
