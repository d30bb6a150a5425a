"""What a class experiment found: each value's runs summed up (done, training, waiting, the median and spread
of their test accuracy), one sentence that says only what the data support, and a row per run to export.

The spread of a value is the range of its finished runs' test accuracies (the highest less the lowest): with
a handful of seeds per value it is what a class reads off the chart, dot to dot. A difference between values
counts as found only when it is larger than the spread within a value.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from mnist_lab.runs import RunStatus


@dataclass(frozen=True)
class ValueSummary:
    """One value's runs. `accuracies`: the test accuracies of its completed runs, as fractions."""

    index: int
    label: str
    accuracies: tuple[float, ...] = ()
    training: int = 0
    waiting: int = 0
    other: int = 0  # stopped, failed or damaged: not part of the result

    @property
    def done(self) -> int:
        return len(self.accuracies)

    @property
    def median(self) -> float | None:
        return statistics.median(self.accuracies) if self.accuracies else None

    @property
    def spread(self) -> float | None:
        return max(self.accuracies) - min(self.accuracies) if len(self.accuracies) > 1 else None


def tag_of(meta: dict) -> dict | None:
    """A run's experiment tag ({"id", "index", "value"}), if it was trained for one."""
    tag = meta.get("experiment")
    return tag if isinstance(tag, dict) and isinstance(tag.get("index"), int) else None


def runs_of_values(experiment: dict, runs: list[dict]):
    """(run, its value's label) for each of `runs` tagged with this experiment and one of its values."""
    for meta in runs:
        tag = tag_of(meta)
        if tag is not None and tag.get("id") == experiment["id"] and 0 <= tag["index"] < len(experiment["labels"]):
            yield meta, experiment["labels"][tag["index"]]


def result_of(meta: dict) -> float | None:
    """A run's contribution to the result: the test accuracy of a completed run."""
    accuracy = meta.get("test_accuracy")
    if meta.get("status") == RunStatus.COMPLETED and isinstance(accuracy, (int, float)):
        return float(accuracy)
    return None


def summarize(experiment: dict, runs: list[dict]) -> list[ValueSummary]:
    """A summary per value, in the experiment's order, of the runs tagged with it."""
    labels = experiment["labels"]
    grouped = {index: {"accuracies": [], "training": 0, "waiting": 0, "other": 0} for index in range(len(labels))}
    for meta in runs:
        tag = tag_of(meta)
        if tag is None or tag["index"] not in grouped:
            continue
        counts = grouped[tag["index"]]
        accuracy = result_of(meta)
        if accuracy is not None:
            counts["accuracies"].append(accuracy)
        elif meta.get("status") == RunStatus.RUNNING:
            counts["training"] += 1
        elif meta.get("status") == RunStatus.QUEUED:
            counts["waiting"] += 1
        else:
            counts["other"] += 1
    return [ValueSummary(index, labels[index], tuple(sorted(counts.pop("accuracies"))), **counts)
            for index, counts in grouped.items()]


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"


def _points(fraction: float) -> str:
    points = fraction * 100
    return f"{points:.1f} point{'' if round(points, 1) == 1 else 's'}"


def findings(summaries: list[ValueSummary]) -> str:
    """One sentence, true of the data, of what the class found: the best value's median against the worst's,
    weighed against the spread within a value; it says so plainly when the difference lies within it."""
    finished = sorted((summary for summary in summaries if summary.done), key=lambda summary: -summary.median)
    missing = [summary.label for summary in summaries if not summary.done]
    waiting = f" No finished run yet for {', '.join(missing)}." if missing and finished else ""
    if not finished:
        return "No run has finished yet: each result appears here as soon as its test score is in."
    if len(finished) == 1:
        only = finished[0]
        return (f"Only {only.label} has finished runs so far (median {_percent(only.median)} over "
                f"{only.done}): there is nothing to compare it with yet.{waiting}")
    best, worst = finished[0], finished[-1]
    gap = best.median - worst.median
    spreads = [summary.spread for summary in finished if summary.spread is not None]
    single = [summary.label for summary in finished if summary.done == 1]
    single_note = (f" {', '.join(single)} {'has' if len(single) == 1 else 'have'} a single finished run, so "
                   "how far its runs vary is not known yet." if single else "")
    lead = f"{best.label}: median {_percent(best.median)}, {_points(gap)} above {worst.label}"
    if not spreads:
        return (f"{lead}; every value has a single finished run, so nothing shows yet whether that is more than "
                f"seeds alone would make.{waiting}")
    spread = max(spreads)
    if gap <= spread:
        return (f"{lead}, but runs of one value differ by up to {_points(spread)}: the difference lies within "
                f"the spread, so these runs cannot tell the values apart.{single_note}{waiting}")
    return f"{lead}; spread within a value {_points(spread)}.{single_note}{waiting}"


def result_rows(experiment: dict, runs: list[dict], show_names: bool) -> list[dict]:
    """One row a run, for the projector's CSV and the command line: learners appear as "learner 1", "learner
    2"... (numbered in the order they joined) unless the teacher shows names."""
    numbers = {}
    rows = []
    for meta, label in runs_of_values(experiment, sorted(runs, key=lambda item: (item.get("created") or "",
                                                                                  item["id"]))):
        owner = meta.get("owner") or ""
        number = numbers.setdefault(owner, len(numbers) + 1)
        rows.append({
            "experiment": experiment["id"],
            "value": label,
            "learner": (meta.get("owner_name") or "command line") if show_names else f"learner {number}",
            "run": meta["id"],
            "status": str(meta.get("status")),
            "test_accuracy": result_of(meta),
            "epochs_done": meta.get("epochs_done"),
        })
    return rows
