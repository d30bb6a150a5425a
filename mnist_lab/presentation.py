"""How training is shown: durations, a run's settings in one line, what a result means, and the live charts'
Vega-Lite specs. Plain functions of run metadata, history and live snapshots, shared by pages and the command line."""

from __future__ import annotations

import collections
import functools
import json
import math

from mnist_lab.evaluation import batch_normalization
from mnist_lab.runs import accuracy_before_correction
from mnist_lab.training import OPTIMIZERS
from mnist_lab.training.phases import Phase

SERIES = ("training batches (smoothed)", "training (epoch mean)", "validation (epoch mean)")


def plural(count, word: str) -> str:
    """'1 epoch', '12 epochs': a count with its word."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def format_duration(seconds: float | None, compact: bool = False) -> str:
    """'45 s', '4 min 20 s', '1 h 05 min'; compact (for narrow figures): '45s', '4m 20s', '1h 05m'."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    second, minute, hour = ("s", "m", "h") if compact else (" s", " min", " h")
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}{second}"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}{minute} {seconds:02d}{second}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}{hour} {minutes:02d}{minute}"


def estimate_parts(estimate, settings) -> list[str]:
    """The pieces of a run's estimate, for one line under it: start-up, the epochs, the end."""
    parts = [f"start-up ≈ {format_duration(estimate.startup_seconds)} (building the net, loading the images)",
             f"{plural(settings.epochs, 'epoch')} of "
             f"{'under 1 s' if estimate.epoch_seconds < 0.5 else '≈ ' + format_duration(estimate.epoch_seconds)} "
             f"({settings.train_size:,} training and {settings.validation_size:,} validation images)"]
    if estimate.finish_seconds >= 0.5:
        parts.append(f"≈ {format_duration(estimate.finish_seconds)} for the test images")
    return parts


STARTING_STEPS = {
    Phase.QUEUED: "Starting: handing the run to a training process",
    Phase.STARTING: "Starting: building the model and loading data",
    Phase.FIRST_BATCH: "Starting: Keras prepares its training step and runs the first batch",
}
PHASES = {"training": "training", "validating": "measuring validation accuracy",
          "testing": "measuring accuracy on the test images",
          "normalizing": "re-estimating BatchNormalization's statistics"}


def progress_line(snapshot: dict, epochs: int) -> str:
    """The progress bar's text: the start-up step while the run starts, then epoch, batch and phase."""
    phase = snapshot.get("phase") or "starting"
    if phase in STARTING_STEPS:
        return f"{STARTING_STEPS[phase]}…"
    epoch, batch, batches = snapshot.get("epoch") or 1, snapshot.get("batch") or 0, snapshot.get("batches") or 1
    return f"Epoch {epoch} of {epochs} · batch {batch:,} of {batches:,} · {PHASES.get(phase, phase)}"


def time_left(snapshot: dict, estimate=None) -> tuple[float | None, bool]:
    """(seconds left, whether that is the estimate made before the run): from the batches' own speed once
    two have finished, before that from the estimate less the time already spent."""
    remaining = snapshot.get("remaining")
    finish = estimate.finish_seconds if estimate is not None else 0.0
    if remaining is not None and snapshot.get("phase") in ("training", "validating"):
        return remaining + finish, False
    if estimate is not None and (snapshot.get("phase") or "starting") in STARTING_STEPS:
        return max(0.0, estimate.run_seconds - (snapshot.get("elapsed") or 0.0)), True
    return None, False


def describe_settings(settings: dict) -> str:
    """One line: '12 epochs · batch 128 · Adam 0.001 · 55,000 images · validated on 5,000 held out · seed 1'."""
    optimizer = OPTIMIZERS.get(settings.get("optimizer"))
    validation = (f"validated on {settings.get('validation_size') or 0:,} held-out images"
                  if settings.get("validation") == "holdout" else "validated on the test images")
    parts = [plural(settings.get("epochs"), "epoch"),
             f"batch {settings.get('batch_size')}",
             f"{optimizer.label if optimizer else settings.get('optimizer')} {settings.get('learning_rate'):g}"
             if isinstance(settings.get("learning_rate"), (int, float)) else str(settings.get("optimizer")),
             f"{settings.get('train_size') or 0:,} training images", validation, f"seed {settings.get('seed')}"]
    if settings.get("schedule", "constant") != "constant":
        parts.insert(3, f"{settings['schedule']} schedule")
    if settings.get("augment"):
        parts.append("augmented")
    return " · ".join(parts)


def batch_normalization_note(meta: dict) -> str | None:
    """Why a short run's BatchNormalization statistics were re-estimated, with the test accuracy before
    and after; None if they were not."""
    record = meta.get("batch_normalization")
    if not isinstance(record, dict) or not isinstance(meta.get("test_accuracy"), (int, float)):
        return None
    before = accuracy_before_correction(record)
    before = f"{100 * before:.1f} %" if before is not None else "–"
    return (f"After only {record.get('batches', 0):,} batches, BatchNormalization's running averages (they move "
            f"1 % per batch) were just {100 * record.get('caught_up', 0):.0f} % of the way to the real statistics "
            f"of the images, so with them the net scored {before} on images it had not trained on: that is why "
            "the validation curve lags. The lab then measured those statistics directly on "
            f"{record.get('images', 0):,} training images, a forward pass that changes no weight: "
            f"{100 * meta['test_accuracy']:.1f} % on the test images. Long runs, like the notebook's 12 epochs, "
            "never need this.")


