"""Runs side by side: the table of all runs, their curves for a chart, and what the numbers say.

Every run and every notebook result becomes an `Entry`, one row of the comparison table; the
notebook's rows come from reference.py and are marked as such. Nothing here needs Keras: the
table and the observations are built from run.json and history.json alone.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import pandas as pd

from mnist_lab import reference as reference_results
from mnist_lab.architecture.json_format import to_json
from mnist_lab.runs import ACTIVE, RunStatus, accuracy_before_correction
from mnist_lab.views.markdown import quoted

RUN = "run"
NOTEBOOK = "notebook"
MNIST_TRAIN_IMAGES = 60000
# The notebook's closing table was "Architecture / Accuracy-%": the accuracy comes first (on a phone it is
# the one column in view), then what tells the rows apart, then the settings.
TABLE_COLUMNS = (
    "test accuracy %", "name", "learner", "best val. accuracy %", "architecture", "started", "status", "source", "epochs",
    "s / 1,000 images", "s / epoch", "parameters", "training images", "batch size", "optimizer", "augmentation",
    "device", "notes",
)
CLASS_SET_COLUMN = "class handwriting %"
MISSING = "–"  # how the table and the sentences write a value that is not known
# Validation loss this far above its lowest value (10 %), for at least two epochs, counts as overfitting.
OVERFIT_RISE = 0.10
OVERFIT_EPOCHS = 2
# Within this many accuracy points of the notebook at the same epoch, a run "tracks" it.
TRACKING_POINTS = 0.5
# Test accuracies closer than this (points) are within the noise of one random start.
NOISE_POINTS = 0.15
# Keras' BatchNormalization moves its running averages 1 % per batch (momentum 0.99). Averages that still lag
# by SHORT_RUN_LAG or more (fewer than about 300 batches) make a run score far below what it learnt, in
# inference mode: the lag the observations explain. Training re-estimates them from a smaller lag on
# (training.fitting.BATCH_NORMALIZATION_LAG_LIMIT, 1 %), where a pass is cheap but the gap too small to explain.
BATCH_NORMALIZATION_MOMENTUM = 0.99
SHORT_RUN_LAG = 0.05


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

    @property
    def best_val_accuracy(self) -> float | None:
        values = [row["val_accuracy"] for row in self.history if _is_number(row.get("val_accuracy"))]
        return max(values) if values else None

    @property
    def seconds_per_thousand(self) -> float | None:
        """Seconds per 1,000 training images: epochs of different sizes compared fairly."""
        if not self.seconds_per_epoch or not self.train_size:
            return None
        return 1000 * self.seconds_per_epoch / self.train_size


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_int(value) -> int | None:
    return int(value) if _is_number(value) else None


def _median_seconds(history, meta) -> float | None:
    seconds = [row.get("seconds") for row in history if _is_number(row.get("seconds"))]
    if not seconds:
        seconds = [value for value in meta.get("epoch_seconds") or [] if _is_number(value)]
    return float(statistics.median(seconds)) if seconds else None


def _optimizer_text(key, learning_rate) -> str | None:
    """'Adam, rate 0.001': the optimizer's name from the training registry, and its learning rate."""
    from mnist_lab.training import OPTIMIZERS

    if not key:
        return None
    name = OPTIMIZERS[key].label if key in OPTIMIZERS else str(key)
    return f"{name}, rate {learning_rate:g}" if _is_number(learning_rate) else name


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
    return batches, 1 - BATCH_NORMALIZATION_MOMENTUM ** batches


