"""Runs side by side: every run and every notebook result as an `Entry`, the table of them, and a run's downloads.

An `Entry` is one row of the comparison table; the notebook's rows come from reference.py and are marked as
such. Their curves are in curves.py, what the numbers say in observations.py. Nothing here needs Keras: the
table is built from run.json and history.json alone.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import pandas as pd

from mnist_lab.architecture.json_format import to_json
from mnist_lab.experiments.results import tag_of
from mnist_lab.evaluation import batch_normalization
from mnist_lab.evaluation import reference as reference_results
from mnist_lab.runs import ACTIVE, RunStatus, accuracy_before_correction

RUN = "run"
NOTEBOOK = "notebook"
# The notebook's closing table was "Architecture / Accuracy-%": the accuracy comes first (on a phone it is
# the one column in view), then what tells the rows apart, then the settings.
TABLE_COLUMNS = (
    "test accuracy %", "name", "learner", "best val. accuracy %", "architecture", "started", "status", "source", "epochs",
    "s / 1,000 images", "s / epoch", "parameters", "training images", "batch size", "optimizer", "augmentation",
    "class experiment", "device", "notes",
)
CLASS_SET_COLUMN = "class handwriting %"
MISSING = "–"  # how the table and the sentences write a value that is not known


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: a stored run or one of the notebook's published results."""

    key: str  # run id, or "notebook:<preset>"
    label: str  # unique display name: legend, pickers
    kind: str  # RUN or NOTEBOOK
    architecture: str
    status: str
    history: tuple[dict, ...]
    parameters: int | None = None
    epochs: int = 0
    batch_size: int | None = None
    optimizer: str | None = None
    train_size: int | None = None
    augment: bool = False
    device: str = ""
    seconds_per_epoch: float | None = None
    test_accuracy: float | None = None
    notes: str = ""
    created: str = ""
    has_model: bool = False
    explanation: str = ""  # why a short run scores below what it learnt (short_run_explanation)
    owner: str = ""  # the learner's name, for a run trained on the app
    experiment: str = ""  # the class experiment's value the run was trained for, if any

    @property
    def best_val_accuracy(self) -> float | None:
        values = [row["val_accuracy"] for row in self.history if is_number(row.get("val_accuracy"))]
        return max(values) if values else None

    @property
    def seconds_per_thousand(self) -> float | None:
        """Seconds per 1,000 training images: epochs of different sizes compared fairly."""
        if not self.seconds_per_epoch or not self.train_size:
            return None
        return 1000 * self.seconds_per_epoch / self.train_size


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_int(value) -> int | None:
    return int(value) if is_number(value) else None


def _median_seconds(history, meta) -> float | None:
    seconds = [row.get("seconds") for row in history if is_number(row.get("seconds"))]
    if not seconds:
        seconds = [value for value in meta.get("epoch_seconds") or [] if is_number(value)]
    return float(statistics.median(seconds)) if seconds else None


def _optimizer_text(key, learning_rate) -> str | None:
    """'Adam, rate 0.001': the optimizer's name from the training registry, and its learning rate."""
    from mnist_lab.training import OPTIMIZERS

    if not key:
        return None
    name = OPTIMIZERS[key].label if key in OPTIMIZERS else str(key)
    return f"{name}, rate {learning_rate:g}" if is_number(learning_rate) else name


def _run_notes(meta: dict, epochs: int, has_model: bool) -> str:
    status = meta.get("status") or "unknown"
    planned = _as_int((meta.get("settings") or {}).get("epochs"))
    if status == RunStatus.DAMAGED:
        return str(meta.get("problem") or "Damaged.")
    if status in ACTIVE:
        return f"training: {epochs} of {planned} epochs done" if planned else "training"
    notes = []
    if meta.get("message"):
        notes.append(str(meta["message"]))
    if epochs == 0:
        notes.append("no finished epoch: nothing to evaluate")
    elif not has_model:
        notes.append("no saved model file")
    return "; ".join(notes)


def batch_normalization_progress(meta: dict) -> tuple[int, float] | None:
    """(batches trained, share of the way BatchNormalization's running averages have come) for a run of
    a net with BatchNormalization; None for a net without it or a run whose size is not known."""
    layers = (meta.get("architecture") or {}).get("layers") or []
    if not any(isinstance(layer, dict) and layer.get("type") == "BatchNormalization" for layer in layers):
        return None
    record = meta.get("batch_normalization")
    if isinstance(record, dict) and _as_int(record.get("batches")):
        batches = _as_int(record["batches"])
    else:
        settings = meta.get("settings") or {}
        train_size, batch_size = _as_int(settings.get("train_size")), _as_int(settings.get("batch_size"))
        epochs = _as_int(meta.get("epochs_done")) or 0
        if not train_size or not batch_size or epochs < 1:
            return None
        batches = epochs * math.ceil(train_size / batch_size)
    return batches, 1 - batch_normalization.lag(batches)


