"""The RunStore: a run's folder and files (see the package's docstring for the layout), and every change to them."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

from mnist_lab.errors import LabError, shown_value
from mnist_lab.runs.files import (MISSING, locked_folder, now_iso, pid_alive, read_json, read_stored, write_atomic,
                                  write_json)
from mnist_lab.runs.records import check_history, check_meta, damage_sentence, damaged_meta
from mnist_lab.runs.statuses import ACTIVE, STORED, RunStatus

RUNS_VARIABLE = "MNIST_LAB_RUNS"
MODEL_FILE = "model.keras"
EPOCHS_FOLDER = "epochs"
EPOCH_FILE = re.compile(r"epoch-(\d{3,6})\.weights\.h5")
STAGED_FOLDER = ".staged"
# What an interrupted write of a file only the trainer writes leaves behind (write_atomic's temporaries):
# settle_epochs removes them. Others' (run.json, STOP) may be in flight from another process, and the
# live state's while its trainer's publisher still runs.
TRAINER_TEMPORARY = re.compile(r"\.(model\.keras|history\.json|epoch-\d{3,6}\.weights\.h5)\.[0-9a-f]+\.tmp")
LIVE_TEMPORARY = re.compile(r"\.live\.json\.[0-9a-f]+\.tmp")
# Per-epoch weights a run may keep. Past it, older epochs are thinned first; the first and the last stay
# (the 5-layer net's 12 epochs take about 37 MB, the 3-layer net's under 2 MB: neither is thinned).
EPOCH_WEIGHTS_LIMIT = 50 * 2**20
# Ids the store makes look like 20261202-115530-a1b2c3; older or copied runs may use other safe names.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ModelUnavailable(LabError):
    """A run's model file is missing, unreadable or damaged."""


class RunNotFound(LabError, KeyError):
    def __str__(self):
        return f"No run with id {shown_value(self.args[0])}."


class RunDamaged(LabError):
    """A run's metadata cannot be read, so it cannot be changed; the message says why."""


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_VARIABLE) or "runs")


