"""A trained run on the test images: predictions (cached on disk), confusion matrix, mistakes.

Predicting 10,000 images takes seconds on a CPU, so the probabilities are stored next to the
model in `runs/<id>/evaluation.npz`, tagged with the model file's modification time and size and
a fingerprint of the test data. Reopening a run reads that file instead of running the model; a
new model file or another data file makes the cache stale and it is recomputed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnist_lab.data import to_model_input
from mnist_lab.images.gallery import digit_grid
from mnist_lab.runs import ModelUnavailable, RunStore, write_atomic

CACHE_FILE = "evaluation.npz"
CLASS_SET_CACHE_FILE = "class-set-evaluation.npz"  # the class's handwriting: kept apart from the test set's
CLASSES = 10
PREDICT_BATCH = 1000


@dataclass(frozen=True)
class Evaluation:
    """A model's softmax outputs on labelled images."""

    probabilities: np.ndarray  # float32 (n, 10)
    labels: np.ndarray  # int (n,)

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave to its own answer."""
        return self.probabilities.max(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels)) if len(self.labels) else 0.0


def predict_probabilities(model, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Softmax outputs for uint8 (n, 28, 28) images, in large batches (one compiled graph, few calls).

    benchmarks/evaluation.py compares this with eager `model(x)` calls on chunks of the same size.
    """
    if batch_size < 1:
        raise ValueError(f"The batch size must be at least 1, not {batch_size}.")
    if len(images) == 0:
        return np.zeros((0, CLASSES), np.float32)
    return np.asarray(model.predict(to_model_input(images), batch_size=batch_size, verbose=0), np.float32)


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """Identifies the test set, so that a cache made on other data is never reused."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (images, labels):
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.data)
    return digest.hexdigest()


def _model_stamp(store: RunStore, run_id: str) -> tuple[int, int] | None:
    try:
        stat = store.model_path(run_id).stat()
    except OSError:  # no model file, or a run folder that cannot be read
        return None
    return stat.st_mtime_ns, stat.st_size


def cache_path(store: RunStore, run_id: str, cache_file: str = CACHE_FILE):
    return store.path(run_id) / cache_file


def cached_evaluation(store: RunStore, run_id: str, images: np.ndarray, labels: np.ndarray,
                      cache_file: str = CACHE_FILE) -> Evaluation | None:
    """The stored evaluation if it was made from the current model file on these images, else None."""
    stamp = _model_stamp(store, run_id)
    path = cache_path(store, run_id, cache_file)
    if stamp is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            valid = (int(stored["model_mtime_ns"]) == stamp[0] and int(stored["model_size"]) == stamp[1]
                     and str(stored["fingerprint"]) == data_fingerprint(images, labels))
            probabilities = stored["probabilities"] if valid else None
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a damaged cache is simply recomputed
    if probabilities is None or probabilities.shape != (len(labels), CLASSES):
        return None
    return Evaluation(probabilities.astype(np.float32), np.asarray(labels).astype(np.int64))


def evaluate_run(store: RunStore, run_id: str, images: np.ndarray, labels: np.ndarray,
                 batch_size: int = PREDICT_BATCH, cache_file: str = CACHE_FILE) -> Evaluation:
    """A run's predictions on these images, from the cache when it is current, else from its model.
    `cache_file` keeps evaluations on different image sets apart (one file each).

    Raises runs.ModelUnavailable (readable message) when the run has no loadable model.
    """
    cached = cached_evaluation(store, run_id, images, labels, cache_file)
    if cached is not None:
        return cached
    stamp = _model_stamp(store, run_id)
    model = store.load_model(run_id)
    probabilities = predict_probabilities(model, images, batch_size)
    if stamp is not None and stamp == _model_stamp(store, run_id):
        buffer = io.BytesIO()
        np.savez(buffer, probabilities=probabilities, model_mtime_ns=np.int64(stamp[0]),
                 model_size=np.int64(stamp[1]), fingerprint=np.array(data_fingerprint(images, labels)))
        write_atomic(cache_path(store, run_id, cache_file), buffer.getvalue())
    return Evaluation(probabilities, np.asarray(labels).astype(np.int64))


def class_set_scores(store: RunStore, run_ids, images: np.ndarray, labels: np.ndarray,
                     compute: bool = False) -> dict[str, float]:
    """Accuracy on the class's handwriting of each run that has a current score (all of them, scoring
    the rest, with `compute`); runs without a loadable model are left out."""
    scores = {}
    for run_id in run_ids:
        result = cached_evaluation(store, run_id, images, labels, CLASS_SET_CACHE_FILE)
        if result is None and compute:
            try:
                result = evaluate_run(store, run_id, images, labels, cache_file=CLASS_SET_CACHE_FILE)
            except ModelUnavailable:
                result = None
        if result is not None:
            scores[run_id] = result.accuracy
    return scores


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = CLASSES) -> np.ndarray:
    """Counts, rows = true digit, columns = predicted digit."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions: they must match.")
    if len(labels) and (min(labels.min(), predictions.min()) < 0 or max(labels.max(), predictions.max()) >= classes):
        raise ValueError(f"Labels and predictions must be digits from 0 to {classes - 1}.")
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def confusion_table(matrix: np.ndarray) -> pd.DataFrame:
    """The matrix in long form for a heatmap: one row per (true, predicted) cell.

    `mistakes` is the count off the diagonal and 0 on it, so that a colour scale on it shows where
    the errors are instead of being dominated by the correct answers.
    """
    matrix = np.asarray(matrix)
    true_digit, predicted_digit = np.indices(matrix.shape)
    row_totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_totals, out=np.zeros(matrix.shape), where=row_totals > 0)
    return pd.DataFrame({
        "true_digit": true_digit.ravel(),
        "predicted_digit": predicted_digit.ravel(),
        "count": matrix.ravel(),
        "mistakes": np.where(true_digit == predicted_digit, 0, matrix).ravel(),
        "share": (100 * share).ravel(),
        "correct": (true_digit == predicted_digit).ravel(),
    })


