"""The run store: every training run on disk, so that no stop, crash or refresh loses one.

Layout, one folder per run under `runs/` (or MNIST_LAB_RUNS):

    runs/<run_id>/run.json      metadata: name, architecture, settings, status, timings, test scores
    runs/<run_id>/history.json  one dict per finished epoch (loss, accuracy, val_loss, val_accuracy, seconds)
    runs/<run_id>/live.json     the running epoch's smoothed per-batch curve and progress, rewritten ~1/s
    runs/<run_id>/model.keras   the trained model (written when training ends, stopped runs too)
    runs/<run_id>/epochs/epoch-NNN.weights.h5
                                the weights after each finished epoch (Keras' weights-only format), for
                                the Draw page's epoch slider; at most EPOCH_WEIGHTS_LIMIT bytes a run
    runs/<run_id>/STOP          present when a stop was asked for (works across processes)
    runs/<run_id>/.staged/      the model and weights of the epoch being saved, until its history row
                                commits them (see commit_epoch)

Every file is written atomically (temporary file, then rename), so a reader never sees half a file,
with the mode the umask gives, so a server running as another user than the command line reads it;
every read-change-write of a run's files holds the run's lock (locked_folder), so no writer loses another's.
Everything read is checked against the types the lab writes: a run whose files are damaged (edited
by hand, copied half-way, unreadable) is listed with the status `damaged` and a `problem` that says
what is wrong, and every other run is shown as before.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from mnist_lab.errors import LabError, shown_value

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
# The names older code imports.
STATUSES = STORED
ACTIVE_STATUSES = tuple(status for status in STORED if status in ACTIVE)


class ModelUnavailable(LabError):
    """A run's model file is missing, unreadable or damaged."""


class RunNotFound(LabError, KeyError):
    def __str__(self):
        return f"No run with id {shown_value(self.args[0])}."


class RunDamaged(LabError):
    """A run's metadata cannot be read, so it cannot be changed; the message says why."""


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_VARIABLE) or "runs")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old or the new content, never a mix.

    The temporary file is opened with mode 0666, which the kernel narrows by the umask (mkstemp's
    0600 would hide the file from a server running as another user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


try:
    import fcntl
except ImportError:  # Windows: the lock serializes the threads of one process only
    fcntl = None

_FOLDER_LOCKS: dict[str, threading.RLock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()


@contextlib.contextmanager
def locked_folder(folder: Path):
    """Hold a folder's lock while its files are read, changed and written back, so that two writers at once
    (a worker and the server, two threads of a server) never lose each other's change: a lock per folder
    among this process' threads, and flock on the folder itself among processes. Re-entrant."""
    key = os.path.abspath(folder)
    with _FOLDER_LOCKS_GUARD:
        lock = _FOLDER_LOCKS.setdefault(key, threading.RLock())
    with lock:
        held = _HELD.__dict__.setdefault("folders", set())
        if key in held or fcntl is None:
            yield
            return
        handle = os.open(key, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.add(key)
            yield
        finally:
            held.discard(key)
            os.close(handle)  # closing releases the flock


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=1, default=_json_default))


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: Path, default=None):
    """The file's JSON value, or `default` when it is missing, unreadable or not JSON."""
    value, problem = _read_stored(Path(path))
    return default if value is _MISSING or problem else value


_MISSING = object()


def _read_stored(path: Path):
    """(value, problem): the file's JSON value and None; _MISSING and None when there is no file;
    None and a sentence's end saying why it cannot be used ("history.json is not valid JSON")."""
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return _MISSING, None
    except IsADirectoryError:
        return None, f"{path.name} is a folder, not a file"
    except PermissionError:
        return None, f"{path.name} cannot be read (permission denied)"
    except OSError as error:
        return None, f"{path.name} cannot be read ({error.strerror or type(error).__name__})"
    try:
        return json.loads(text), None
    except (ValueError, RecursionError):
        return None, f"{path.name} is not valid JSON"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True


# ---- What run.json and history.json may hold ------------------------------------------------------

def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _or_none(check):
    return lambda value: value is None or check(value)


_TEXT = (lambda value: isinstance(value, str), "text")
_TEXT_OR_NONE = (_or_none(_TEXT[0]), "text or null")
_WHOLE = (_is_whole, "a whole number")
_WHOLE_OR_NONE = (_or_none(_is_whole), "a whole number or null")
_NUMBER_OR_NONE = (_or_none(_is_number), "a number or null")
_FLAG = (lambda value: isinstance(value, bool), "true or false")
_OBJECT_OR_NONE = (_or_none(lambda value: isinstance(value, dict)), "an object or null")
_NUMBERS = (lambda value: isinstance(value, list) and all(_or_none(_is_number)(v) for v in value),
            "a list of numbers")
_LAYERS = (lambda value: isinstance(value, list) and all(isinstance(layer, dict) for layer in value),
           "a list of layer objects")