def short_run_explanation(meta: dict) -> str | None:
    """Why a short run of a net with BatchNormalization scores far below what it learnt, or None.

    The one explanation of a low score after few batches, for the Compare and the Train page alike:
    validation, testing and drawings use BatchNormalization's running averages, which after a short run
    are still far from the images' real statistics. Fewer images per epoch are not the cause.
    """
    progress = batch_normalization_progress(meta)
    if progress is None or not batch_normalization.explains_low_score(progress[0]):
        return None
    batches, caught_up = progress
    text = (f"After only {batches:,} batches, its BatchNormalization running averages (they move 1 % per batch) "
            f"are {100 * caught_up:.0f} % of the way to the images' real statistics. Validation, testing and "
            "drawings use those averages, so the net scores far below what it has learnt; more batches (more "
            "epochs or images, or a smaller batch) close the gap.")
    record = meta.get("batch_normalization")
    after = meta.get("test_accuracy")
    if isinstance(record, dict) and is_number(after):
        before = accuracy_before_correction(record)
        before = f"{100 * before:.1f} %" if before is not None else MISSING
        text += (f" When training ended the lab measured those statistics directly on {_as_int(record.get('images')) or 0:,} "
                 f"training images, changing no weight: {before} on held-out images before (the last validation "
                 f"score), {100 * after:.1f} % test accuracy after; the validation curve, measured while it trained, "
                 "still shows the lag.")
    return text


def run_entry(meta: dict, history: list[dict], has_model: bool) -> Entry:
    """A stored run as a comparison entry; tolerant of missing fields (a failed or old run)."""
    settings = meta.get("settings") or {}
    architecture = meta.get("architecture") or {}
    history = tuple(row for row in history or [] if isinstance(row, dict) and is_number(row.get("epoch")))
    epochs = max(len(history), _as_int(meta.get("epochs_done")) or 0)
    test_accuracy = meta.get("test_accuracy")
    return Entry(
        key=str(meta["id"]),
        label=str(meta.get("name") or meta["id"]),
        kind=RUN,
        architecture=str(architecture.get("name") or "custom") if isinstance(architecture, dict) else "custom",
        status=str(meta.get("status") or "unknown"),
        history=history,
        parameters=_as_int(meta.get("parameters")),
        epochs=epochs,
        batch_size=_as_int(settings.get("batch_size")),
        optimizer=_optimizer_text(settings.get("optimizer"), settings.get("learning_rate")),
        train_size=_as_int(settings.get("train_size")),
        augment=bool(settings.get("augment")),
        device=str(meta.get("device") or ""),
        seconds_per_epoch=_median_seconds(history, meta),
        test_accuracy=float(test_accuracy) if is_number(test_accuracy) else None,
        notes=_run_notes(meta, epochs, has_model),
        created=str(meta.get("created") or ""),
        owner=str(meta.get("owner_name") or ""),
        experiment=str((tag_of(meta) or {}).get("value") or ""),
        has_model=has_model,
        explanation=short_run_explanation(meta) or "",
    )


def reference_entry(result: reference_results.ReferenceResult) -> Entry:
    settings = reference_results.NOTEBOOK_SETTINGS
    unreadable = sum(1 for row in result.history if any(row[c] is None for c in reference_results.HISTORY_COLUMNS))
    return Entry(
        key=result.key,
        label=result.name,
        kind=NOTEBOOK,
        architecture=result.preset,
        status="published",
        history=result.history,
        parameters=result.total_parameters or None,
        epochs=len(result.history),
        batch_size=settings["batch_size"],
        optimizer=_optimizer_text(settings["optimizer"], settings["learning_rate"]),
        train_size=settings["train_size"],
        augment=settings["augment"],
        device=reference_results.NOTEBOOK_DEVICE,
        seconds_per_epoch=result.seconds_per_epoch,
        test_accuracy=result.test_accuracy,
        notes="the notebook's published result" + (
            f"; {unreadable} epoch(s) of its log unreadable (gaps in the curves)" if unreadable else ""),
    )


