"""The named phases a run passes through, and a test-only hold that stops a run at one of them.

A run's live state shows one of the live phases (queued, starting, first batch, training, validating,
testing, normalizing, finished). The hold points are finer: every place where a fault (a stop, a kill, a
shut-down) can arrive and should leave the run in a known state. Tests name a hold point so that a fault
lands at that exact moment instead of at whatever moment a timer or an output line happened to give.

The hold is read from MNIST_LAB_HOLD_AT in the process that trains, as `<point>` or `<point>:<n>` (the n-th
time the run reaches it, counting from 1; default 1). On reaching it the run writes `HELD-<point>` in its
folder, then waits until `RELEASE-<point>` appears there or a stop is asked for, and goes on as it would
have. Unset, every hold is a no-op.
"""

from __future__ import annotations

import enum
import os
from collections import Counter
from pathlib import Path

from mnist_lab.runs import RunStatus, now_iso, write_atomic

HOLD_VARIABLE = "MNIST_LAB_HOLD_AT"
HOLD_POLL_SECONDS = 0.05


class Phase(enum.StrEnum):
    """What a run's live state shows as its phase (pages and the command line word them)."""

    QUEUED = RunStatus.QUEUED.value  # a queued run's phase is its status
    STARTING = "starting"
    FIRST_BATCH = "first batch"
    TRAINING = "training"
    VALIDATING = "validating"
    TESTING = "testing"
    NORMALIZING = "normalizing"
    FINISHED = "finished"


class HoldPoint(enum.StrEnum):
    """The moments of a run, in order, where a test can hold it (and so land a fault)."""

    STARTING = "starting"  # the training process has the run, before the set-up lock
    LOADING_DATA = "loading-data"
    BUILDING = "building"  # the model is built and compiled next
    EPOCH_START = "epoch-start"  # n: the epoch, from 1
    BATCH = "batch"  # before a batch, after the previous one; n: the batch of the whole run, from 1
    VALIDATING = "validating"  # n: the epoch
    EPOCH_END = "epoch-end"  # an epoch is measured, nothing of it saved yet; n: the epoch
    SAVING = "saving"  # the epoch's model is written next
    HISTORY = "history"  # the model is saved, the epoch's history row is written next
    TESTING = "testing"
    NORMALIZING = "normalizing"
    FINISHING = "finishing"  # the final status is written next


def parse_hold(text: str | None) -> tuple[HoldPoint, int] | None:
    """`<point>[:<n>]` as (point, n); None when unset. A wrong value is an error: a test that asked for a
    hold must not silently run without one."""
    if not text:
        return None
    name, _, count = text.partition(":")
    try:
        point = HoldPoint(name.strip())
        number = int(count) if count else 1
    except ValueError:
        raise ValueError(f"unknown hold point {text!r}: expected one of "
                         f"{', '.join(point.value for point in HoldPoint)}, optionally ':<n>' with n >= 1") from None
    if number < 1:
        raise ValueError(f"hold point {text!r}: n must be at least 1")
    return point, number


def held_marker(folder: Path, point: str) -> Path:
    """The file a run writes in its folder on being held at `point`."""
    return folder / f"HELD-{point}"


def release_marker(folder: Path, point: str) -> Path:
    """The file that, once it appears in the run's folder, releases the run held at `point`."""
    return folder / f"RELEASE-{point}"


class PhaseHold:
    """One run's hold: counts the points it reaches and blocks at the one asked for.

    While held it waits on the live state's stop event (and looks at its STOP file), so a stop or a
    shut-down still ends a held run; the hold then simply returns and the run's own stop checks decide
    what happens, as for a stop arriving at that moment.
    """

    def __init__(self, folder: Path | None, live, target: tuple[HoldPoint, int] | None):
        self.folder = folder
        self.live = live
        self.target = target
        self.reached_counts: Counter = Counter()

    @classmethod
    def from_environment(cls, folder: Path, live) -> PhaseHold:
        return cls(folder, live, parse_hold(os.environ.get(HOLD_VARIABLE)))

    def reached(self, point: HoldPoint) -> None:
        """Mark that the run is at `point`; blocks there when it is the one asked for."""
        if self.target is None:
            return
        self.reached_counts[point] += 1
        if (point, self.reached_counts[point]) != self.target or self.folder is None:
            return
        release = release_marker(self.folder, point)
        write_atomic(held_marker(self.folder, point), f"{self.reached_counts[point]} {now_iso()}\n")
        while not release.exists() and not self.live.stop_asked():
            self.live.stop_event.wait(HOLD_POLL_SECONDS)


NO_HOLD = PhaseHold(None, None, None)
