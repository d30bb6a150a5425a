"""What the Draw page shows that is not Streamlit: the guess and its probability chart, the line of an
epoch's guess, the sentences of the explanations, the canvas's undo, and the rows of the handwriting table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnist_lab import presentation
from mnist_lab.evaluation import inference
from mnist_lab.images import preprocessing
from mnist_lab.errors import LabError
from mnist_lab.evaluation.explanation import MAX_CHANNELS, LayerMaps
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import RunStatus, RunStore
from mnist_lab.views.markdown import plain

CANVAS_SIDE = 280
INTRO = ("Write a digit and watch each model guess it. Below: the 28x28 image the models actually get, made the way "
         "MNIST was made, why a model guessed what it did, and your own handwriting as a test set.")
HANDWRITING_INTRO = ("MNIST's test digits were written by the same kind of people, on the same forms, as its "
                     "training digits. Yours were not. Label what you drew and keep it; then see how each model does "
                     "on your set, next to its MNIST test accuracy.")
NO_MODEL = ("**No trained model yet.** Predictions need a trained run: on the Train page pick the 3-layer net and "
            "train it for one epoch (about a minute on a laptop), then come back. Meanwhile you can draw and see "
            "how a drawing becomes MNIST's 28x28 input.")
FIRST_RUN_COMMAND = "python -m mnist_lab train --arch seed-3layer --epochs 1"
MAX_MODELS = 4
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
# The canvas component draws its own floating toolbar (send, undo, redo, edit, reset) above its top edge, over
# whatever is there; its parameters cannot hide it and page CSS cannot reach into its shadow root. The page's
# Undo and Clear are the one set of controls, so the canvas's element clips whatever overflows it.
CANVAS_CLIP = "<style>[class*='st-key-draw_canvas_'] { clip-path: inset(0); }</style>"
HANDWRITING_FORMATS = {"MNIST test": "percent", "my handwriting": "percent", "gap (points)": "%.1f"}
LABELLED_PROBABILITY = 0.05  # bars this high or higher carry their number
GUESS_COLOUR, OTHER_COLOUR, NUMBER_COLOUR = "#e4572e", "#9aa5b1", "#1f2430"
WHY_THE_MAPS_DIFFER = (
    "**Why the two maps differ.** They answer two questions. Grad-CAM: *where* in the image lie the features of the "
    "last convolution layer that raised this class, on that layer's coarse grid. SmoothGrad: *which input pixels* "
    "the score is most sensitive to, pixel by pixel, so it is fine. Where both light up, the guess rests on that "
    "part of your digit.")
FEATURE_MAPS = (
    "**Feature maps.** Each small square is what one filter of a convolution layer finds in your drawing (white: "
    "strong response). Early layers find edges and strokes; later ones combine them into parts of digits, on "
    "smaller and smaller grids.")


class DrawState:
    """The page's session state (any mutable mapping: Streamlit's, or a dict in a test) and what the canvas's
    and the handwriting set's buttons do to it."""

    def __init__(self, state, handwriting: HandwritingSet):
        self.state = state
        self.handwriting = handwriting

    def start(self) -> None:
        """Before the page's first run: an empty canvas, the pen, and every preprocessing switch as
        preprocessing.Options has it (the switches render below the canvas; the preprocessing needs them first)."""
        steps = {f"draw_step_{step.key}": getattr(preprocessing.Options(), step.key) for step in preprocessing.STEPS}
        for key, value in {"draw_canvas_generation": 0, "draw_initial_drawing": None, "draw_last_drawing": None,
                           "draw_undo_count": 0, "draw_stroke_width": 22, **steps}.items():
            self.state.setdefault(key, value)

    @property
    def options(self) -> preprocessing.Options:
        """The preprocessing the switches ask for."""
        return preprocessing.Options(**{step.key: self.state[f"draw_step_{step.key}"] for step in preprocessing.STEPS})

    def undo_stroke(self) -> None:
        """The canvas starts again from the last drawing less its last stroke; a new undo count makes it take
        that as a new drawing."""
        objects = (self.state["draw_last_drawing"] or {}).get("objects") or []
        if objects:
            self.state["draw_undo_count"] += 1
            self.state["draw_initial_drawing"] = {**self.state["draw_last_drawing"], "objects": objects[:-1],
                                                  "undo": self.state["draw_undo_count"]}

    def clear_canvas(self) -> None:
        """A new, empty canvas (a new generation: a new widget key)."""
        self.state["draw_canvas_generation"] += 1
        self.state["draw_initial_drawing"] = None
        self.state["draw_last_drawing"] = None

    def keep_sample(self, image: np.ndarray, raw: np.ndarray) -> None:
        """The drawing joins the learner's set under the digit chosen, and the canvas is cleared for the next;
        without a digit chosen, a notice says to choose one."""
        label = self.state.get("draw_sample_label")
        if label is None:
            self.state["draw_notice"] = ("warning", "Choose which digit you drew before keeping it.")
            return
        self.handwriting.add(image, int(label), raw=raw)
        self.state["draw_notice"] = ("success", f"Kept as a {label}. Draw the next one.")
        self.clear_canvas()

    def delete_samples(self) -> None:
        for sample_id in self.state.get("draw_delete_ids", []):
            try:
                self.handwriting.delete(sample_id)
            except ValueError as error:
                self.state["draw_notice"] = ("warning", str(error))
        self.state["draw_delete_ids"] = []


