"""What a class experiment can vary: the one registry of variables, each with how its values are read from
text, shown to a class, and applied to the experiment's base net and settings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from mnist_lab.architecture.sources import choice_key, preset_architecture, saved_architecture
from mnist_lab.architecture.layers import LAYER_TYPES, MAX_CHANNELS
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.errors import LabError, shown_value
from mnist_lab.training.settings import MAX_BATCH_SIZE, MAX_EPOCHS, MIN_IMAGES, OPTIMIZERS

MIN_VALUES = 2
MAX_VALUES = 6
SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}


class ExperimentError(LabError):
    """An experiment that cannot be posed or joined; the message names what to change."""


def _whole(text, minimum: int, maximum: int) -> int:
    try:
        number = float(str(text).strip().replace(",", "").replace("_", ""))
    except ValueError:
        raise ExperimentError(f"{shown_value(text)} is not a whole number.") from None
    if not math.isfinite(number) or number != int(number) or not minimum <= number <= maximum:
        raise ExperimentError(f"{shown_value(text)} is not a whole number from {minimum:,} to {maximum:,}.")
    return int(number)


def _fraction(text, minimum: float, maximum: float, closed_top: bool = True) -> float:
    try:
        number = float(str(text).strip())
    except ValueError:
        raise ExperimentError(f"{shown_value(text)} is not a number.") from None
    inside = minimum < number <= maximum if closed_top else minimum <= number < maximum
    if not math.isfinite(number) or not inside:
        raise ExperimentError(f"{shown_value(text)} is not a number from {minimum:g} to {maximum:g}.")
    return number


def _optimizer(text) -> str:
    key = str(text).strip().lower()
    if key not in OPTIMIZERS:
        raise ExperimentError(f"{shown_value(text)} is not an optimizer; use one of: {', '.join(OPTIMIZERS)}.")
    return key


def _switch(text) -> bool:
    word = str(text).strip().lower()
    if word not in SWITCH_WORDS:
        raise ExperimentError(f"{shown_value(text)} is neither on nor off.")
    return SWITCH_WORDS[word]


def _batch_norm_axis(text) -> int:
    choices = LAYER_TYPES["BatchNormalization"].parameters[0].choices
    axis = _whole(text, -1, max(choices))
    if axis not in choices:
        raise ExperimentError(f"{shown_value(text)} is not an axis; use one of: {', '.join(map(str, choices))}.")
    return axis


def _layers_of(architecture: dict, type_name: str) -> list[dict]:
    return [layer for layer in architecture["layers"] if layer.get("type") == type_name]


@dataclass(frozen=True)
class Variable:
    """One thing an experiment varies. `read` turns one value's text into the value (ExperimentError naming
    it when it is none); `example` is values a teacher might type; `setting` names the training setting it
    sets, if it is one."""

    key: str
    label: str  # as a class reads it before a value: "batch size 128"
    help: str
    read: Callable[[object], object]
    example: str
    setting: str | None = None

    def shown(self, value) -> str:
        """The value as a class reads it, with the variable's name: "batch size 128", "augmentation on"."""
        if self.key == "augment":
            return f"{self.label} {'on' if value else 'off'}"
        if self.key == "optimizer":
            return OPTIMIZERS[value].label
        if self.key == "architecture":
            return value.split(":", 1)[1]
        if self.key == "train_size":
            return f"{value:,} {self.label}"
        return f"{self.label} {value:g}" if isinstance(value, float) else f"{self.label} {value}"

    def apply(self, architecture: dict, settings: dict, value, layer: int | None = None) -> tuple[dict, dict]:
        """The base's architecture and settings with this variable set to `value`."""
        if self.setting:
            return architecture, {**settings, self.setting: value}
        if self.key == "architecture":
            source, name = value.split(":", 1)
            return (preset_architecture(name) if source == "preset" else saved_architecture(name)), settings
        layers = [dict(item) for item in architecture["layers"]]
        if self.key == "filters":
            layers[_conv_index(architecture, layer)]["filters"] = value
        else:
            type_name, parameter = {"dropout": ("Dropout", "rate"),
                                    "batch_norm_axis": ("BatchNormalization", "axis")}[self.key]
            for item in layers:
                if item.get("type") == type_name:
                    item[parameter] = value
        return {**architecture, "layers": layers}, settings

    def check_base(self, architecture: dict, layer: int | None = None) -> None:
        """ExperimentError when the base has nothing for this variable to change."""
        if self.key == "dropout" and not _layers_of(architecture, "Dropout"):
            raise ExperimentError("The base net has no Dropout layer whose rate could vary: pick a net with one.")
        if self.key == "batch_norm_axis" and not _layers_of(architecture, "BatchNormalization"):
            raise ExperimentError("The base net has no BatchNormalization layer whose axis could vary: pick a "
                                  "notebook net.")
        if self.key == "filters":
            _conv_index(architecture, layer)


