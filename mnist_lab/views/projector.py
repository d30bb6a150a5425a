"""What the projector page shows of a class experiment, read from the back of a room on a 1280x720 beamer:
every run's accuracy as it trains, coloured by value; each run's test accuracy as a dot beside its value's
median and spread; what each value's runs are doing; and the CSV and PNG to take away.

Colours follow the experiment's values in their order, the same in both charts, so that a value is one
colour wherever it appears.
"""

from __future__ import annotations

import io

import altair as alt
import pandas as pd

from mnist_lab.experiments.results import ValueSummary, result_rows, runs_of_values
from mnist_lab.experiments.store import ExperimentStatus
from mnist_lab.experiments.variables import variable
from mnist_lab.runs import RunStore

TYPE_SIZE = 20  # the charts' labels, in pixels: legible from the back of a classroom
TITLE_SIZE = 24
PNG_WIDTH = 640  # the plot's width in the PNG (on the page, the column's width)
CHART_HEIGHT = 380  # the whole chart, title and legend included: about 250 px of plot
LARGE_TYPE_CSS = """<style>
.st-key-projector p, .st-key-projector li { font-size: 1.6rem; line-height: 1.35; }
.st-key-projector h1 { font-size: 2.6rem; }
.st-key-projector [data-testid="stCaptionContainer"] p { font-size: 1.05rem; }
.st-key-projector table th, .st-key-projector table td { font-size: 1.3rem; }
</style>"""
CURVE_COLUMNS = ["run", "value", "epoch", "accuracy", "measured"]
TRAINING, VALIDATION = "training images (smoothed)", "validation, after each epoch"
CURVES_CAPTION = "Lines: each run on its training images, smoothed. Dots: its validation accuracy after each epoch."
RESULTS_CAPTION = "Each dot a finished run. Black bar: the value's median; grey line: its spread, lowest to highest."


def experiment_label(experiment: dict) -> str:
    """How an experiment is named in the page's choice: its question, values, date, and whether it is open."""
    state = "open now" if experiment.get("status") == ExperimentStatus.OPEN else (experiment.get("created") or "")[:10]
    archived = " · archived" if experiment.get("archive") else ""
    return f"{experiment['question']} ({', '.join(experiment['labels'])}) · {state}{archived}"


def newly_opened(opened: dict | None, followed: str | None) -> bool:
    """Whether the open experiment is one the room's screen has not followed yet: the teacher opened it
    while the screen was up, so it takes the screen over."""
    return opened is not None and opened["id"] != followed


def curve_frame(experiment: dict, runs: list[dict], stores: list[RunStore]) -> pd.DataFrame:
    """Each run's accuracy in percent against epochs: the live, smoothed curve on its training images as it
    trains, and its validation accuracy at the end of each epoch. `stores` are where its runs may live (the
    room's store and, for an archived experiment, its archive)."""
    rows = []
    for meta, label in runs_of_values(experiment, runs):
        store = next((store for store in stores if store.path(meta["id"]).is_dir()), stores[0])
        for point in store.live(meta["id"]).get("curve") or []:
            if isinstance(point, list) and len(point) >= 3 and isinstance(point[2], (int, float)):
                rows.append([meta["id"], label, float(point[0]), 100.0 * point[2], TRAINING])
        for row in store.history(meta["id"]):
            if isinstance(row.get("val_accuracy"), (int, float)):
                rows.append([meta["id"], label, float(row["epoch"]), 100.0 * row["val_accuracy"], VALIDATION])
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _without_name(experiment: dict) -> str:
    """A Vega expression that shows a value's label without the variable's name ("16" for "batch size 16"):
    the axis or legend title names the variable once."""
    name = variable(experiment["variable"]).label.replace("'", "\\'")
    return f"replace(datum.label, '{name} ', '')"


def _colour(experiment: dict, legend: bool = True) -> alt.Color:
    labels = experiment["labels"]
    return alt.Color("value:N", scale=alt.Scale(domain=labels), sort=labels,
                     legend=alt.Legend(orient="top", title=variable(experiment["variable"]).label,
                                       labelExpr=_without_name(experiment), symbolSize=300) if legend else None)