def short_run_explanation(meta: dict) -> str | None:
    """Why a short run of a net with BatchNormalization scores far below what it learnt, or None.

    The one explanation of a low score after few batches, for the Compare and the Train page alike:
    validation, testing and drawings use BatchNormalization's running averages, which after a short run
    are still far from the images' real statistics. Fewer images per epoch are not the cause.
    """
    progress = batch_normalization_progress(meta)
    if progress is None or 1 - progress[1] < SHORT_RUN_LAG:
        return None
    batches, caught_up = progress
    text = (f"After only {batches:,} batches, its BatchNormalization running averages (they move 1 % per batch) "
            f"are {100 * caught_up:.0f} % of the way to the images' real statistics. Validation, testing and "
            "drawings use those averages, so the net scores far below what it has learnt; more batches (more "
            "epochs or images, or a smaller batch) close the gap.")
    record = meta.get("batch_normalization")
    after = meta.get("test_accuracy")
    if isinstance(record, dict) and _is_number(after):
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
    history = tuple(row for row in history or [] if isinstance(row, dict) and _is_number(row.get("epoch")))
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
        test_accuracy=float(test_accuracy) if _is_number(test_accuracy) else None,
        notes=_run_notes(meta, epochs, has_model),
        created=str(meta.get("created") or ""),
        owner=str(meta.get("owner_name") or ""),
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


CURVE_METRICS = (("loss", "loss", "training"), ("val_loss", "loss", "validation"),
                 ("accuracy", "accuracy", "training"), ("val_accuracy", "accuracy", "validation"))


def curves(entries: list[Entry]) -> pd.DataFrame:
    """Long-format history for a line chart: run, epoch, metric, split, value, segment.

    Unreadable (null) values are left out, and a new `segment` starts after each one, so that a
    chart drawing one line per segment shows a gap there instead of a zero or a bridging line.
    Accuracy is in percent.
    """
    rows = []
    for entry in entries:
        history = sorted(entry.history, key=lambda row: row["epoch"])
        for column, metric, split in CURVE_METRICS:
            segment, previous_epoch = 0, None
            for row in history:
                value = row.get(column)
                if not _is_number(value):
                    previous_epoch = None
                    continue
                if previous_epoch is None or row["epoch"] != previous_epoch + 1:
                    segment += 1
                previous_epoch = row["epoch"]
                rows.append({
                    "run": entry.label, "key": entry.key, "epoch": int(row["epoch"]), "metric": metric,
                    "split": split, "value": 100.0 * value if metric == "accuracy" else float(value),
                    "segment": f"{entry.key}|{column}|{segment}",
                })
    return pd.DataFrame(rows, columns=["run", "key", "epoch", "metric", "split", "value", "segment"])


def default_overlay(entries: list[Entry], preferred=(), count: int = 2, pinned=()) -> list[str]:
    """Keys to overlay when the learner has not chosen: the preferred runs that exist, else the teacher's
    pinned runs, else the most accurate runs that finished an epoch (the newest of equals), plus the
    notebook results with the same architectures (else the notebook's 3-layer net); with no runs, the
    three notebook results."""
    runs = [entry for entry in entries if entry.kind == RUN]
    notebook = {entry.architecture: entry.key for entry in entries if entry.kind == NOTEBOOK}
    known = {entry.key for entry in entries}
    chosen = [key for key in preferred if key in known]
    if not chosen:
        chosen = [key for key in pinned if key in known]
    if not chosen:
        finished = [entry for entry in runs if entry.history]
        ranked = sorted(finished, key=lambda entry: (entry.test_accuracy is not None, entry.test_accuracy or 0.0),
                        reverse=True)  # a stable sort: equals stay newest first
        chosen = [entry.key for entry in ranked][:count]
    if not chosen and not runs:
        return list(notebook.values())
    architectures = {entry.architecture for entry in entries if entry.key in chosen}
    matching = [key for architecture, key in notebook.items() if architecture in architectures]
    if not matching and "seed-3layer" in notebook:
        matching = [notebook["seed-3layer"]]
    return chosen + [key for key in matching if key not in chosen]


def _points(value: float) -> str:
    return f"{100 * value:.2f} %"


