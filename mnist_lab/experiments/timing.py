"""How long an experiment takes, so that a teacher can fit it into a lesson before opening it.

Each value's run is estimated from this server's measured speed. The class's time is the queue's own
order played out: learner after learner joins, each handed the next value round robin, and each run starts
in the first training slot to come free. Runs of one value that wait together train as one pack and finish
sooner, so the class's figure is an upper bound.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from mnist_lab.experiments.store import value_request


@dataclass(frozen=True)
class LessonEstimate:
    run_seconds: tuple[float, ...]  # one run of each value, in the experiment's order
    class_seconds: float  # from the first Train press to the last run's test score
    learners: int
    concurrent: int


def lesson_estimate(run_seconds: list[float], learners: int, concurrent: int) -> LessonEstimate:
    """The time of `learners` runs, value i % len(run_seconds) for the i-th learner, on `concurrent` slots."""
    if not run_seconds:
        raise ValueError("An experiment has at least one value to estimate.")
    if learners < 1 or concurrent < 1:
        raise ValueError("A class has at least one learner and the server at least one training slot.")
    slots = [0.0] * min(concurrent, learners)
    finished = 0.0
    for learner in range(learners):
        start = heapq.heappop(slots)
        end = start + run_seconds[learner % len(run_seconds)]
        finished = max(finished, end)
        heapq.heappush(slots, end)
    return LessonEstimate(tuple(run_seconds), finished, learners, concurrent)


def value_run_seconds(experiment: dict, manager) -> list[float] | None:
    """One run of each value, estimated by `manager` (a TrainingManager) from this server's speed: start,
    every epoch and the test; None while the speed is still being measured."""
    seconds = []
    for index in range(len(experiment["labels"])):
        architecture, settings = value_request(experiment, index)
        _, report, resolved, _ = manager.prepare(architecture, settings)
        estimate = manager.estimate(report, resolved)
        if estimate is None:
            return None
        seconds.append(estimate.run_seconds)
    return seconds


def estimate_lesson(experiment: dict, manager, learners: int) -> LessonEstimate | None:
    """The lesson's time for `learners` at the manager's concurrency; None while the speed is measured."""
    seconds = value_run_seconds(experiment, manager)
    return None if seconds is None else lesson_estimate(seconds, learners, manager.max_concurrent)