def _large(chart):
    return (chart.configure_axis(labelFontSize=TYPE_SIZE, titleFontSize=TYPE_SIZE, labelLimit=300)
            .configure_title(fontSize=TITLE_SIZE, anchor="start")
            .configure_legend(labelFontSize=TYPE_SIZE, titleFontSize=TYPE_SIZE, orient="top"))


def curves_chart(curves: pd.DataFrame, experiment: dict) -> alt.Chart:
    """One line a run (its training curve) and a dot at each epoch's validation accuracy, coloured by value."""
    base = alt.Chart(curves).encode(
        x=alt.X("epoch:Q", title="epochs"), y=alt.Y("accuracy:Q", title="accuracy (%)", scale=alt.Scale(zero=False)),
        color=_colour(experiment), detail="run:N")
    lines = base.transform_filter(alt.datum.measured == TRAINING).mark_line(strokeWidth=2.5, opacity=0.8)
    dots = base.transform_filter(alt.datum.measured == VALIDATION).mark_point(size=160, filled=True)
    return _large(alt.layer(lines, dots).properties(
        height=CHART_HEIGHT, title="Accuracy as they train"))


def result_frame(experiment: dict, runs: list[dict], show_names: bool) -> pd.DataFrame:
    """One row a run with its value, learner (a number unless names are shown), status and test accuracy."""
    return pd.DataFrame(result_rows(experiment, runs, show_names),
                        columns=["experiment", "value", "learner", "run", "status", "test_accuracy", "epochs_done"])


def results_chart(results: pd.DataFrame, summaries: list[ValueSummary], experiment: dict) -> alt.Chart:
    """Final test accuracy against value: each finished run a dot, each value's median a bar and its spread
    (lowest to highest run) a line."""
    done = results.dropna(subset=["test_accuracy"]).assign(accuracy=lambda frame: 100.0 * frame["test_accuracy"])
    summary = pd.DataFrame([{"value": item.label, "median": 100.0 * item.median, "low": 100.0 * min(item.accuracies),
                             "high": 100.0 * max(item.accuracies)} for item in summaries if item.done],
                           columns=["value", "median", "low", "high"])
    labels = experiment["labels"]
    x = alt.X("value:N", title=variable(experiment["variable"]).label, sort=labels, scale=alt.Scale(domain=labels),
              axis=alt.Axis(labelAngle=0, labelExpr=_without_name(experiment)))
    dots = alt.Chart(done).mark_circle(size=260, opacity=0.6).encode(
        x=x, y=alt.Y("accuracy:Q", title="test accuracy (%)", scale=alt.Scale(zero=False)),
        color=_colour(experiment, legend=False), tooltip=["learner:N", alt.Tooltip("accuracy:Q", format=".2f")])
    spread = alt.Chart(summary).mark_rule(strokeWidth=4, color="#555").encode(x=x, y="low:Q", y2="high:Q")
    median = alt.Chart(summary).mark_tick(size=70, thickness=5, color="#111").encode(x=x, y="median:Q")
    return _large(alt.layer(spread, dots, median).properties(
        height=CHART_HEIGHT, title="Test accuracy by value"))


def status_table(summaries: list[ValueSummary]) -> pd.DataFrame:
    """Per value: how many runs are done, training and waiting (and stopped or failed, if any)."""
    rows = [{"value": item.label, "done": item.done, "training": item.training, "waiting": item.waiting,
             "stopped or failed": item.other} for item in summaries]
    frame = pd.DataFrame(rows, columns=["value", "done", "training", "waiting", "stopped or failed"])
    return frame if frame["stopped or failed"].any() else frame.drop(columns="stopped or failed")


def csv_bytes(results: pd.DataFrame) -> bytes:
    return results.to_csv(index=False).encode()


def png_bytes(chart: alt.Chart) -> bytes:
    """The chart as a PNG image, rendered on the server (vl-convert): no browser needed."""
    buffer = io.BytesIO()
    chart.properties(width=PNG_WIDTH).save(buffer, format="png", scale_factor=2)
    return buffer.getvalue()
