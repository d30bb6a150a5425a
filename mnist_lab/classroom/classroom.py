"""The room a teacher runs: the pinned models every learner opens first, the address to give learners (with a
QR code), and the reset between lessons that archives the learners' runs and handwriting into a dated folder.

The room's settings live in one small JSON file in the run store's folder (hidden, so never listed as a run).
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
from datetime import datetime
from pathlib import Path

from mnist_lab.errors import LabError
from mnist_lab.experiments import ExperimentStore
from mnist_lab.runs import ACTIVE, USABLE, RunStore, write_json

SETTINGS_FILE = ".classroom.json"
ARCHIVE_FOLDER = ".archive"


class Room:
    """The teacher's choices for one server: pinned run ids, in order. Safe between threads."""

    def __init__(self, store: RunStore):
        self.store = store
        self.path = Path(store.root) / SETTINGS_FILE
        self._lock = threading.Lock()

    def _read(self) -> dict:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def pinned(self) -> list[str]:
        """The pinned runs that still exist, in the teacher's order."""
        pins = self._read().get("pinned")
        pins = [pin for pin in pins if isinstance(pin, str)] if isinstance(pins, list) else []
        existing = {meta["id"] for meta in self.store.list()}
        return [pin for pin in pins if pin in existing]

    def pin(self, run_id: str, pinned: bool = True) -> list[str]:
        """Pin a usable run (or unpin it); returns the pins."""
        with self._lock:
            pins = self.pinned()
            if pinned and run_id not in pins:
                if self.store.get(run_id)["status"] not in USABLE or not self.store.has_model(run_id):
                    raise LabError("Only a run with a trained model can be pinned: wait until it has an epoch.")
                pins.append(run_id)
            if not pinned and run_id in pins:
                pins.remove(run_id)
            write_json(self.path, {**self._read(), "pinned": pins})
            return pins


def default_models(runs: list[dict], pinned: list[str], count: int = 2, has_model=lambda run_id: True) -> list[str]:
    """The runs Draw and Compare open with: the teacher's pins, then the most accurate runs with a model."""
    usable = [meta for meta in runs if meta["status"] in USABLE and has_model(meta["id"])]
    chosen = [run_id for run_id in pinned if any(meta["id"] == run_id for meta in usable)]
    ranked = sorted((meta for meta in usable if meta["id"] not in chosen),
                    key=lambda meta: (meta.get("test_accuracy") is not None, meta.get("test_accuracy") or 0.0,
                                      meta.get("created") or ""), reverse=True)
    return (chosen + [meta["id"] for meta in ranked])[:count]


def learner_address(port: int, scheme: str = "http") -> str:
    """The address learners on the same network can open: this machine's outward-facing IP and the port.

    Connecting a UDP socket sends nothing; it only asks the system which interface would be used."""
    host = "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            host = probe.getsockname()[0]
        except OSError:
            pass
    return f"{scheme}://{host}:{port}/"


def qr_png(text: str, scale: int = 8) -> bytes:
    """A QR code of `text` as a PNG, for learners to scan from the projector."""
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def reset_room(store: RunStore, handwriting_root: str | Path, now: datetime | None = None) -> dict:
    """Move every learner's finished runs and all handwriting into one dated archive folder.

    Runs of no learner (trained before class from the command line) and pinned runs stay, and so do runs
    still queued or training. Experiments are closed and archived with their runs. Nothing is deleted.
    Returns {"folder", "runs", "samples", "kept", "experiments"}."""
    now = now or datetime.now()
    folder = Path(store.root) / ARCHIVE_FOLDER / f"{now:%Y-%m-%d-%H%M%S}"
    pinned = set(Room(store).pinned())
    moved, kept = 0, 0
    for meta in store.list():
        if not meta.get("owner") or meta["id"] in pinned or meta["status"] in ACTIVE:
            kept += 1
            continue
        (folder / "runs").mkdir(parents=True, exist_ok=True)
        shutil.move(str(store.path(meta["id"])), str(folder / "runs" / meta["id"]))
        moved += 1
    samples = 0
    handwriting_root = Path(handwriting_root)
    if handwriting_root.is_dir():
        entries = [entry for entry in handwriting_root.iterdir() if not entry.name.startswith(".")]
        samples = sum(1 for entry in handwriting_root.rglob("*.png") if "raw" not in entry.parts)
        if entries:
            (folder / "handwriting").mkdir(parents=True, exist_ok=True)
            for entry in entries:
                shutil.move(str(entry), str(folder / "handwriting" / entry.name))
    experiments = ExperimentStore(store).archive_into(folder)
    return {"folder": folder, "runs": moved, "samples": samples, "kept": kept, "experiments": experiments}
