"""Class experiments on disk: one JSON file each, in a hidden folder of the run store (so never listed as a
run), archived with the runs by the room's reset and still readable from the archive afterwards.

An experiment holds its question, its base (a net and its settings), the variable it varies with its values,
whether it is open, whether the projector shows learners' names, and which value each learner was handed.
Only the teacher (or the command line, which acts as the server's operator) poses, closes, reopens or
changes one; any learner may be handed a value of the open one.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from mnist_lab.architecture.sources import check_architecture
from mnist_lab.errors import LabError, shown_value
from mnist_lab.experiments.variables import ExperimentError, parse_values, variable
from mnist_lab.classroom.learners import Actor, NotYours
from mnist_lab.runs import RunStore, locked_folder, now_iso, read_json, write_json
from mnist_lab.training.settings import TrainSettings

EXPERIMENTS_FOLDER = ".experiments"
ARCHIVED_EXPERIMENTS = "experiments"  # beside "runs" in an archive folder of the room's reset
MAX_QUESTION_LENGTH = 120


class ExperimentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def _teacher_only(by: Actor, doing: str) -> None:
    if not by.teacher:
        raise NotYours(f"Only the teacher can {doing} an experiment.")


def clean_question(text) -> str:
    question = " ".join(str(text or "").split())
    if not question:
        raise ExperimentError("Ask the class a question, for example “Does batch size matter?”.")
    if len(question) > MAX_QUESTION_LENGTH:
        raise ExperimentError(f"The question is {len(question)} characters long; keep it to {MAX_QUESTION_LENGTH}.")
    return question


def value_request(experiment: dict, index: int) -> tuple[dict, dict]:
    """The architecture and settings of the experiment's run for value number `index`."""
    chosen = variable(experiment["variable"])
    base = experiment["base"]
    return chosen.apply(base["architecture"], base["settings"], experiment["values"][index], experiment.get("layer"))


def check_values(experiment: dict, data_sizes: tuple[int, int]) -> list[int]:
    """Every value's run checked as the Train page checks a run, before any learner gets it: ExperimentError
    naming the first value the base cannot train with. Returns each value's training-image count."""
    chosen = variable(experiment["variable"])
    chosen.check_base(experiment["base"]["architecture"], experiment.get("layer"))
    images = []
    for index, label in enumerate(experiment["labels"]):
        try:
            architecture, settings = value_request(experiment, index)
            check_architecture(architecture)
            resolved = TrainSettings.from_dict(settings).resolve(*data_sizes)
        except LabError as error:  # the architecture's and the settings' own checks
            raise ExperimentError(f"{label} cannot train: {error}") from None
        if resolved.batch_size > resolved.train_size:
            raise ExperimentError(f"{label} cannot train: a batch of {resolved.batch_size:,} is more than the "
                                  f"{resolved.train_size:,} training images; use a smaller batch or more images.")
        images.append(resolved.train_size)
    return images


def draft(question, architecture: dict, settings: dict, variable_key: str, values, data_sizes: tuple[int, int],
          layer: int | None = None) -> dict:
    """An experiment as posing would open it, checked but not saved: what the Teacher page estimates the
    lesson's time from before the teacher opens it. ExperimentError naming what to change."""
    chosen = variable(variable_key)
    parsed = parse_values(variable_key, values)
    architecture, _ = check_architecture(architecture)
    experiment = {
        "question": clean_question(question), "variable": chosen.key, "layer": layer, "values": parsed,
        "labels": [chosen.shown(value) for value in parsed],
        "base": {"architecture": architecture, "settings": TrainSettings.from_dict(settings).as_dict()},
    }
    experiment["train_sizes"] = check_values(experiment, data_sizes)
    return experiment