def result_notes(meta: dict, history: list[dict]) -> list[str]:
    """What a learner may wonder about a finished run, explained."""
    corrected = batch_normalization_note(meta)
    if corrected:
        return [corrected]
    notes = []
    settings = meta.get("settings") or {}
    layers = (meta.get("architecture") or {}).get("layers") or []
    last = history[-1] if history else {}
    accuracy, validation_accuracy = last.get("accuracy"), last.get("val_accuracy")
    batches = len(history) * math.ceil((settings.get("train_size") or 1) / (settings.get("batch_size") or 1))
    if (any(layer.get("type") == "BatchNormalization" for layer in layers) and accuracy is not None
            and validation_accuracy is not None and accuracy - validation_accuracy > batch_normalization.LOW_SCORE_GAP
            and batch_normalization.explains_low_score(batches)):
        caught_up = 1 - batch_normalization.lag(batches)
        notes.append(
            f"Validation accuracy ({100 * validation_accuracy:.1f} %) is far below training accuracy "
            f"({100 * accuracy:.1f} %) after only {batches:,} batches. On images it does not train on, "
            "BatchNormalization uses running averages, which move 1 % per batch: they are only "
            f"{100 * caught_up:.0f} % of the way to the real values. More batches (more images or epochs, "
            "or a smaller batch size) close the gap.")
    return notes


def chart_rows(snapshot: dict, history: list[dict], metric: str) -> list[dict]:
    """One metric's points for a live chart: the smoothed per-batch training curve, and the
    per-epoch training and validation means (as the notebook plotted them)."""
    column = {"loss": 1, "accuracy": 2}[metric]
    rows = [{"epoch": point[0], "value": point[column], "series": SERIES[0]}
            for point in snapshot.get("curve") or [] if len(point) == 3 and point[column] is not None]
    for row in history:
        for series, key in ((SERIES[1], metric), (SERIES[2], f"val_{metric}")):
            if row.get(key) is not None:
                rows.append({"epoch": row["epoch"], "value": row[key], "series": series})
    return rows


def metric_chart(metric: str, epochs: int):
    """An altair chart of one metric over epochs (data added by chart_spec): a thin smoothed batch
    line, and the epoch means as dots and lines."""
    import altair as alt

    title = {"loss": "loss (cross-entropy)", "accuracy": "accuracy"}[metric]
    x = alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, max(1, epochs)]),
              axis=alt.Axis(tickMinStep=1))
    y = alt.Y("value:Q", title=title, scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".0%" if metric == "accuracy" else "~g"))
    color = alt.Color("series:N", title=None, scale=alt.Scale(domain=list(SERIES),
                                                              range=["#9ecae9", "#1f77b4", "#ff7f0e"]),
                      legend=alt.Legend(orient="top", direction="horizontal", labelLimit=200, columns=2,
                                        symbolSize=60, labelFontSize=11))
    tooltip = [alt.Tooltip("series:N"), alt.Tooltip("epoch:Q", format=".2f"),
               alt.Tooltip("value:Q", format=".2%" if metric == "accuracy" else ".4f")]
    base = alt.Chart().encode(x=x, y=y, color=color, tooltip=tooltip)
    batches = base.transform_filter(alt.datum.series == SERIES[0]).mark_line(strokeWidth=1.5)
    epochs_ = base.transform_filter(alt.datum.series != SERIES[0]).mark_line(point=True, strokeWidth=2)
    return alt.layer(batches, epochs_).properties(height=240)


@functools.lru_cache(maxsize=64)
def _chart_template(metric: str, epochs: int) -> str:
    spec = metric_chart(metric, epochs).to_dict()
    spec.pop("datasets", None)
    for layer in spec["layer"]:
        layer.pop("data", None)  # the layers share the chart's data
    return json.dumps(spec)


def chart_spec(snapshot: dict, history: list[dict], metric: str, epochs: int) -> dict:
    """A Vega-Lite spec of one live chart. Building it with altair takes tens of milliseconds, far too
    much once a second for every learner watching: the chart is built once per shape, the points added."""
    spec = json.loads(_chart_template(metric, epochs))
    spec["data"] = {"values": chart_rows(snapshot, history, metric)}
    return spec


def run_label(meta: dict) -> str:
    """Owner, name and test accuracy, e.g. "Ada · seed-3layer · 1 epoch (97.9 %)": runs with the same settings
    told apart. A default run name already begins with its owner's name, which is not repeated."""
    owner = meta.get("owner_name") or ""
    name = meta["name"] if not owner or meta["name"].startswith(f"{owner} · ") else f"{owner} · {meta['name']}"
    accuracy = meta.get("test_accuracy")
    return f"{name} ({100 * accuracy:.1f} %)" if isinstance(accuracy, (int, float)) else name


def run_labels(metas: list[dict]) -> dict[str, str]:
    """Each run's label by id; two runs that would read the same get their ids added."""
    labels = {meta["id"]: run_label(meta) for meta in metas}
    counts = collections.Counter(labels.values())
    return {run_id: label if counts[label] == 1 else f"{label} [{run_id}]" for run_id, label in labels.items()}
