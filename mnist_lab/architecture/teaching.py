"""Short teaching notes about an architecture: what a preset shows, and what the learner's edits do.

Notes are computed from the layers and their ArchitectureReport, never written per case, so they also
explain architectures nobody has seen before. A note may offer a one-click fix (`apply_fix`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mnist_lab.architecture.layers import INPUT_SHAPE
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.architecture.report import ArchitectureReport, analyze_partial
from mnist_lab.architecture.validation import normalize_layers
from mnist_lab.views.markdown import plain

FIX_BATCHNORM_AXIS = "batchnorm_axis"
FIX_NOOP_POOLING = "noop_pooling"
POOLING_TYPES = ("MaxPooling2D", "AveragePooling2D")
WEIGHTED_TYPES = ("Conv2D", "Dense")
LARGE_FLATTEN = 2000
HIGH_DROPOUT = 0.7


@dataclass(frozen=True)
class Note:
    text: str  # Markdown
    kind: str = "info"  # "info" or "warning"
    layer_numbers: tuple[int, ...] = ()
    fix: str | None = None  # FIX_* id for apply_fix
    fix_label: str = ""


def preset_note(preset_id: str, edited: bool = False) -> str:
    """What a preset is meant to show (Preset.note); once the learner has edited it, said to be about the
    preset as it was, since its numbers no longer describe what is open."""
    note = PRESETS[preset_id].note
    if not edited:
        return note
    return (f"**Edited: this note is about {preset_id} as the notebook has it, not about your edit** (see "
            f"\"What to notice\" for yours). {note}")


def _numbers_text(numbers) -> str:
    numbers = [str(n) for n in numbers]
    return numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _layers_text(numbers) -> str:
    return ("Layer " if len(numbers) == 1 else "Layers ") + _numbers_text(numbers)


def _input_shapes(report: ArchitectureReport) -> list[tuple]:
    """The input shape of each analysed layer: the input image, then each layer's output."""
    shapes = [INPUT_SHAPE]
    shapes += [layer.output_shape for layer in report.layers]
    return shapes[:len(report.layers)]


def _rows_batchnorm(layers: list, report: ArchitectureReport) -> list[int]:
    """Numbers of the BatchNormalization layers that normalise image rows or columns, not channels."""
    found = []
    for layer_report, shape in zip(report.layers, _input_shapes(report)):
        if layer_report.number > len(layers) or layer_report.type != "BatchNormalization":
            continue
        if len(shape) == 3 and layers[layer_report.number - 1].get("axis") in (1, 2):
            found.append(layer_report.number)
    return found


def _noop_pooling(layers: list) -> list[int]:
    """Numbers of the pooling layers with a 1x1 window and step 1: they return their input."""
    found = []
    for number, layer in enumerate(layers, start=1):
        if isinstance(layer, dict) and layer.get("type") in POOLING_TYPES:
            pool = layer.get("pool_size")
            strides = layer.get("strides")
            if pool in ([1, 1], (1, 1), 1) and strides in (None, [1, 1], (1, 1), 1):
                found.append(number)
    return found


def corrected_batchnorm(layers: list) -> list:
    """A copy in which every BatchNormalization over image rows or columns (axis 1 or 2 on a
    channels-last image) normalises channels instead (axis -1), as the layer is meant to."""
    report, _ = analyze_partial(layers)
    fixed = copy.deepcopy(layers)
    for number in _rows_batchnorm(layers, report):
        fixed[number - 1]["axis"] = -1
    return fixed


def without_noop_pooling(layers: list) -> list:
    """A copy without the 1x1 pooling layers, which change nothing."""
    noop = set(_noop_pooling(layers))
    return [copy.deepcopy(layer) for number, layer in enumerate(layers, start=1) if number not in noop]