def _conv_index(architecture: dict, layer: int | None) -> int:
    """The index in the layer list of the `layer`-th (from 1) Conv2D layer."""
    convolutions = [index for index, item in enumerate(architecture["layers"]) if item.get("type") == "Conv2D"]
    if not convolutions:
        raise ExperimentError("The base net has no Conv2D layer whose filters could vary.")
    if not isinstance(layer, int) or isinstance(layer, bool) or not 1 <= layer <= len(convolutions):
        raise ExperimentError(f"Name the convolution whose filters vary: a number from 1 to {len(convolutions)}, "
                              f"not {shown_value(layer)}.")
    return convolutions[layer - 1]


def _architecture_key(text) -> str:
    """A picker's key ("preset:quick-cnn", "saved:my-net") for a preset id, a saved name or a key itself."""
    text = str(text).strip()
    if ":" in text:
        source, name = text.split(":", 1)
        if source in ("preset", "saved") and name:
            return choice_key(source, name)
    elif text in PRESETS:
        return choice_key("preset", text)
    elif text:
        return choice_key("saved", text)
    raise ExperimentError(f"{shown_value(text)} is neither a preset nor a saved architecture.")


VARIABLES: dict[str, Variable] = {
    variable.key: variable
    for variable in (
        Variable("batch_size", "batch size", "How many images each step learns from.",
                 partial(_whole, minimum=1, maximum=MAX_BATCH_SIZE), "32, 128, 512", setting="batch_size"),
        Variable("learning_rate", "learning rate", "How big each step is.",
                 partial(_fraction, minimum=0.0, maximum=10.0), "0.0003, 0.001, 0.01", setting="learning_rate"),
        Variable("optimizer", "optimizer", "Which rule turns gradients into steps.", _optimizer,
                 ", ".join(OPTIMIZERS), setting="optimizer"),
        Variable("epochs", "epochs", "How many times the net sees the training images.",
                 partial(_whole, minimum=1, maximum=MAX_EPOCHS), "1, 3, 6", setting="epochs"),
        Variable("train_size", "training images", "How many images the net learns from.",
                 partial(_whole, minimum=MIN_IMAGES, maximum=10**9), "1000, 5000, 20000", setting="train_size"),
        Variable("augment", "augmentation", "Shifted, turned and thickened copies of the images.", _switch,
                 "off, on", setting="augment"),
        Variable("batch_norm_axis", "BatchNormalization axis",
                 "The axis every BatchNormalization layer normalises: the notebook used 1 (image rows).",
                 _batch_norm_axis, "1, -1"),
        Variable("dropout", "dropout rate", "The rate of every Dropout layer of the net.",
                 partial(_fraction, minimum=0.0, maximum=1.0, closed_top=False), "0, 0.25, 0.5"),
        Variable("filters", "filters", "How many filters one convolution has.",
                 partial(_whole, minimum=1, maximum=MAX_CHANNELS), "8, 32, 128"),
        Variable("architecture", "architecture", "The net itself: presets and saved architectures.",
                 _architecture_key, ", ".join(list(PRESETS)[:3])),
    )
}


def variable(key: str) -> Variable:
    if key not in VARIABLES:
        raise ExperimentError(f"{shown_value(key)} cannot vary; choose one of: {', '.join(VARIABLES)}.")
    return VARIABLES[key]


def parse_values(key: str, texts) -> list:
    """Two to six distinct values of the variable `key`, from text (a list, or one comma-separated string)."""
    if isinstance(texts, str):
        texts = [text for text in texts.split(",") if text.strip()]
    chosen = variable(key)
    values = []
    for text in texts:
        value = chosen.read(text)
        if value not in values:
            values.append(value)
    if not MIN_VALUES <= len(values) <= MAX_VALUES:
        raise ExperimentError(f"An experiment compares {MIN_VALUES} to {MAX_VALUES} different values of its "
                              f"{chosen.label}, not {len(values)}.")
    return values