def _unique_labels(entries: list[Entry]) -> list[Entry]:
    """Two runs with the same name get their ids added, so that every legend entry is one run."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.label] = counts.get(entry.label, 0) + 1
    return [entry if counts[entry.label] == 1 else replace(entry, label=f"{entry.label} ({entry.key})")
            for entry in entries]


def build_entries(runs: list[dict], histories: dict[str, list], model_ids=(),
                  references=None) -> list[Entry]:
    """Runs (newest first, as RunStore.list gives them), then the notebook's results.

    `histories` maps run id to its history; `model_ids` are the runs that have a model file;
    `references` defaults to the notebook's three results (pass [] to leave them out).
    """
    if references is None:
        references = reference_results.load_references()
    model_ids = set(model_ids)
    entries = [run_entry(meta, histories.get(meta["id"], []), meta["id"] in model_ids) for meta in runs]
    entries += [reference_entry(result) for result in references]
    return _unique_labels(entries)


def entries_from_store(store, references=None) -> list[Entry]:
    """Every run in a RunStore plus the notebook's results."""
    runs = store.list()
    return build_entries(runs, {meta["id"]: store.history(meta["id"]) for meta in runs},
                         [meta["id"] for meta in runs if store.has_model(meta["id"])], references)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def started_text(created: str) -> str:
    """'2026-12-02 11:55:30' from run.json's ISO time (UTC): short, and enough to tell two runs apart."""
    return created[:19].replace("T", " ") if created else MISSING


def runs_table(entries: list[Entry], class_set: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per entry, indexed by key, with the columns of TABLE_COLUMNS (accuracies in percent), and
    with `class_set` (run id: accuracy on the class's handwriting) a CLASS_SET_COLUMN after the test's."""
    rows = [{
        "name": entry.label,
        "learner": entry.owner or MISSING,
        "source": entry.kind,
        "architecture": entry.architecture,
        "parameters": entry.parameters,
        "epochs": entry.epochs,
        "batch size": entry.batch_size,
        "optimizer": entry.optimizer or MISSING,
        "training images": entry.train_size,
        "augmentation": "on" if entry.augment else "off",
        "class experiment": entry.experiment or MISSING,
        "device": entry.device or MISSING,
        "started": started_text(entry.created) if entry.kind == RUN else MISSING,
        "s / 1,000 images": entry.seconds_per_thousand,
        "s / epoch": entry.seconds_per_epoch,
        "best val. accuracy %": _percent(entry.best_val_accuracy),
        "test accuracy %": _percent(entry.test_accuracy),
        "status": entry.status,
        "notes": entry.notes,
    } for entry in entries]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS), index=pd.Index([e.key for e in entries], name="key"))
    for column in ("parameters", "epochs", "batch size", "training images"):
        table[column] = table[column].astype("Int64")
    for column in ("s / 1,000 images", "s / epoch", "best val. accuracy %", "test accuracy %"):
        table[column] = table[column].astype("Float64")
    if class_set is not None:
        scores = [_percent(class_set.get(entry.key)) for entry in entries]
        table.insert(1, CLASS_SET_COLUMN, pd.array(scores, dtype="Float64"))
    return table


def filter_table(table: pd.DataFrame, architectures=(), statuses=(), text: str = "",
                 include_notebook: bool = True) -> pd.DataFrame:
    """Rows matching every given filter; empty filters match everything. `text` searches the name."""
    keep = pd.Series(True, index=table.index)
    if architectures:
        keep &= table["architecture"].isin(list(architectures))
    if statuses:
        keep &= table["status"].isin(list(statuses))
    if text.strip():
        keep &= table["name"].str.contains(text.strip(), case=False, regex=False)
    if not include_notebook:
        keep &= table["source"] != NOTEBOOK
    return table[keep]


def history_csv(history: list[dict]) -> str:
    """A run's history as CSV, one row per epoch, the columns of history.json."""
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    extra = [key for row in history for key in row if key not in columns]
    return pd.DataFrame(history, columns=columns + list(dict.fromkeys(extra))).to_csv(index=False)


def architecture_json(meta: dict) -> str:
    """A run's architecture in the format the Architecture page imports."""
    architecture = meta.get("architecture") or {}
    layers = architecture.get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"Run {meta.get('name')!r} has no stored layer list to export.")
    return to_json(layers, str(architecture.get("name") or meta.get("name") or "architecture"))


def model_bytes(path) -> bytes:
    """A run's model file for its download button, read while the page runs: a deferred read (a callable) is
    dropped by a rerun between showing the button and the click, and the download then silently fails."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def export_name(meta: dict) -> str:
    """A file-name stem for a run's downloads: its name, made safe, plus its id."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(meta.get("name") or "")).strip("-")
    return f"{name}-{meta['id']}" if name and name != meta["id"] else str(meta["id"])