def apply_fix(fix: str, layers: list) -> list:
    """The layers with a note's one-click fix applied."""
    fixes = {FIX_BATCHNORM_AXIS: corrected_batchnorm, FIX_NOOP_POOLING: without_noop_pooling}
    if fix not in fixes:
        raise ValueError(f"Unknown fix {fix!r}: use one of {', '.join(fixes)}.")
    return fixes[fix](layers)


def share_text(part: int, whole: int) -> str:
    """part of whole as a percentage that says 100 % or 0 % only when exact: 692,352 of 694,090 is
    "99.7 %", not "100 %"; 3 of 694,090 is "under 0.1 %"."""
    if not whole or not part:
        return "0 %"
    if part == whole:
        return "100 %"
    percent = 100 * part / whole
    for digits in (0, 1):
        text = f"{percent:.{digits}f}"
        if float(text) not in (0.0, 100.0):
            return f"{text} %"
    return "under 0.1 %" if percent < 50 else "over 99.9 %"



def edit_notes(layers: list, report: ArchitectureReport) -> list[Note]:
    """Notes on a valid architecture (report: what analyze(layers) returns), most useful first."""
    layers = normalize_layers(layers)
    notes = []
    by_number = {layer.number: layer for layer in report.layers}

    rows = _rows_batchnorm(layers, report)
    if rows:
        axes = sorted({layers[n - 1]["axis"] for n in rows})
        sides = {1: "rows", 2: "columns"}
        counts = _numbers_text([f"{by_number[n].parameters} = 4 × {by_number[n].parameters // 4} "
                                f"{sides[layers[n - 1]['axis']]} (layer {n})" for n in rows])
        per = " or ".join(sides[a][:-1] for a in axes)
        notes.append(Note(
            f"**BatchNormalization over image {' and '.join(sides[a] for a in axes)}.** {_layers_text(rows)} "
            f"use {' or '.join(f'`axis={a}`' for a in axes)}. The images are channels-last (height × width × "
            "channels), so axis 1 is the image rows and axis 2 the columns, not the channels: the notebook's "
            f"comment assumed channels-first data. Hence the counts: {counts}: a scale, a shift, a running mean "
            f"and a running variance (the two non-trainable ones) per {per}. With `axis=-1` each channel is "
            "normalised, as intended.",
            "warning", tuple(rows), FIX_BATCHNORM_AXIS, "Switch BatchNormalization to axis=-1 (channels)"))

    noop = _noop_pooling(layers)
    if noop:
        notes.append(Note(
            f"**Pooling that does nothing.** {_layers_text(noop)} pool 1x1 windows with a step of 1: each "
            "window holds one value, so the output equals the input (same shape, no parameters, no effect). "
            "Removing them changes neither the counts nor what the net learns.",
            "warning", tuple(noop), FIX_NOOP_POOLING, "Remove the 1x1 pooling layers"))

    total = report.total_parameters
    heaviest = max(report.layers, key=lambda layer: layer.parameters)
    if heaviest.parameters:
        if heaviest.type == "Conv2D":
            why = ("A convolution's count is (kernel height × kernel width × input channels + 1) × filters: "
                   "it does not depend on the image size, only on the kernel and the channels.")
        else:
            why = ("A Dense layer connects every input to every unit: (inputs + 1) × units parameters, so "
                   "the number of values reaching it matters as much as its width.")
        notes.append(Note(
            f"**Where the parameters sit.** Layer {heaviest.number} ({heaviest.label}) holds "
            f"{heaviest.parameters:,} of the {total:,} parameters ({share_text(heaviest.parameters, total)}). {why}",
            layer_numbers=(heaviest.number,)))

    work = report.multiply_adds
    busiest = max(report.layers, key=lambda layer: layer.multiply_adds)
    if work:
        share = (f"does {busiest.multiply_adds:,} of the {work:,} multiply-adds per image "
                 f"({share_text(busiest.multiply_adds, work)})")
        if busiest.number == heaviest.number:
            text = f"**Where the work is.** The same layer {share}."
        else:
            text = (f"**Where the work is.** Layer {busiest.number} ({busiest.label}) {share} with only "
                    f"{busiest.parameters:,} parameters ({share_text(busiest.parameters, total)}).")
        if busiest.type == "Conv2D":
            text += (" A convolution applies its few weights at every position of the image, so it costs "
                     "much computation for few parameters.")
        text += " Parameters say how much memory a net needs; multiply-adds how long each image takes."
        notes.append(Note(text, layer_numbers=(busiest.number,)))

    notes += _shape_notes(layers, report, by_number)
    return notes


