"""Sentences about a class experiment: for the teacher, how long it will take before it opens; for a learner,
where their run stands once they pressed Train it."""

from __future__ import annotations

from mnist_lab.experiments.timing import LessonEstimate
from mnist_lab.presentation import format_duration


def lesson_text(estimate: LessonEstimate | None, labels: list[str]) -> str:
    """One run of each value, and the whole class at this server's concurrency; or why there is no figure."""
    if estimate is None:
        return ("This server is still measuring its speed (a few seconds, while nothing trains): estimate again "
                "in a moment.")
    runs = ", ".join(f"{label} {format_duration(seconds)}" for label, seconds in zip(labels, estimate.run_seconds))
    return (f"One run: {runs}. The whole class of {estimate.learners}, {estimate.concurrent} training at once: "
            f"about {format_duration(estimate.class_seconds)}, less where runs of one value train together as a pack.")


def part_accepted(queue_position: int | None, start_seconds: float | None) -> str:
    """The answer to Train it in the banner: the run is in, and training now or where it waits, for how long."""
    if queue_position is None:
        return "Your run is in and training: watch it on the Train page."
    when = f", expected to start in about {format_duration(start_seconds)}" if start_seconds is not None else ""
    return f"Your run is in: number {queue_position} in the queue{when}. Watch it on the Train page."
