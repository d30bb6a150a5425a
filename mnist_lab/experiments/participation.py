"""A learner's part in the open experiment: the value they are handed, and their run of it, one at a time."""

from __future__ import annotations

import threading

from mnist_lab.experiments.results import tag_of
from mnist_lab.experiments.store import ExperimentStatus, ExperimentStore, value_request
from mnist_lab.experiments.variables import ExperimentError
from mnist_lab.runs import ACTIVE
from mnist_lab.training.settings import MAX_NAME_LENGTH

_TAKING_PART = threading.Lock()  # a double press of Train it checks and submits as one step


def active_part(runs: list[dict], experiment: dict, learner_id: str) -> dict | None:
    """The learner's experiment run that is still waiting or training, if any."""
    return next((meta for meta in runs if meta.get("owner") == learner_id and meta.get("status") in ACTIVE
                 and (tag_of(meta) or {}).get("id") == experiment["id"]), None)


def take_part(manager, experiments: ExperimentStore, experiment_id: str, owner: tuple[str, str],
              index: int | None = None) -> str:
    """Queue the learner's run of the experiment: their handed value, or value number `index` if they chose
    another. ExperimentError when it is closed or their last experiment run has not finished."""
    learner_id, _ = owner
    with _TAKING_PART:
        experiment = experiments.get(experiment_id)
        if experiment.get("status") != ExperimentStatus.OPEN:
            raise ExperimentError(f"“{experiment['question']}” is closed: the teacher decides when it opens again.")
        if index is None:
            index = experiments.assign(experiment_id, learner_id)
        if not isinstance(index, int) or not 0 <= index < len(experiment["values"]):
            raise ExperimentError(f"The experiment has no value number {index}.")
        runs = manager.runs(max_age=0.0)
        running = active_part(runs, experiment, learner_id)
        if running is not None:
            raise ExperimentError(f"Your {running['experiment']['value']} run is still {running['status']}: "
                                  "one experiment run each at a time, so that the whole class gets its turn.")
        architecture, settings = value_request(experiment, index)
        label = experiment["labels"][index]
        return manager.submit(architecture, {**settings, "seed": run_seed(experiment, runs)},
                              name=f"{label} · {owner[1]}"[:MAX_NAME_LENGTH], owner=owner,
                              experiment={"id": experiment_id, "index": index, "value": label})


def run_seed(experiment: dict, runs: list[dict]) -> int:
    """Each run of an experiment starts from weights and a data order of its own: the base's seed plus the
    runs the experiment already has. Ten runs of one value with one seed would train ten times the same
    net, and the spread within a value, which the class weighs a difference against, would read zero."""
    taken = sum(1 for meta in runs if (tag_of(meta) or {}).get("id") == experiment["id"])
    return (experiment["base"]["settings"].get("seed") or 1) + taken
