"""The Teacher page's sentences about a class experiment: how long it will take before it opens."""

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