class Models:
    """The runs that can predict, by id, with their labels (learner, name and accuracy: runs told apart), and
    the damaged runs that are left out."""

    def __init__(self, runs: list[dict], damaged: list[dict]):
        self.runs = runs
        self.by_id = {meta["id"]: meta for meta in runs}
        self.damaged = damaged
        self.labels = presentation.run_labels(runs)

    @classmethod
    def from_store(cls, store: RunStore) -> Models:
        damaged = [meta for meta in store.list() if meta["status"] == RunStatus.DAMAGED]
        return cls(inference.usable_runs(store), damaged)

    @property
    def damaged_caption(self) -> str:
        names = "; ".join(plain(meta["name"]) for meta in self.damaged)
        return f"{len(self.damaged)} damaged run(s) left out: {names}"

    def label(self, run_id: str) -> str:
        """As plain text: the model picker, the guesses, the table."""
        return self.labels[run_id]

    def name(self, run_id: str) -> str:
        """As Markdown shows it: names exactly as the learners typed them."""
        return plain(self.labels[run_id])


def chosen_models(usable, kept: list[str] | None, shared: list[str], defaults) -> list[str]:
    """The models the picker shows: the learner's own choice (`kept`) of the runs that can still predict
    (`usable`: their ids); on a first visit (None kept) the runs chosen on another page, else `defaults()`, at
    most MAX_MODELS."""
    if kept is not None:
        return [run_id for run_id in kept if run_id in usable]
    return ([run_id for run_id in shared if run_id in usable] or defaults())[:MAX_MODELS]


def guess_html(probabilities: np.ndarray) -> str:
    """The guess in large type with how sure the model is. Only numbers go into this HTML."""
    top = int(probabilities.argmax())
    return (f"<div data-testid='draw-guess' style='font-size:2.2rem;font-weight:700;line-height:1.1'>{top} "
            f"<span style='font-size:1rem;font-weight:400'>{probabilities[top]:.0%} sure</span></div>")


def probability_chart(probabilities: np.ndarray):
    """The ten digits' probabilities, the guess in colour. Each bar of LABELLED_PROBABILITY or more carries its
    number: an unsure net's low, even bars (an early epoch's, about 10 % each) are hard to read on a 0-100 % axis."""
    import altair as alt

    table = pd.DataFrame({"digit": [str(digit) for digit in range(10)], "probability": probabilities})
    top = str(int(probabilities.argmax()))
    base = alt.Chart(table).encode(
        x=alt.X("digit:N", title=None, axis=alt.Axis(labelAngle=0, labelFontSize=13)),
        y=alt.Y("probability:Q", title=None, scale=alt.Scale(domain=[0, 1.15]),
                axis=alt.Axis(format="%", values=[0, 0.5, 1])),
    )
    bars = base.mark_bar().encode(
        color=alt.condition(alt.datum.digit == top, alt.value(GUESS_COLOUR), alt.value(OTHER_COLOUR)),
        tooltip=["digit", alt.Tooltip("probability:Q", format=".1%")],
    )
    numbers = base.mark_text(dy=-7, fontSize=11, color=NUMBER_COLOUR).encode(
        text=alt.Text("probability:Q", format=".0%")).transform_filter(alt.datum.probability >= LABELLED_PROBABILITY)
    return (bars + numbers).properties(height=140)