def overfitting(history) -> dict | None:
    """Training loss falling while validation loss rises: where and by how much, or None.

    The validation loss must stay more than OVERFIT_RISE above its lowest value for at least
    OVERFIT_EPOCHS epochs after it, so that a single noisy epoch is not called overfitting.
    """
    points = [(row["epoch"], row.get("loss"), row["val_loss"]) for row in sorted(history, key=lambda r: r["epoch"])
              if _is_number(row.get("val_loss"))]
    if len(points) < OVERFIT_EPOCHS + 1:
        return None
    best_index = min(range(len(points)), key=lambda index: points[index][2])
    best_epoch, _, best_val = points[best_index]
    after = points[best_index + 1:]
    if len(after) < OVERFIT_EPOCHS or best_val <= 0:
        return None
    threshold = best_val * (1 + OVERFIT_RISE)
    last_epoch, _, last_val = after[-1]
    if last_val <= threshold or statistics.mean(val for _, _, val in after) <= threshold:
        return None
    training = [(epoch, loss) for epoch, loss, _ in points[best_index:] if _is_number(loss)]
    if len(training) < 2 or training[-1][1] >= training[0][1]:
        return None
    return {"best_epoch": best_epoch, "best_val_loss": best_val, "last_epoch": last_epoch, "last_val_loss": last_val,
            "loss_at_best": training[0][1], "last_loss": training[-1][1]}


def _accuracy_observation(entries):
    scored = sorted((e for e in entries if e.test_accuracy is not None), key=lambda e: -e.test_accuracy)
    if not scored:
        validated = sorted((e for e in entries if e.best_val_accuracy is not None), key=lambda e: -e.best_val_accuracy)
        if not validated:
            return None
        best = validated[0]
        return (f"**Most accurate so far:** {quoted(best.label)}, {_points(best.best_val_accuracy)} best validation "
                "accuracy (no test score yet: it is measured when training ends).")
    best = scored[0]
    text = f"**Most accurate:** {quoted(best.label)}, {_points(best.test_accuracy)} on the 10,000 test images"
    if len(scored) == 1:
        return text + "."
    runner_up = scored[1]
    gap = 100 * (best.test_accuracy - runner_up.test_accuracy)
    text += f", {gap:.2f} points ahead of {quoted(runner_up.label)} ({_points(runner_up.test_accuracy)})."
    if gap < NOISE_POINTS:
        text += (" A gap this small can come from the random start alone: train both again with another "
                 "seed before calling one better.")
    return text


def _cost_observation(entries):
    """What the most accurate net pays in parameters over the smallest one, as the notebook's nets show."""
    scored = [entry for entry in entries if entry.test_accuracy is not None and entry.parameters]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda entry: entry.test_accuracy)
    smallest = min(scored, key=lambda entry: entry.parameters)
    if best is smallest or best.parameters <= smallest.parameters:
        return None
    gain = 100 * (best.test_accuracy - smallest.test_accuracy)
    return (f"**What accuracy costs:** {quoted(best.label)} has {best.parameters / smallest.parameters:.1f}x the "
            f"parameters of {quoted(smallest.label)} ({best.parameters:,} against {smallest.parameters:,}) for "
            f"{gain:.2f} more points of test accuracy.")


def _per_thousand(entry) -> str:
    return (f"{entry.seconds_per_thousand:.2f} s per 1,000 training images ({entry.seconds_per_epoch:.1f} s per "
            f"epoch of {entry.train_size:,})")


def _speed_observations(entries):
    """The fastest and the slowest net in time per 1,000 training images: epochs of 10,000 and of 60,000
    images cannot be compared per epoch."""
    texts = []
    for kind, intro in ((RUN, "**Fastest:**"), (NOTEBOOK, "**Fastest in the notebook:**")):
        timed = sorted((entry for entry in entries if entry.kind == kind and entry.seconds_per_thousand),
                       key=lambda entry: entry.seconds_per_thousand)
        if not timed:
            continue
        fastest, slowest = timed[0], timed[-1]
        text = f"{intro} {quoted(fastest.label)}, {_per_thousand(fastest)}"
        if len(timed) > 1 and slowest.seconds_per_thousand > fastest.seconds_per_thousand:
            ratio = slowest.seconds_per_thousand / fastest.seconds_per_thousand
            text += f"; {quoted(slowest.label)} takes {ratio:.1f}x as long ({_per_thousand(slowest)})"
        texts.append(text + ".")
    if len(texts) == 2:
        texts.append("The notebook's times were measured on its own machine: compare them with each other, "
                     "not with the runs made here.")
    return texts