def per_digit_accuracy(labels: np.ndarray, predictions: np.ndarray, classes: int = CLASSES) -> pd.DataFrame:
    """For each true digit: how many test images, how many right, accuracy in percent."""
    matrix = confusion_matrix(labels, predictions, classes)
    images = matrix.sum(axis=1)
    correct = np.diag(matrix)
    accuracy = np.divide(100.0 * correct, images, out=np.full(classes, np.nan), where=images > 0)
    return pd.DataFrame({"digit": np.arange(classes), "images": images, "correct": correct, "accuracy": accuracy})


def misclassified(labels: np.ndarray, predictions: np.ndarray, confidence: np.ndarray,
                  true_digit: int | None = None, predicted_digit: int | None = None) -> np.ndarray:
    """Indices of the wrong answers, optionally only one true and/or predicted digit; most confident first."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    wrong = labels != predictions
    if true_digit is not None:
        wrong &= labels == true_digit
    if predicted_digit is not None:
        wrong &= predictions == predicted_digit
    indices = np.flatnonzero(wrong)
    return indices[np.argsort(-np.asarray(confidence)[indices], kind="stable")]


@dataclass(frozen=True)
class Disagreement:
    """Where two models differ on the same labelled images (index arrays)."""

    only_first_right: np.ndarray
    only_second_right: np.ndarray
    both_wrong: np.ndarray
    both_right_count: int


def disagreement(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> Disagreement:
    """Which images the first model gets right and the second wrong, and the other way round."""
    labels, first, second = np.asarray(labels), np.asarray(first), np.asarray(second)
    if not labels.shape == first.shape == second.shape:
        raise ValueError("Both runs must be evaluated on the same images.")
    first_right, second_right = first == labels, second == labels
    return Disagreement(
        only_first_right=np.flatnonzero(first_right & ~second_right),
        only_second_right=np.flatnonzero(second_right & ~first_right),
        both_wrong=np.flatnonzero(~first_right & ~second_right),
        both_right_count=int(np.sum(first_right & second_right)),
    )


def mistake_caption(label: int, prediction: int, confidence: float) -> str:
    """'4 as 9, 97%': the true digit, what the model answered and how sure it was."""
    return f"{int(label)} as {int(prediction)}, {100 * float(confidence):.0f}%"


def mistakes_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, confidence: np.ndarray,
                  indices: np.ndarray, limit: int = 40, columns: int = 10):
    """One picture of up to `limit` test digits, each captioned with true label, answer and confidence."""
    indices = np.asarray(indices)[:limit]
    if len(indices) == 0:
        return None
    captions = [mistake_caption(labels[i], predictions[i], confidence[i]) for i in indices]
    return digit_grid(images[indices], captions, columns=min(columns, len(indices)), scale=3)


CELL_SELECTION = "cell"


def confusion_chart(matrix: np.ndarray, size: int = 420):
    """The confusion matrix as an altair heatmap: the correct answers (diagonal) in grey, the mistakes
    coloured by count, every count written in its cell. Clicking a cell selects it (selection
    parameter CELL_SELECTION, fields true_digit and predicted_digit)."""
    import altair as alt

    table = confusion_table(matrix)
    table["label"] = table["count"].map(lambda count: f"{count:,}" if count else "")
    most = max(int(table["mistakes"].max()), 2)
    selection = alt.selection_point(name=CELL_SELECTION, fields=["true_digit", "predicted_digit"],
                                    on="click", clear="dblclick", toggle=False)
    base = alt.Chart(table).encode(
        x=alt.X("predicted_digit:O", title="predicted digit", axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("true_digit:O", title="true digit"),
        tooltip=[alt.Tooltip("true_digit:O", title="true digit"),
                 alt.Tooltip("predicted_digit:O", title="predicted"),
                 alt.Tooltip("count:Q", title="test images", format=","),
                 alt.Tooltip("share:Q", title="% of this true digit", format=".2f")],
    )
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.condition("datum.correct", alt.value("#e3e8ef"), alt.Color(
            "mistakes:Q", title="mistakes",
            scale=alt.Scale(domain=[0, 1, most], range=["#ffffff", "#fde4c8", "#b30000"], interpolate="lab"),
            legend=alt.Legend(orient="bottom", gradientLength=200))),
        opacity=alt.condition(selection, alt.value(1.0), alt.value(0.35)),
    ).add_params(selection)
    counts = base.mark_text(fontSize=11).encode(
        text="label:N",
        color=alt.condition(f"datum.mistakes >= {0.6 * most}", alt.value("white"), alt.value("#1f2430")),
    )
    return alt.layer(cells, counts).properties(width=size, height=size)


def per_digit_chart(table: pd.DataFrame, height: int = 420):
    """Accuracy per true digit as horizontal bars, each labelled with its value.

    The digits differ by a point or two, which bars from 0 would hide; so the axis starts just below the
    worst digit, and its title says where, so that no one reads a bar half as long as half as accurate.
    """
    import altair as alt

    start = per_digit_axis_start(table)
    title = "accuracy %" if start == 0 else f"accuracy % (the axis starts at {start:g} %, not 0)"
    base = alt.Chart(table).encode(
        y=alt.Y("digit:O", title="true digit"),
        x=alt.X("accuracy:Q", title=title, scale=alt.Scale(domain=[start, 100], clamp=True)),
        tooltip=[alt.Tooltip("digit:O"), alt.Tooltip("images:Q", title="test images", format=","),
                 alt.Tooltip("correct:Q", format=","), alt.Tooltip("accuracy:Q", format=".2f")],
    )
    bars = base.mark_bar(color="#3b5bdb")
    values = base.mark_text(align="right", dx=-4, color="white", fontSize=11).encode(
        text=alt.Text("accuracy:Q", format=".1f"))
    return alt.layer(bars, values).properties(height=height)


def per_digit_axis_start(table: pd.DataFrame) -> float:
    """Where the per-digit axis starts: a whole percent below the worst digit (0 when a digit is below 50 %)."""
    if not len(table) or not table["accuracy"].notna().any():
        return 0.0
    lowest = float(np.nanmin(table["accuracy"]))
    return 0.0 if lowest < 50 else max(0.0, float(np.floor(lowest)) - 1)
