"""What the Architecture page shows that is not Streamlit: each layer's heading and the fields of its settings,
whether the open net is edited, the counts with their change since the start, the notes, the Keras script's
recipe and what Keras' own count says. Every text a learner typed (names, values quoted in messages) is escaped
here for Markdown, so the page can show these strings as they are."""

from __future__ import annotations

from dataclasses import dataclass

from mnist_lab.architecture import editor, edits, keras_code, teaching
from mnist_lab.architecture.layers import INPUT_SHAPE, LAYER_TYPES, LayerType, Parameter
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.architecture.report import ArchitectureReport
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.views.markdown import plain

INPUT_LINE = (f"**Input** · a {editor.shape_text(INPUT_SHAPE)} grayscale image, "
              "pixels scaled to 0…1")


def fails_at(error: ArchitectureError | None, number: int) -> bool:
    """Whether the architecture cannot be built because of layer `number` (the output counts too)."""
    return error is not None and error.layer_number == number


def layer_heading(layer, number: int, report: ArchitectureReport,
                  error: ArchitectureError | None) -> str:
    """"**3** · Conv2D 32 3x3 → 11×11×32 · 18,464 parameters", in red for the layer at fault."""
    heading = f"**{number}** · {plain(editor.safe_label(layer, number))}"
    analysed = {layer_report.number: layer_report for layer_report in report.layers}
    if number in analysed:
        shape, parameters = editor.shape_text(analysed[number].output_shape), analysed[number].parameters
        heading += f" → {shape} · {parameters:,} parameters"
    return f":red[{heading} · cannot be built]" if fails_at(error, number) else heading


def output_heading(number: int, report: ArchitectureReport) -> str:
    heading = f"**{number}** · Dense 10 softmax: the output, always there"
    analysed = {layer_report.number: layer_report for layer_report in report.layers}
    return heading + (f" → 10 · {analysed[number].parameters:,} parameters" if number in analysed else "")


def layer_type(layer) -> LayerType | None:
    """The registry's entry for this layer's type; None for a type the registry does not know."""
    return LAYER_TYPES.get(layer.get("type")) if isinstance(layer, dict) else None


@dataclass(frozen=True)
class Field:
    """The widget of one setting: its kind, its label, and the value it starts from (for a choice, the
    position of the current value among `choices`)."""

    kind: str  # "choice", "pair" (typed as text, "3x5"), "float" or "whole"
    label: str
    value: object
    choices: tuple = ()


def setting_field(layer: dict, parameter: Parameter) -> Field:
    """A setting's widget, starting from the layer's value; a value the widget cannot hold (the learner
    imported a broken file) starts it from a plain one, and the analysis says what is wrong."""
    value = layer.get(parameter.name, parameter.default)
    label = parameter.name.replace("_", " ")
    if parameter.kind == "choice":
        choices = tuple(parameter.choices)
        return Field("choice", label, choices.index(value) if value in choices else 0, choices)
    if parameter.kind in edits.PAIR_KINDS:
        return Field("pair", label, edits.pair_text(value))
    number = isinstance(value, (int, float))
    if parameter.kind == "float":
        return Field("float", label, float(value) if number else 0.0)
    return Field("whole", label, int(value) if number else 1)


def position_label(layers: list, position: int) -> str:
    """Where "Add layer" puts the new one: "first", or "after 2 · MaxPooling2D 2x2"."""
    return "first" if position == 0 else f"after {position} · {editor.safe_label(layers[position - 1], position)}"


@dataclass(frozen=True)
class Badge:
    text: str
    icon: str
    color: str


def status_badge(session: editor.EditorSession) -> Badge:
    """Whether what is open is the preset or saved net it is named after, an edit of one, or built from blank."""
    if not session.edited:
        return Badge(f"Unchanged: {plain(session.state['architecture_name'])}", ":material/check:", "green")
    return Badge("Edited, not saved" if session.source != editor.BLANK else "Your own, not saved",
                 ":material/edit:", "orange")