class ExperimentStore:
    """The experiments of one run store. Every change holds the folder's lock, so that thirty learners
    handed values at once, or a teacher closing meanwhile, lose nothing."""

    def __init__(self, runs: RunStore):
        self.runs = runs
        self.folder = Path(runs.root) / EXPERIMENTS_FOLDER

    def _path(self, experiment_id: str) -> Path:
        if not isinstance(experiment_id, str) or not experiment_id.isascii() or not experiment_id.replace("-", "").isalnum():
            raise ExperimentError(f"There is no experiment {shown_value(experiment_id)}.")
        return self.folder / f"{experiment_id}.json"

    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        return locked_folder(self.folder)

    def get(self, experiment_id: str) -> dict:
        experiment = read_json(self._path(experiment_id))
        if not isinstance(experiment, dict):
            raise ExperimentError(f"There is no experiment {shown_value(experiment_id)}.")
        return experiment

    def list(self, archived: bool = True) -> list[dict]:
        """Every experiment, newest first; archived ones carry "archive", the folder they were moved to."""
        found = [(path, None) for path in self.folder.glob("*.json")]
        if archived:
            found += [(path, path.parent.parent) for path in
                      Path(self.runs.root).glob(f".archive/*/{ARCHIVED_EXPERIMENTS}/*.json")]
        experiments = []
        for path, archive in found:
            experiment = read_json(path)
            if isinstance(experiment, dict) and isinstance(experiment.get("id"), str):
                experiments.append({**experiment, "archive": str(archive)} if archive else experiment)
        return sorted(experiments, key=lambda item: (item.get("created", ""), item["id"]), reverse=True)

    def open_experiment(self) -> dict | None:
        """The one experiment learners can take part in now, if any."""
        return next((item for item in self.list(archived=False) if item.get("status") == ExperimentStatus.OPEN),
                    None)

    def pose(self, question, architecture: dict, settings: dict, variable_key: str, values, by: Actor,
             data_sizes: tuple[int, int], layer: int | None = None) -> dict:
        """Check and open a new experiment; ExperimentError naming what to change, NotYours for a learner."""
        _teacher_only(by, "pose")
        return self.open(draft(question, architecture, settings, variable_key, values, data_sizes, layer), by)

    def open(self, experiment: dict, by: Actor) -> dict:
        """Open a checked draft (`draft`) as the class's one open experiment, under a new id."""
        _teacher_only(by, "pose")
        experiment = {**experiment, "status": ExperimentStatus.OPEN, "created": now_iso(), "closed": None,
                      "show_names": False, "assigned": {}}
        with self._locked():
            self._refuse_second_open()
            experiment["id"] = self._claim_id()
            write_json(self._path(experiment["id"]), experiment)
        return experiment

    def _refuse_second_open(self, keep: str | None = None) -> None:
        current = self.open_experiment()
        if current is not None and current["id"] != keep:
            raise ExperimentError(f"“{current['question']}” is still open: close it first, so that the class "
                                  "works on one question at a time.")

    def _claim_id(self) -> str:
        while True:
            experiment_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            try:
                os.close(os.open(self._path(experiment_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                return experiment_id
            except FileExistsError:
                continue

    def _change(self, experiment_id: str, **changes) -> dict:
        with self._locked():
            experiment = {**self.get(experiment_id), **changes}
            write_json(self._path(experiment_id), experiment)
            return experiment

    def close(self, experiment_id: str, by: Actor) -> dict:
        _teacher_only(by, "close")
        return self._change(experiment_id, status=ExperimentStatus.CLOSED, closed=now_iso())

    def reopen(self, experiment_id: str, by: Actor) -> dict:
        _teacher_only(by, "reopen")
        with self._locked():
            self._refuse_second_open(keep=experiment_id)
            return self._change(experiment_id, status=ExperimentStatus.OPEN, closed=None)

    def show_names(self, experiment_id: str, shown: bool, by: Actor) -> dict:
        _teacher_only(by, "show learners' names on")
        return self._change(experiment_id, show_names=bool(shown))

    def assign(self, experiment_id: str, learner_id: str) -> int:
        """The value this learner is handed: theirs if they have one, else the one fewest learners hold
        (the first such), so that in a burst every value gets runs early and a late joiner fills a gap."""
        with self._locked():
            experiment = self.get(experiment_id)
            assigned = dict(experiment.get("assigned") or {})
            if learner_id not in assigned:
                held = [list(assigned.values()).count(index) for index in range(len(experiment["values"]))]
                assigned[learner_id] = held.index(min(held))
                write_json(self._path(experiment_id), {**experiment, "assigned": assigned})
            return assigned[learner_id]

    def archive_into(self, folder: Path) -> int:
        """Close the open experiment and move every experiment into `folder` (the room's reset); how many."""
        with self._locked():
            moved = 0
            for path in sorted(self.folder.glob("*.json")):
                experiment = read_json(path)
                if isinstance(experiment, dict) and experiment.get("status") == ExperimentStatus.OPEN:
                    write_json(path, {**experiment, "status": ExperimentStatus.CLOSED, "closed": now_iso()})
                (folder / ARCHIVED_EXPERIMENTS).mkdir(parents=True, exist_ok=True)
                os.replace(path, folder / ARCHIVED_EXPERIMENTS / path.name)
                moved += 1
            return moved

    def stores_of(self, experiment: dict) -> list[RunStore]:
        """Where the experiment's runs live: the room's store and, for an archived experiment, its archive."""
        return [self.runs] + ([RunStore(Path(experiment["archive"]) / "runs")] if experiment.get("archive") else [])

    def runs_of(self, experiment: dict) -> list[dict]:
        """The experiment's runs: those in the store and, for an archived experiment, those archived with it."""
        return [meta for store in self.stores_of(experiment) for meta in store.list()
                if isinstance(meta.get("experiment"), dict) and meta["experiment"].get("id") == experiment["id"]]