def _overfitting_observations(entries):
    texts = []
    checked = 0
    for entry in entries:
        if sum(1 for row in entry.history if _is_number(row.get("val_loss"))) >= OVERFIT_EPOCHS + 1:
            checked += 1
        found = overfitting(entry.history)
        if found:
            texts.append(
                f"**{quoted(entry.label)} overfits:** its validation loss was lowest at epoch {found['best_epoch']} "
                f"({found['best_val_loss']:.4f}) and rose to {found['last_val_loss']:.4f} by epoch "
                f"{found['last_epoch']}, while its training loss kept falling ({found['loss_at_best']:.4f} → "
                f"{found['last_loss']:.4f}). It is memorising the training images: more epochs will not help; "
                "dropout, augmentation or stopping earlier would.")
    if not texts and checked:
        texts.append("**No clear overfitting:** in no run shown does the validation loss climb and stay more than "
                     f"{100 * OVERFIT_RISE:.0f} % above its lowest value while the training loss falls: what "
                     "the nets learn still carries over to images they have not seen.")
    return texts


def _tracking_observations(entries, references):
    notebook = {entry.architecture: entry for entry in references}
    texts = []
    for entry in entries:
        match = notebook.get(entry.architecture)
        if entry.kind != RUN or match is None:
            continue
        ours = {row["epoch"]: row.get("val_accuracy") for row in entry.history}
        theirs = {row["epoch"]: row.get("val_accuracy") for row in match.history}
        common = [epoch for epoch in ours if _is_number(ours[epoch]) and _is_number(theirs.get(epoch))]
        if not common:
            continue
        epoch = max(common)
        difference = 100 * (ours[epoch] - theirs[epoch])
        verdict = ("tracks the notebook" if abs(difference) <= TRACKING_POINTS
                   else "is ahead of the notebook" if difference > 0 else "is behind the notebook")
        text = (f"**{quoted(entry.label)} {verdict}:** after epoch {epoch} it has {_points(ours[epoch])} validation "
                f"accuracy; the notebook's net of the same architecture had {_points(theirs[epoch])} "
                f"({difference:+.2f} points).")
        if entry.explanation and difference < -TRACKING_POINTS:
            text += " " + entry.explanation
        elif entry.train_size and entry.train_size < MNIST_TRAIN_IMAGES and difference < -TRACKING_POINTS:
            text += (f" It trains on {entry.train_size:,} images per epoch, the notebook on "
                     f"{MNIST_TRAIN_IMAGES:,}: each of its epochs teaches less, so it needs more of them.")
        texts.append(text)
    return texts


def observations(entries: list[Entry], references: list[Entry] | None = None) -> list[str]:
    """A few sentences (markdown) on the entries shown: most accurate, fastest, overfitting, and
    whether each run tracks the notebook's net of the same architecture (`references`: the notebook
    entries to compare with, by default those among `entries`)."""
    if references is None:
        references = [entry for entry in entries if entry.kind == NOTEBOOK]
    texts = []
    accuracy = _accuracy_observation(entries)
    if accuracy:
        texts.append(accuracy)
    cost = _cost_observation(entries)
    if cost:
        texts.append(cost)
    texts += _speed_observations(entries)
    texts += _overfitting_observations(entries)
    texts += _tracking_observations(entries, references)
    return texts


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


def curve_chart(curve_data: pd.DataFrame, metric: str, labels: list[str], log_scale: bool = False,
                height: int = 420):
    """One altair line chart of `metric` ("loss" or "accuracy"): a colour per run (legend by run name),
    solid training and dashed validation lines, one line per gap-free segment."""
    import altair as alt

    title = "loss (lower is better)" if metric == "loss" else "accuracy % (higher is better)"
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    return alt.Chart(curve_data[curve_data["metric"] == metric]).mark_line(point=alt.OverlayMarkDef(size=30)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title, scale=scale),
        color=alt.Color("run:N", title=None, scale=alt.Scale(domain=labels, scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=420)),
        strokeDash=alt.StrokeDash("split:N", scale=alt.Scale(domain=["training", "validation"],
                                                             range=[[1, 0], [6, 3]]), legend=None),
        detail="segment:N",
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("split:N", title="data"), alt.Tooltip("epoch:Q"),
                 alt.Tooltip("value:Q", title=metric, format=".4f" if metric == "loss" else ".2f")],
    ).properties(height=height)