def back_label(session: editor.EditorSession) -> str | None:
    """The label of the button that undoes every edit; None when there is nothing to go back to."""
    if not session.edited or not session.source:
        return None
    return "Start again" if session.source == editor.BLANK else f"Back to {plain(editor.source_name(session.source))}"


def preset_note(session: editor.EditorSession) -> str | None:
    """The notebook's note on the preset the edit started from; None for a saved, blank or imported start."""
    if not (session.source and session.source.startswith("preset:")):
        return None
    return teaching.preset_note(editor.source_name(session.source), session.edited)


def build_error(error: ArchitectureError) -> str:
    where = f" (layer {error.layer_number})" if error.layer_number else ""
    return f"**This architecture cannot be built{where}.** {plain(error)}"


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    delta: str | None = None  # the change since the start of the edit; None when unchanged
    help: str | None = None


def metrics(report: ArchitectureReport,
            source_report: ArchitectureReport | None) -> list[Metric]:
    """The four counts, with the change in parameters and multiply-adds since the architecture the edit
    started from."""
    def delta(attribute: str) -> str | None:
        change = 0 if source_report is None else getattr(report, attribute) - getattr(source_report, attribute)
        return f"{change:+,}" if change else None

    return [
        Metric("Parameters", f"{report.total_parameters:,}", delta("total_parameters")),
        Metric("Multiply-adds / image", f"{report.multiply_adds / 1e6:,.2f} M", delta("multiply_adds"),
               "Multiplications (each with an addition) in the Conv2D and Dense layers to classify one image: "
               "training time grows roughly with it."),
        Metric("Trainable", f"{report.trainable_parameters:,}", help="Weights and biases that training changes."),
        Metric("Non-trainable", f"{report.non_trainable_parameters:,}",
               help="BatchNormalization's running mean and variance: updated while training, but not by the "
                    "gradient."),
    ]


def notes(session: editor.EditorSession, layers: list, report: ArchitectureReport,
          source_report: ArchitectureReport | None) -> list[teaching.Note]:
    """What to notice about the open net, first how it differs from where the edit started."""
    found = teaching.edit_notes(layers, report)
    if source_report is not None:
        found.insert(0, teaching.change_note(editor.source_name(session.source), source_report, report))
    return found


def keras_recipe(source: str | None) -> dict:
    """How the Keras script trains: the notebook's settings, with a preset's own recommendations on top."""
    preset = PRESETS.get(editor.source_name(source))
    return {**keras_code.DEFAULT_SETTINGS, **(preset.training if preset else {})}


def keras_code_caption(recipe: dict) -> str:
    return (f"One script that needs only Keras and numpy: it builds this net, trains it for {recipe['epochs']} "
            f"epochs in batches of {recipe['batch_size']} with {recipe['optimizer']} and tests it. Run it with "
            "`python net.py --epochs 1 --train-size 2000` to try it quickly.")


def saved_entry_caption(entry: editor.SavedEntry) -> str:
    by = f" · by {plain(entry.owner_name)}" if entry.owner_name else ""
    if entry.problem:
        return f":red[{plain(entry.problem)}]{by}"
    return f"{entry.layers} layers + output · {entry.parameters:,} parameters{by}"


def summary_check(summary: editor.KerasSummary, report: ArchitectureReport) -> tuple[str, str]:
    """("caption", ...) when Keras counts the parameters the lab worked out without it, ("warning", ...)
    when it does not: the lab's own analysis is then wrong."""
    if summary.total_parameters == report.total_parameters:
        return "caption", (f"Keras counts {summary.total_parameters:,} parameters too: the table above was worked "
                           "out without Keras, from the shapes alone.")
    return "warning", (f"Keras counts {summary.total_parameters:,} parameters, the table "
                       f"{report.total_parameters:,}: please report this architecture.")
