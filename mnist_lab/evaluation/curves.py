"""The runs' training curves: long-format history for a line chart, which runs a chart shows at first, and the chart."""

from __future__ import annotations

import pandas as pd

from mnist_lab.evaluation.comparison import NOTEBOOK, RUN, Entry, is_number

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
                if not is_number(value):
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
