"""The run store: every training run on disk, so that no stop, crash or refresh loses one.

Layout, one folder per run under `runs/` (or MNIST_LAB_RUNS):

    runs/<run_id>/run.json      metadata: name, architecture, settings, status, timings, test scores
    runs/<run_id>/history.json  one dict per finished epoch (loss, accuracy, val_loss, val_accuracy, seconds)
    runs/<run_id>/live.json     the running epoch's smoothed per-batch curve and progress, rewritten ~1/s
    runs/<run_id>/model.keras   the trained model (written when training ends, stopped runs too)
    runs/<run_id>/STOP          present when a stop was asked for (works across processes)

Every file is written atomically (temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from mnist_lab.errors import LabError

RUNS_VARIABLE = "MNIST_LAB_RUNS"
STATUSES = ("queued", "running", "completed", "stopped", "failed", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
MODEL_FILE = "model.keras"


class ModelUnavailable(LabError):
    """A run's model file is missing or unreadable."""


class RunNotFound(LabError, KeyError):
    def __str__(self):
        return f"No run with id {self.args[0]!r}."


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_VARIABLE) or "runs")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old or the new content, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=1, default=_json_default))


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return default


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Runs on disk. Safe to share between threads and processes: every write is one atomic file."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
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
            "status": "queued",
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

    def get(self, run_id: str) -> dict:
        meta = read_json(self.path(run_id) / "run.json")
        if meta is None:
            raise RunNotFound(run_id)
        return meta

    def update(self, run_id: str, **changes) -> dict:
        """Change metadata fields. Only the run's own worker writes a running run, so no lock is needed."""
        meta = self.get(run_id)
        if "status" in changes and changes["status"] not in STATUSES:
            raise ValueError(f"Unknown status {changes['status']!r}; one of {', '.join(STATUSES)}.")
        meta.update(changes)
        write_json(self.path(run_id) / "run.json", meta)
        return meta

    def history(self, run_id: str) -> list[dict]:
        return read_json(self.path(run_id) / "history.json", default=[])

    def append_epoch(self, run_id: str, epoch: dict) -> None:
        """Add one finished epoch to the history, and count it in run.json."""
        history = self.history(run_id) + [epoch]
        write_json(self.path(run_id) / "history.json", history)
        meta = self.get(run_id)
        self.update(run_id, epochs_done=len(history),
                    epoch_seconds=meta.get("epoch_seconds", []) + [epoch.get("seconds")])

    def live(self, run_id: str) -> dict:
        return read_json(self.path(run_id) / "live.json", default={})

    def write_live(self, run_id: str, live: dict) -> None:
        write_json(self.path(run_id) / "live.json", live)

    def model_path(self, run_id: str) -> Path:
        return self.path(run_id) / MODEL_FILE

    def has_model(self, run_id: str) -> bool:
        return self.model_path(run_id).is_file()

    def load_model(self, run_id: str):
        """The run's trained Keras model. Raises ModelUnavailable with a readable reason."""
        path = self.model_path(run_id)
        if not path.is_file():
            raise ModelUnavailable(f"Run {run_id} has no saved model (it may have stopped before its first "
                                   "epoch ended, or its file was removed).")
        import keras

        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as error:  # a damaged file can fail in many ways inside Keras
            raise ModelUnavailable(f"The model file of run {run_id} cannot be read ({error}).") from None

    def request_stop(self, run_id: str) -> None:
        write_atomic(self.path(run_id) / "STOP", now_iso())

    def stop_requested(self, run_id: str) -> bool:
        return (self.path(run_id) / "STOP").exists()

    def list(self) -> list[dict]:
        """All runs, newest first. Unreadable folders are skipped."""
        runs = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            meta = read_json(folder / "run.json") if folder.is_dir() else None
            if isinstance(meta, dict) and meta.get("id") == folder.name:
                runs.append(meta)
        return sorted(runs, key=lambda meta: meta.get("created") or "", reverse=True)

    def delete(self, run_id: str) -> None:
        meta = self.get(run_id)
        if meta["status"] in ACTIVE_STATUSES and _pid_alive(meta.get("pid")):
            raise ValueError(f"Run {meta['name']!r} is still {meta['status']}: stop it before deleting it.")
        shutil.rmtree(self.path(run_id))

    def recover_interrupted(self, alive_run_ids=()) -> list[str]:
        """Mark as interrupted every queued or running run whose worker is gone.

        A run is orphaned when the process that owns it is dead, or it is this process but the
        run is not one of `alive_run_ids` (those this process is still training). Returns their ids.
        """
        recovered = []
        for meta in self.list():
            if meta["status"] not in ACTIVE_STATUSES or meta["id"] in alive_run_ids:
                continue
            pid = meta.get("pid")
            if pid == os.getpid() or not _pid_alive(pid):
                done = meta.get("epochs_done", 0)
                self.update(meta["id"], status="interrupted", finished=now_iso(),
                            message=f"The server stopped while this run was {meta['status']}; "
                                    f"{done} finished epoch(s) kept.")
                recovered.append(meta["id"])
        return recovered