class RunStore:
    """Runs on disk. Safe to share between threads and processes: every write is one atomic file."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, run_id: str) -> Path:
        """The run's folder; RunNotFound for anything that cannot be a run id (a path, a 300-character name)."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
            raise RunNotFound(run_id)
        return self.root / run_id

    def _claim_run_id(self) -> str:
        """A new run's id, claimed by creating its folder: a class submitting in the same second may draw the
        same random suffix, and only the folder's creation tells them apart."""
        while True:
            run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
            try:
                self.path(run_id).mkdir(parents=True)
                return run_id
            except FileExistsError:
                continue

    def create(self, name: str, architecture: dict, settings: dict, **extra) -> dict:
        """Store a new queued run. architecture = {"name", "layers"}; settings = the training settings."""
        run_id = self._claim_run_id()
        meta = {
            "id": run_id,
            "name": name or run_id,
            "architecture": architecture,
            "settings": settings,
            "status": RunStatus.QUEUED,
            "message": "",
            "created": now_iso(),
            "started": None,
            "finished": None,
            "pid": os.getpid(),
            "epochs_done": 0,
            "epoch_seconds": [],
            "test_loss": None,
            "test_accuracy": None,
        }
        meta.update(extra)
        write_json(self.path(run_id) / "run.json", meta)
        write_json(self.path(run_id) / "history.json", [])
        return meta

    def _raw(self, run_id: str):
        """(run.json's value, problem); RunNotFound when the run has no folder or no run.json."""
        folder = self.path(run_id)
        value, problem = read_stored(folder / "run.json")
        if value is MISSING:
            raise RunNotFound(run_id)
        return value, problem

    def get(self, run_id: str) -> dict:
        """The run's checked metadata (see check_meta): a damaged run has status DAMAGED and a `problem`."""
        value, problem = self._raw(run_id)
        if problem:
            return damaged_meta(run_id, problem)
        meta = check_meta(value, run_id)
        if meta["status"] is not RunStatus.DAMAGED:
            _, history_problem = self._history(run_id)
            if history_problem:
                meta["status"], meta["problem"] = RunStatus.DAMAGED, damage_sentence([history_problem])
        return meta

    def locked(self, run_id: str):
        """The run's lock (see locked_folder); RunNotFound when it has no folder."""
        if not self.path(run_id).is_dir():
            raise RunNotFound(run_id)
        return locked_folder(self.path(run_id))

    def update(self, run_id: str, **changes) -> dict:
        """Change metadata fields and return run.json as written (under the run's lock: a worker, the
        server and the command line may change one run at once)."""
        if "status" in changes and changes["status"] not in STORED:
            raise ValueError(f"Unknown status {shown_value(changes['status'])}; one of {', '.join(STORED)}.")
        with self.locked(run_id):
            value, problem = self._raw(run_id)
            if problem or not isinstance(value, dict):
                raise RunDamaged(f"Run {run_id} cannot be changed: "
                                 f"{problem or 'its run.json does not hold an object'}.")
            value.update(changes)
            write_json(self.path(run_id) / "run.json", value)
        return value

    def _history(self, run_id: str) -> tuple[list[dict], str | None]:
        value, problem = read_stored(self.path(run_id) / "history.json")
        if value is MISSING:
            return [], None
        if problem:
            return [], problem
        return check_history(value)

    def history(self, run_id: str) -> list[dict]:
        """The finished epochs, each a dict of floats (and its whole `epoch`); [] when history.json is damaged."""
        return self._history(run_id)[0]

    def append_epoch(self, run_id: str, epoch: dict) -> None:
        """Add one finished epoch to the history, and count it in run.json."""
        with self.locked(run_id):
            history = self.history(run_id) + [epoch]
            write_json(self.path(run_id) / "history.json", history)
            seconds = self.get(run_id)["epoch_seconds"]
            self.update(run_id, epochs_done=len(history), epoch_seconds=seconds + [epoch.get("seconds")])

    def live(self, run_id: str) -> dict:
        live = read_json(self.path(run_id) / "live.json", default={})
        return live if isinstance(live, dict) else {}

    def write_live(self, run_id: str, live: dict) -> None:
        write_json(self.path(run_id) / "live.json", live)

    def model_path(self, run_id: str) -> Path:
        return self.path(run_id) / MODEL_FILE

    def has_model(self, run_id: str) -> bool:
        try:
            return self.model_path(run_id).is_file()
        except OSError:  # an unreadable run folder
            return False

    def load_model(self, run_id: str):
        """The run's trained Keras model. Raises ModelUnavailable with a readable reason."""
        path = self.model_path(run_id)
        if not self.has_model(run_id):
            raise ModelUnavailable(f"Run {run_id} has no saved model (it may have stopped before its first "
                                   "epoch ended, or its file was removed).")
        try:
            whole = zipfile.is_zipfile(path)
        except OSError as error:
            raise ModelUnavailable(f"The model file of run {run_id} cannot be read "
                                   f"({error.strerror or type(error).__name__}).") from None
        if not whole:
            raise ModelUnavailable(f"The model file of run {run_id} is damaged and cannot be read: it is not a "
                                   "Keras model archive. Train the run again, or delete it.")
        import keras

        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # a damaged archive can fail in many ways inside Keras
            raise ModelUnavailable(f"The model file of run {run_id} is damaged and cannot be loaded "
                                   f"({type(error).__name__}). Train the run again, or delete it.") from None

    # ---- the weights after each epoch ----------------------------------------------------------------

    def epoch_weights_path(self, run_id: str, epoch: int) -> Path:
        return self.path(run_id) / EPOCHS_FOLDER / f"epoch-{int(epoch):03d}.weights.h5"

    def epoch_weights(self, run_id: str) -> list[int]:
        """The epochs whose weights this run keeps, in order ([] for none, or an unreadable folder)."""
        try:
            names = [entry.name for entry in (self.path(run_id) / EPOCHS_FOLDER).iterdir() if entry.is_file()]
        except OSError:
            return []
        return sorted(int(match.group(1)) for name in names if (match := EPOCH_FILE.fullmatch(name)))

    def save_epoch_weights(self, run_id: str, epoch: int, model, limit: int | None = None) -> None:
        """Keep `model`'s weights as those after `epoch` (weights only: no optimizer state), then thin."""
        handle, temporary = tempfile.mkstemp(dir=self.path(run_id), prefix=".epoch-", suffix=".weights.h5")
        os.close(handle)
        try:
            model.save_weights(temporary, overwrite=True)
            self.write_epoch_weights(run_id, epoch, Path(temporary).read_bytes(), limit)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def write_epoch_weights(self, run_id: str, epoch: int, data: bytes, limit: int | None = None) -> list[int]:
        """Store one epoch's weights file (as save_epoch_weights makes it, or as a Ray task sends it) and
        thin the run's epochs to `limit` bytes (EPOCH_WEIGHTS_LIMIT by default); returns the epochs removed.

        A net so big that two epochs do not fit keeps none: its model file holds its last epoch anyway."""
        limit = EPOCH_WEIGHTS_LIMIT if limit is None else limit
        if 2 * len(data) > limit:
            removed = self.epoch_weights(run_id)
            for old in removed:
                self.epoch_weights_path(run_id, old).unlink(missing_ok=True)
            return removed
        write_atomic(self.epoch_weights_path(run_id, epoch), data)
        return self.thin_epoch_weights(run_id, limit)

    def thin_epoch_weights(self, run_id: str, limit: int | None = None) -> list[int]:
        """Remove epochs until the rest take at most `limit` bytes; returns the epochs removed.

        The first and the last epoch always stay. Each step removes the epoch between two others whose
        removal leaves the smallest gap, the oldest of equals: the early epochs thin out first, every
        second one, and what is kept stays evenly spread over the run."""
        limit = EPOCH_WEIGHTS_LIMIT if limit is None else limit
        sizes = {}
        for epoch in self.epoch_weights(run_id):
            try:
                sizes[epoch] = self.epoch_weights_path(run_id, epoch).stat().st_size
            except OSError:
                continue
        kept, removed = sorted(sizes), []
        while sum(sizes[epoch] for epoch in kept) > limit and len(kept) > 2:
            gaps = [(kept[index + 1] - kept[index - 1], kept[index], index) for index in range(1, len(kept) - 1)]
            _, epoch, index = min(gaps)
            self.epoch_weights_path(run_id, epoch).unlink(missing_ok=True)
            del kept[index]
            removed.append(epoch)
        return removed

    # ---- an epoch's files, committed by its history row --------------------------------------------

    def _staged(self, run_id: str, epoch: int) -> tuple[Path, Path]:
        folder = self.path(run_id) / STAGED_FOLDER
        return folder / f"epoch-{int(epoch):03d}.{MODEL_FILE}", folder / self.epoch_weights_path(run_id, epoch).name

    def stage_epoch(self, run_id: str, epoch: int, model: bytes, weights: bytes | None) -> None:
        """Write an epoch's model and weights (None: none kept) beside the run's, where no reader looks yet."""
        staged_model, staged_weights = self._staged(run_id, epoch)
        if weights is not None:
            write_atomic(staged_weights, weights)
        write_atomic(staged_model, model)

    def commit_epoch(self, run_id: str, row: dict) -> None:
        """Make a staged epoch the run's: its history row is the commit point, then its files move in.

        A fault at any moment leaves either the epoch before (the row was not written: settle_epochs
        drops the staged files) or this one (settle_epochs moves the staged files in), never a model or
        weights ahead of the history."""
        with self.locked(run_id):
            self.append_epoch(run_id, row)
            self._place_staged(run_id, row["epoch"])

    def _place_staged(self, run_id: str, epoch: int) -> None:
        """The weights go in before the model: a staged model file still there means the epoch's files
        are not all in place yet."""
        staged_model, staged_weights = self._staged(run_id, epoch)
        if staged_weights.exists():
            self.write_epoch_weights(run_id, epoch, staged_weights.read_bytes())
            staged_weights.unlink()
        if staged_model.exists():
            os.replace(staged_model, self.model_path(run_id))
        with contextlib.suppress(OSError):
            staged_model.parent.rmdir()

    def settle_epochs(self, run_id: str, trainer_gone: bool = False) -> int:
        """Once a run's trainer has stopped training (it ended, or died): finish or drop a half-saved epoch,
        remove its interrupted writes' temporaries (its live state's too when its process is gone), and
        count the history's epochs in run.json; returns that count."""
        with self.locked(run_id):
            return self._settle_epochs(run_id, trainer_gone)

    def _settle_epochs(self, run_id: str, trainer_gone: bool) -> int:
        history = self.history(run_id)
        staged = self.path(run_id) / STAGED_FOLDER
        committed = {row.get("epoch") for row in history}
        for model in staged.glob(f"epoch-*.{MODEL_FILE}"):
            epoch = int(model.name.split(".")[0].removeprefix("epoch-"))
            if epoch in committed:
                self._place_staged(run_id, epoch)
        shutil.rmtree(staged, ignore_errors=True)
        for folder in (self.path(run_id), self.path(run_id) / EPOCHS_FOLDER):
            for path in folder.glob(".*") if folder.is_dir() else ():
                if path.is_file() and (TRAINER_TEMPORARY.fullmatch(path.name)
                                       or (trainer_gone and LIVE_TEMPORARY.fullmatch(path.name))):
                    path.unlink(missing_ok=True)
        raw, _ = self._raw(run_id)
        if isinstance(raw, dict) and raw.get("epochs_done") != len(history):
            self.update(run_id, epochs_done=len(history), epoch_seconds=[row.get("seconds") for row in history])
        return len(history)

    def request_stop(self, run_id: str) -> None:
        write_atomic(self.path(run_id) / "STOP", now_iso())

    def stop_requested(self, run_id: str) -> bool:
        return (self.path(run_id) / "STOP").exists()

    def list(self) -> list[dict]:
        """All runs, newest first, each as get() gives it (damaged ones included, with their problem).

        Folders without a run.json (one being created, or not a run) and hidden ones are left out.
        """
        runs = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            if not RUN_ID_PATTERN.fullmatch(folder.name):
                continue
            try:
                if not folder.is_dir():
                    continue
                runs.append(self.get(folder.name))
            except RunNotFound:
                continue
            except OSError as error:
                runs.append(damaged_meta(folder.name, f"its folder cannot be read ({error.strerror})"))
        return sorted(runs, key=lambda meta: (meta["created"], meta["id"]), reverse=True)

    def delete(self, run_id: str) -> None:
        """Remove a run for good; refused while it trains (a damaged run can always be removed)."""
        meta = self.get(run_id)
        raw, _ = self._raw(run_id)
        recorded = raw.get("status") if isinstance(raw, dict) else None
        if recorded in ACTIVE and pid_alive(raw.get("pid")):
            raise ValueError(f"Run {shown_value(meta['name'])} is still {recorded}: stop it before deleting it.")
        try:
            shutil.rmtree(self.path(run_id))
        except OSError as error:
            raise RunDamaged(f"Run {run_id} cannot be deleted ({error.strerror or type(error).__name__}).") from None

    def recover_interrupted(self, alive_run_ids=()) -> list[str]:
        """Mark as interrupted every queued or running run whose worker is gone.

        A run is orphaned when the process that owns it is dead, or it is this process but the
        run is not one of `alive_run_ids` (those this process is still training). Returns their ids.
        """
        recovered = []
        for meta in self.list():
            if meta["status"] not in ACTIVE or meta["id"] in alive_run_ids:
                continue
            pid = meta.get("pid")
            if pid == os.getpid() or not pid_alive(pid):
                done = self.settle_epochs(meta["id"], trainer_gone=True)
                self.update(meta["id"], status=RunStatus.INTERRUPTED, finished=now_iso(),
                            message=f"The server stopped while this run was {meta['status']}; "
                                    f"{done} finished epoch(s) kept.")
                recovered.append(meta["id"])
        return recovered
