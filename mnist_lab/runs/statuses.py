"""Where a run is in its life: the one status type, and the sets of statuses pages and the store ask about."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run is in its life. The first six are written to run.json; DAMAGED is only ever read:
    the store lists a run whose files it cannot trust as damaged, with its `problem`."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DAMAGED = "damaged"


STORED = tuple(status for status in RunStatus if status is not RunStatus.DAMAGED)
# Still training or waiting to: its model, if any, changes after every epoch; it cannot be deleted.
ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
# Ended: the model file, when the run has one, is final and can be used. A failed run counts, because
# a run that fails after some epochs (a worker killed, a crash) keeps those epochs and their model; a
# run of any of these statuses without a model file has nothing to use.
USABLE = frozenset({RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED})
