"""Which executor trains this server's runs: the argument, else MNIST_LAB_EXECUTOR, else process.

Apart from base.py so that the executors, which build on its RunHandle, are not imported by the module
they import."""

from __future__ import annotations

import os

from mnist_lab.training.executors.base import UNAVAILABLE, ExecutorUnavailable
from mnist_lab.training.executors.thread import ThreadExecutor

EXECUTOR_VARIABLE = "MNIST_LAB_EXECUTOR"
EXECUTOR_NAMES = ("process", "thread", "ray")
DEFAULT_EXECUTOR = "process"


def executor_name(name: str | None = None) -> str:
    """The executor asked for, checked."""
    chosen = (name or os.environ.get(EXECUTOR_VARIABLE) or DEFAULT_EXECUTOR).strip().lower()
    if chosen not in EXECUTOR_NAMES:
        raise ExecutorUnavailable(UNAVAILABLE, f"Unknown executor {chosen!r}: use one of {', '.join(EXECUTOR_NAMES)} "
                                               f"(set {EXECUTOR_VARIABLE} or --executor).")
    return chosen


def make_executor(name: str | None = None):
    """A new executor of the kind asked for; ExecutorUnavailable if it cannot run here. The process and Ray
    executors are imported here, not above: a server loads only the one it trains with."""
    chosen = executor_name(name)
    if chosen == "thread":
        return ThreadExecutor()
    if chosen == "process":
        from mnist_lab.training.executors.process import ProcessExecutor

        return ProcessExecutor()
    from mnist_lab.training.executors.ray_tasks import RayExecutor

    return RayExecutor()