def guesses(models: Models, run_ids: list[str], predict) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each run's probabilities as `predict` (run id to probabilities) gives them; and for each run it cannot
    (a LabError), why, in Markdown."""
    predictions, problems = {}, []
    for run_id in run_ids:
        try:
            predictions[run_id] = predict(run_id)
        except LabError as error:
            problems.append(f"{models.name(run_id)}: {plain(error)}")
    return predictions, problems


def guess_notice(prepared: preprocessing.Result, models: Models, chosen: list[str]) -> tuple[str, str | None] | None:
    """(text, icon) of what the Prediction area says instead of guesses, if anything: there is no digit yet, or
    there are models but none is chosen."""
    if prepared.empty:
        return prepared.message, ":material/draw:"
    if models.runs and not chosen:
        return "Choose one or more models below.", None
    return None


def guess_captions(predictions: dict[str, np.ndarray], stored_epochs) -> list[str]:
    """What the guesses point to below them: the models' disagreement, and the epoch slider of a run that
    kept earlier epochs (`stored_epochs`: run id to the epochs it kept)."""
    captions = []
    if models_disagree(predictions):
        captions.append("The models disagree: look below at what each one picks up.")
    if any(len(stored_epochs(run_id)) > 1 for run_id in predictions):
        captions.append("Below, under *Why*, slide back through the epochs to see how this guess grew as the net "
                        "learned.")
    return captions


def models_disagree(predictions: dict[str, np.ndarray]) -> bool:
    """Two or more models whose guesses are not all the same digit."""
    return len({int(values.argmax()) for values in predictions.values()}) > 1


def no_slider_reason(epochs: list[int]) -> str:
    """Why a run has no epoch slider: it kept one epoch, or none (`epochs`: the epochs it kept)."""
    if epochs:
        return ("This run kept its weights after one epoch only: there is no earlier net to slide back to. A run of "
                "two or more epochs shows here how its guess grew.")
    return ("This run kept no weights of earlier epochs (it was trained before the lab kept them, or its net is too "
            "big to keep): train it again to see how its guess grew, epoch by epoch.")


def epoch_guess_html(epoch: int, shown: np.ndarray, last: int, last_probabilities: np.ndarray) -> str:
    """The guess at the slider's epoch and, at an earlier one, beside the last epoch's. Only numbers and words
    of this module go into this HTML."""
    line = f"Epoch {epoch}: {inference.describe_guess(shown)}"
    if epoch != last:
        line += f" · Epoch {last}: {inference.describe_guess(last_probabilities)}"
    return f"<div data-testid='draw-epoch-guess' style='font-size:1.25rem;font-weight:600'>{line}</div>"


def after_epoch(epoch: int | None) -> str:
    return f" after epoch {epoch}" if epoch is not None else ""


def saliency_text(guess: int, epoch: int | None) -> str:
    return (f"**SmoothGrad saliency** for the guess {guess}{after_epoch(epoch)}: red where more ink would make the "
            f"model more sure of {guess}, blue where ink counts against it. The brightest spots are the pixels its "
            "score is most sensitive to.")


def empty_grad_cam_text(guess: int, epoch: int | None) -> str:
    return (f"**Grad-CAM is empty** for the guess {guess}{after_epoch(epoch)}: nothing the last convolution layer "
            f"found in your drawing raised the score of {guess}, so there is no region to light up. An unsure net, "
            "or a drawing unlike its digits, does this; the saliency map beside it still shows which pixels matter.")


def grad_cam_text(guess: int, epoch: int | None, layers: list[LayerMaps]) -> str:
    """What the Grad-CAM picture shows, and on how coarse a grid (the last convolution layer's)."""
    grid = layers[-1].grid if layers else ""
    return (f"**Grad-CAM** for the guess {guess}{after_epoch(epoch)}: yellow where the last convolution layer found "
            f"the features that raised the score of {guess}, dark where it found none. It is drawn from that "
            f"layer's {grid} grid, so it is coarse.")


def feature_map_caption(layer: LayerMaps) -> str:
    channels = layer.maps.shape[2]
    shown = min(channels, MAX_CHANNELS)
    return (f"Layer {layer.number}: {layer.name}, {channels} maps of {layer.grid}"
            + (f" (first {shown} shown)" if shown < channels else ""))


def upload_caption(dark_on_light: bool) -> str:
    return ("Dark ink on light paper: inverted to white on black, as MNIST." if dark_on_light
            else "Light ink on a dark background: used as it is.")


def standard_sample(prepared: preprocessing.Result, options: preprocessing.Options) -> preprocessing.Result:
    """The drawing as a handwriting sample keeps it: with every MNIST step on, whatever the switches say."""
    if prepared.empty or options == preprocessing.Options():
        return prepared
    return preprocessing.preprocess(prepared.ink)


def sample_captions(labels) -> list[str]:
    """'1: 7', '2: 3'…: each sample's number in the set and its label."""
    return [f"{number}: {label}" for number, label in enumerate(labels, start=1)]


def sample_choice(sample_ids: list[str], sample_id: str) -> str:
    """A sample in the delete picker: its number in the set and its digit (a sample id starts with it)."""
    return f"{sample_ids.index(sample_id) + 1}: a {sample_id[0]}"


def handwriting_scores(models: Models, run_ids: list[str], score) -> tuple[pd.DataFrame, list[str]]:
    """The handwriting table: a row per run that `score` (run id to accuracy on the learner's set) can score, with
    its MNIST test accuracy and the gap between the two in percentage points (none where the test accuracy is not
    known); and for each run it cannot (a LabError), why, in Markdown."""
    rows, problems = [], []
    for run_id in run_ids:
        try:
            accuracy = score(run_id)
        except LabError as error:
            problems.append(f"{models.name(run_id)}: {plain(error)}")
            continue
        mnist = models.by_id[run_id].get("test_accuracy")
        rows.append({"run": models.label(run_id), "MNIST test": mnist, "my handwriting": accuracy,
                     "gap (points)": (mnist - accuracy) * 100 if isinstance(mnist, (int, float)) else None})
    return pd.DataFrame(rows), problems