def _shape_notes(layers: list, report: ArchitectureReport, by_number: dict) -> list[Note]:
    notes = []
    types = [layer["type"] for layer in layers]
    if "Conv2D" not in types:
        if all(kind in ("Flatten", "Dropout", "BatchNormalization") for kind in types):
            notes.append(Note(
                "**No hidden layer.** The 784 pixels go straight to the 10 outputs: this is multinomial "
                "logistic regression, one weight per pixel and digit. Expect about 92 % accuracy; add "
                "Conv2D layers to see what convolutions add."))
        else:
            notes.append(Note(
                "**No convolution.** Without Conv2D the net treats the image as 784 unrelated numbers: it "
                "cannot reuse what it learns about a stroke at one place elsewhere. Fully connected nets "
                "reach about 98 % on MNIST at best; the notebook's CNNs reach 99 % and more."))

    for number, kind in enumerate(types, start=1):
        if kind != "Flatten" or number + 1 > len(report.layers):
            continue
        flat = by_number[number].output_shape[0]
        following = next((by_number[n] for n in range(number + 1, len(report.layers) + 1)
                          if by_number[n].type == "Dense"), None)
        if flat > LARGE_FLATTEN and following is not None:
            notes.append(Note(
                f"**A big Flatten.** Layer {number} unrolls the image into {flat:,} numbers, so layer "
                f"{following.number} ({following.label}) needs {following.parameters:,} parameters. More "
                "pooling (or GlobalAveragePooling2D instead of Flatten) shrinks that a lot.",
                "warning", (number, following.number)))

    linear = [number for number, layer in enumerate(layers, start=1)
              if layer["type"] in WEIGHTED_TYPES and layer.get("activation") == "linear"]
    if linear:
        notes.append(Note(
            f"**Linear activation.** {_layers_text(linear)} have no non-linearity: two linear layers in a row "
            "compute nothing a single one could not. Use relu unless you are testing exactly that.",
            "warning", tuple(linear)))

    heavy_dropout = [number for number, layer in enumerate(layers, start=1)
                     if layer["type"] == "Dropout" and layer["rate"] >= HIGH_DROPOUT]
    if heavy_dropout:
        notes.append(Note(
            f"**Heavy dropout.** {_layers_text(heavy_dropout)} drop {HIGH_DROPOUT:.0%} or more of their inputs "
            "at every training step: the net learns slowly and may underfit. 0.25 to 0.5 is usual.",
            "warning", tuple(heavy_dropout)))
    return notes


def change_note(source_name: str, source: ArchitectureReport, edited: ArchitectureReport) -> Note:
    """How an edit changed the size and the cost compared with the architecture it started from."""
    def ratio(new, old):
        if new == old:
            return "unchanged"
        if not old:
            return "new"
        factor = new / old
        if 0.99 <= factor <= 1.01:
            return f"{factor - 1:+.1%}"
        return f"{factor - 1:+.0%}" if 0.5 <= factor <= 2 else f"×{factor:.2g}"

    return Note(
        f"**Compared with {plain(source_name)}:** {edited.total_parameters:,} parameters instead of "
        f"{source.total_parameters:,} ({ratio(edited.total_parameters, source.total_parameters)}), "
        f"{edited.multiply_adds:,} multiply-adds per image instead of {source.multiply_adds:,} "
        f"({ratio(edited.multiply_adds, source.multiply_adds)}). Training time per epoch grows roughly "
        "with the multiply-adds.")