# Top-level fields: their type and the value a missing or damaged one is read as.
META_FIELDS = {
    "name": (_TEXT, None), "message": (_TEXT, ""), "created": (_TEXT, ""),
    "started": (_TEXT_OR_NONE, None), "finished": (_TEXT_OR_NONE, None), "pid": (_WHOLE_OR_NONE, None),
    "epochs_done": (_WHOLE, 0), "epoch_seconds": (_NUMBERS, []),
    "test_loss": (_NUMBER_OR_NONE, None), "test_accuracy": (_NUMBER_OR_NONE, None),
    "parameters": (_WHOLE_OR_NONE, None), "multiply_adds": (_WHOLE_OR_NONE, None),
    "device": (_TEXT_OR_NONE, None), "backend": (_TEXT_OR_NONE, None), "executor": (_TEXT_OR_NONE, None),
    "architecture": ((lambda value: isinstance(value, dict), "an object"), {}),
    "settings": ((lambda value: isinstance(value, dict), "an object"), {}),
    "batch_normalization": (_OBJECT_OR_NONE, None), "versions": (_OBJECT_OR_NONE, None),
}
# Fields inside the objects above (a damaged one is read as null).
NESTED_FIELDS = {
    "architecture": {"name": _TEXT_OR_NONE, "label": _TEXT_OR_NONE, "source": _TEXT_OR_NONE,
                     "layers": (_or_none(_LAYERS[0]), _LAYERS[1])},
    "settings": {"epochs": _WHOLE, "batch_size": _WHOLE, "optimizer": _TEXT, "learning_rate": _NUMBER_OR_NONE,
                 "train_size": _WHOLE_OR_NONE, "validation": _TEXT, "validation_size": _WHOLE_OR_NONE,
                 "seed": _WHOLE_OR_NONE, "augment": _FLAG, "schedule": _TEXT},
    "batch_normalization": {"batches": _WHOLE, "caught_up": _NUMBER_OR_NONE, "images": _WHOLE,
                            "validation_accuracy_before": _NUMBER_OR_NONE, "validation_loss_before": _NUMBER_OR_NONE,
                            "test_accuracy_before": _NUMBER_OR_NONE, "test_loss_before": _NUMBER_OR_NONE},
}


def accuracy_before_correction(record: dict) -> float | None:
    """A corrected run's accuracy on held-out images with its lagging BatchNormalization statistics: the
    last epoch's validation score (runs stored before that change kept a test score instead)."""
    for field in ("validation_accuracy_before", "test_accuracy_before"):
        value = record.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _wrong(field: str, value, expected: str) -> str:
    return f"{field} is {shown_value(value)}, not {expected}"


def check_meta(raw, run_id: str) -> dict:
    """run.json's content as the pages may use it: every known field of the right type (missing ones
    filled in), and status DAMAGED with a `problem` when anything is wrong or the file is unreadable."""
    problems = []
    meta = dict(raw) if isinstance(raw, dict) else {}
    if not isinstance(raw, dict):
        problems.append("run.json does not hold an object")
    elif "id" not in raw:
        problems.append("run.json has no id")
    elif raw["id"] != run_id:
        problems.append(f"run.json names run {shown_value(raw['id'])}, but its folder is {run_id}")
    meta["id"] = run_id
    status = meta.get("status")
    if isinstance(raw, dict):
        if "status" not in raw:
            problems.append("run.json has no status")
        elif status not in STORED:
            problems.append(_wrong("its status", status, "one of " + ", ".join(STORED)))
    for field, ((check, expected), default) in META_FIELDS.items():
        if field in meta and not check(meta[field]):
            problems.append(_wrong(field, meta[field], expected))
            meta[field] = default
        meta.setdefault(field, default)
    for field, known in NESTED_FIELDS.items():
        if isinstance(meta[field], dict):
            meta[field] = inner = dict(meta[field])
            for key, (check, expected) in known.items():
                if key in inner and not check(inner[key]):
                    problems.append(_wrong(f"{field}.{key}", inner[key], expected))
                    inner[key] = None
    if meta["name"] is None:
        meta["name"] = run_id
    meta["status"] = RunStatus(status) if status in STORED and not problems else RunStatus.DAMAGED
    if problems:
        meta["problem"] = _sentence(problems)
    return meta


def damaged_meta(run_id: str, problem: str) -> dict:
    """The listing of a run whose run.json cannot be read at all."""
    meta = check_meta({"id": run_id, "status": RunStatus.DAMAGED}, run_id)
    meta["problem"] = _sentence([problem])
    return meta


def _sentence(problems: list[str]) -> str:
    text = "; ".join(problems)
    return f"Damaged: {text}."


def check_history(raw) -> tuple[list[dict], str | None]:
    """(rows, None) for a readable history: dicts with a whole `epoch` from 1 and every other value a
    float or None (a non-finite number is read as None, as training writes it); ([], problem) otherwise."""
    if not isinstance(raw, list):
        return [], "history.json does not hold a list of epochs"
    rows = []
    for number, row in enumerate(raw, start=1):
        if not isinstance(row, dict):
            return [], f"epoch {number} of history.json is {shown_value(row)}, not an object"
        epoch = row.get("epoch")
        if not _is_whole(epoch) or epoch < 1:
            return [], f"epoch {number} of history.json has the epoch number {shown_value(epoch)}"
        clean = {"epoch": epoch}
        for key, value in row.items():
            if key == "epoch":
                continue
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                return [], f"{key} in epoch {number} of history.json is {shown_value(value)}, not a number"
            clean[str(key)] = float(value) if value is not None and math.isfinite(value) else None
        rows.append(clean)
    return rows, None


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

    def create(self, name: str, architecture: dict, settings: dict, **extra) -> dict:
        """Store a new queued run. architecture = {"name", "layers"}; settings = the training settings."""
        run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
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
        self.path(run_id).mkdir(parents=True)
        write_json(self.path(run_id) / "run.json", meta)
        write_json(self.path(run_id) / "history.json", [])
        return meta

    def _raw(self, run_id: str):
        """(run.json's value, problem); RunNotFound when the run has no folder or no run.json."""
        folder = self.path(run_id)
        value, problem = _read_stored(folder / "run.json")
        if value is _MISSING:
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
                meta["status"], meta["problem"] = RunStatus.DAMAGED, _sentence([history_problem])
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
        value, problem = _read_stored(self.path(run_id) / "history.json")
        if value is _MISSING:
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
