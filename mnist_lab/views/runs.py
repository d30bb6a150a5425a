"""How a run's status is shown: one badge (a word and a colour) per status, for every list of runs; the
word is the status's own, but for the two a learner reads as waiting and training."""

from __future__ import annotations

from mnist_lab.runs import RunStatus

STATUS_BADGES = {
    RunStatus.QUEUED: ("waiting", "gray"),
    RunStatus.RUNNING: ("training", "blue"),
    RunStatus.COMPLETED: (RunStatus.COMPLETED.value, "green"),
    RunStatus.STOPPED: (RunStatus.STOPPED.value, "orange"),
    RunStatus.FAILED: (RunStatus.FAILED.value, "red"),
    RunStatus.INTERRUPTED: (RunStatus.INTERRUPTED.value, "orange"),
    RunStatus.DAMAGED: (RunStatus.DAMAGED.value, "red"),
}
STARTING_BADGE = ("starting", "blue")  # queued in the store, but a worker has it


def status_badge(status: str, starting: bool = False) -> str:
    """Streamlit Markdown for the badge of `status`."""
    label, color = STARTING_BADGE if starting else STATUS_BADGES.get(status, (str(status), "gray"))
    return f":{color}-badge[{label}]"
