"""Architectures as plain data: the layer registry, the presets, validation and building.

An architecture is a JSON-serialisable list of layer dicts such as
``{"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"}``. The final
``Dense(10, activation="softmax")`` is never part of the list: the builder always appends it.
Nothing a learner types is executed; shapes and parameter counts are worked out here in plain
Python, before Keras builds anything, so that a bad edit gets a message instead of a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field

from mnist_lab.errors import LabError, shown_value

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MAX_LAYERS = 64
MAX_PARAMETERS = 50_000_000
MAX_MULTIPLY_ADDS = 2_000_000_000
MAX_CHANNELS = 4096
MAX_NAMED = 5  # unknown settings a message lists by name
MAX_NAME_LENGTH = 60  # an imported architecture's name is cut to this

ACTIVATIONS = ("relu", "elu", "gelu", "selu", "tanh", "sigmoid", "softplus", "linear")
PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class Parameter:
    """One setting of a layer type: how the editor shows it and how the validator checks it."""

    name: str
    kind: str  # "int", "pair", "optional_pair", "float", "choice"
    default: object
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    labels: tuple = ()  # how the editor names each choice, when the value alone says little

    def choice_label(self, value) -> str:
        if value in self.choices and len(self.labels) == len(self.choices):
            return self.labels[self.choices.index(value)]
        return str(value)


@dataclass(frozen=True)
class LayerType:
    name: str
    description: str
    parameters: tuple[Parameter, ...] = ()


def _pair_param(name, default, help_text, maximum=28):
    return Parameter(name, "pair", default, help_text, minimum=1, maximum=maximum)


LAYER_TYPES: dict[str, LayerType] = {
    layer.name: layer
    for layer in (
        LayerType(
            "Conv2D",
            "Slides small learned filters over the image; each filter becomes one output channel.",
            (
                Parameter("filters", "int", 32, "Number of filters (output channels).", 1, MAX_CHANNELS),
                _pair_param("kernel_size", [3, 3], "Height and width of each filter."),
                _pair_param("strides", [1, 1], "Step between filter positions; 2 halves the size."),
                Parameter("padding", "choice", "valid", "'valid' shrinks the image, 'same' keeps its size.",
                          choices=PADDINGS),
                Parameter("activation", "choice", "relu", "Non-linearity applied to each output.",
                          choices=ACTIVATIONS),
            ),
        ),
        LayerType(
            "MaxPooling2D",
            "Keeps the largest value of each window: shrinks the image, keeps the strongest signal.",
            (
                _pair_param("pool_size", [2, 2], "Height and width of each window."),
                Parameter("strides", "optional_pair", None, "Step between windows; empty = the pool size.",
                          minimum=1, maximum=28),
            ),
        ),
        LayerType(
            "AveragePooling2D",
            "Averages each window: shrinks the image smoothly.",
            (
                _pair_param("pool_size", [2, 2], "Height and width of each window."),
                Parameter("strides", "optional_pair", None, "Step between windows; empty = the pool size.",
                          minimum=1, maximum=28),
            ),
        ),
        LayerType(
            "BatchNormalization",
            "Normalises activations over a batch along one axis; learns a scale and a shift per entry.",
            (
                Parameter("axis", "choice", -1,
                          "Axis normalised: -1 = channels (usual), 1 = image rows, 2 = image columns.",
                          choices=(-1, 1, 2, 3),
                          labels=("-1: channels", "1: image rows", "2: image columns", "3: channels (as -1)")),
            ),
        ),
        LayerType(
            "Dropout",
            "During training only, zeroes a random fraction of its inputs: fights overfitting.",
            (Parameter("rate", "float", 0.25, "Fraction of inputs dropped, from 0 up to (not including) 1.",
                       0.0, 1.0),),
        ),
        LayerType("Flatten", "Unrolls the image into one long vector, for Dense layers."),
        LayerType(
            "GlobalAveragePooling2D",
            "Averages each channel over the whole image: one number per channel, no parameters.",
        ),
        LayerType(
            "Dense",
            "Every input connected to every unit: the classic fully connected layer.",
            (
                Parameter("units", "int", 128, "Number of units (outputs).", 1, 65536),
                Parameter("activation", "choice", "relu", "Non-linearity applied to each output.",
                          choices=ACTIVATIONS),
            ),
        ),
    )
}


def default_layer(type_name: str) -> dict:
    """A new layer of this type with every setting at its default."""
    layer_type = _layer_type(type_name, None)
    layer = {"type": type_name}
    for parameter in layer_type.parameters:
        layer[parameter.name] = copy.deepcopy(parameter.default)
    return layer


def _conv(filters, kernel, activation="relu", stride=1, padding="valid"):
    return {"type": "Conv2D", "filters": filters, "kernel_size": [kernel, kernel], "strides": [stride, stride],
            "padding": padding, "activation": activation}


def _max_pool(size):
    return {"type": "MaxPooling2D", "pool_size": [size, size], "strides": None}


def _batch_norm(axis):
    return {"type": "BatchNormalization", "axis": axis}


def _dropout(rate):
    return {"type": "Dropout", "rate": rate}


def _dense(units, activation="relu"):
    return {"type": "Dense", "units": units, "activation": activation}


_FLATTEN = {"type": "Flatten"}


@dataclass(frozen=True)
class Preset:
    id: str
    title: str
    layers: list
    note: str
    from_notebook: bool = True
    training: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    preset.id: preset
    for preset in (
        Preset(
            "seed-3layer",
            "3 conv layers, 3x3 kernels (notebook: 98.6 %)",
            [
                _conv(64, 3), _max_pool(2),
                _conv(32, 3), _batch_norm(1), _max_pool(2),
                _conv(16, 3), _batch_norm(1), _max_pool(2),
                _FLATTEN, _dense(256), _dropout(0.5),
            ],
            "The notebook's smallest net: three 3x3 convolutions, each followed by a 2x2 max pooling, "
            "so the image shrinks 28 → 26 → 13 → 11 → 5 → 3 → 1. By the Flatten only 16 numbers are left, "
            "which is why it has so few parameters (30,706) and trains fastest.",
        ),
        Preset(
            "seed-5layer",
            "5 conv layers, 5x5 kernels (notebook: 99.3 %)",
            [
                _conv(40, 5), _dropout(0.25),
                _conv(60, 5), _dropout(0.25), _max_pool(1),
                _conv(70, 5), _dropout(0.25), _batch_norm(1),
                _conv(90, 5), _max_pool(2), _batch_norm(1),
                _conv(100, 5), _max_pool(1),
                _FLATTEN, _dense(512), _dropout(0.5),
            ],
            "The notebook's most accurate net: five 5x5 convolutions with many filters. Wide layers on "
            "large images make it by far the most expensive per image, about 14x the 3-layer net's work "
            "for 0.7 points of accuracy: on a laptop CPU an epoch takes minutes.",
        ),
        Preset(
            "seed-7layer",
            "7 conv layers, mixed kernels (notebook: 99.1 %)",
            [
                _conv(128, 7), _dropout(0.25), _max_pool(1),
                _conv(64, 3), _batch_norm(1),
                _conv(32, 5), _dropout(0.5), _max_pool(1),
                _conv(32, 3), _dropout(0.25), _max_pool(1), _batch_norm(1),
                _conv(16, 2), _batch_norm(1), _max_pool(1),
                _conv(16, 2), _batch_norm(1), _dropout(0.5), _max_pool(2),
                _conv(8, 3), _max_pool(2),
                _FLATTEN, _dense(256), _dropout(0.25),
            ],
            "The notebook's deepest net mixes 7x7, 5x5, 3x3 and 2x2 kernels. Depth alone did not beat the "
            "5-layer net: its later layers are narrow (16 and 8 filters) and end on a 2x2x8 image, so "
            "little information reaches the classifier.",
        ),
        Preset(
            "quick-cnn",
            "a fast modern net for a lesson (not from the notebook)",
            [
                _conv(32, 5, stride=2, padding="same"),
                _conv(64, 3, stride=2, padding="same"),
                _FLATTEN, _dropout(0.25), _dense(128),
            ],
            "Not from the notebook: a small modern CNN for a lesson on a laptop. Its two convolutions use "
            "stride 2 instead of pooling, so each one halves the image (28 → 14 → 7) and no work is spent on "
            "positions that pooling would throw away: 1.5 million multiply-adds per image, half the 3-layer "
            "net's and 1/50 of the 5-layer net's. It keeps enough of the image (7x7x64) for the classifier, "
            "and it trains with large batches (256) and a learning rate that warms up then decays along a "
            "cosine, so two epochs reach about 98.8 % test accuracy in well under a minute on a 2-core CPU.",
            from_notebook=False,
            training={"epochs": 2, "batch_size": 256, "optimizer": "adam", "learning_rate": 0.004,
                      "schedule": "warmup-cosine"},
        ),
        Preset(
            "fast-cnn",
            "two epochs, one learning-rate cycle (not from the notebook)",
            [
                _conv(24, 5, stride=2, padding="same"), _batch_norm(-1),
                _conv(32, 3, stride=2, padding="same"), _batch_norm(-1),
                _FLATTEN, _dense(256),
            ],
            "Not from the notebook: made to learn MNIST in two passes over the images, after a well-known "
            "recipe for training it in seconds. Two small stride-2 convolutions (24 and 32 filters, 28 → 14 → 7) "
            "and a 256-unit Dense layer cost 0.86 million multiply-adds per image, 3/5 of quick-cnn's, so its two "
            "epochs take about as long as quick-cnn's two: Adam at a high rate (0.01) in batches of 256, on one "
            "one-cycle schedule over both epochs, which rises for the first 30 % of the steps and then decays "
            "along a cosine, with BatchNormalization after each convolution so that such a rate does not "
            "diverge. Two epochs reach about 99.0 % test accuracy (98.9 to 99.1 % over seeds 1 to 3; one epoch "
            "stopped at 98.6 to 98.9 %).",
            from_notebook=False,
            training={"epochs": 2, "batch_size": 256, "optimizer": "adam", "learning_rate": 0.01,
                      "schedule": "one-cycle"},
        ),
    )
}


class ArchitectureError(LabError):
    """An architecture that cannot be built, with the 1-based number of the layer at fault."""

    def __init__(self, message: str, layer_number: int | None = None):
        super().__init__(message)
        self.layer_number = layer_number


@dataclass(frozen=True)
class LayerReport:
    number: int  # 1-based; the output layer gets len(layers) + 1
    type: str
    label: str
    output_shape: tuple
    parameters: int
    trainable: int
    multiply_adds: int


@dataclass(frozen=True)
class ArchitectureReport:
    layers: list[LayerReport]

    @property
    def total_parameters(self) -> int:
        return sum(layer.parameters for layer in self.layers)

    @property
    def trainable_parameters(self) -> int:
        return sum(layer.trainable for layer in self.layers)

    @property
    def non_trainable_parameters(self) -> int:
        return self.total_parameters - self.trainable_parameters

    @property
    def multiply_adds(self) -> int:
        return sum(layer.multiply_adds for layer in self.layers)


MAX_READ_DIGITS = 4000  # Python refuses to read ints over 4,300 digits, with a message about its own settings


@dataclass(frozen=True)
class LongNumber:
    """A whole number in JSON too long for Python to read: kept as its length and sign, so that the layer's
    check names the setting and its limit."""

    digits: int
    negative: bool = False

    def __repr__(self):
        return f"a {self.digits:,}-digit {'negative ' if self.negative else ''}number"


def quoted(value) -> str:
    """A value as a message quotes it, cut short: a 1 MB string, a 400-digit number or a list nested
    10,000 deep each give a few words, never an exception."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 30:
        return f"a {math.floor(math.log10(abs(value))) + 1:,}-digit {'negative ' if value < 0 else ''}number"
    try:
        return shown_value(value)
    except (ValueError, RecursionError):  # ints over 4,300 digits inside a list; nesting deeper than repr goes
        return f"a {type(value).__name__} too large to show"


def _layer_type(type_name, number):
    if not isinstance(type_name, str) or type_name not in LAYER_TYPES:
        where = f"Layer {number}: " if number else ""
        known = ", ".join(LAYER_TYPES)
        raise ArchitectureError(f"{where}unknown layer type {quoted(type_name)}. Use one of: {known}.", number)
    return LAYER_TYPES[type_name]


def _as_int(value):
    """Whole numbers, also written as floats (3.0); ints of any size (math.isfinite overflows on them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"must be a whole number, not {quoted(value)}")
    return int(value)


def _as_pair(value):
    """A size as [height, width]; one number means a square."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"must be a whole number or a pair of whole numbers, not {quoted(value)}")
    try:
        return [_as_int(v) for v in value]
    except ValueError:
        raise ValueError(f"must be a whole number or a pair of whole numbers, not {quoted(value)}") from None


def normalize_layer(layer: dict, number: int | None = None) -> dict:
    """Check one layer's settings against the registry; return it with defaults filled in.

    Raises ArchitectureError naming the layer and the setting to change.
    """
    if not isinstance(layer, dict):
        raise ArchitectureError(f"Layer {number} must be an object with a 'type', not {quoted(layer)}.", number)
    layer_type = _layer_type(layer.get("type"), number)
    known = {parameter.name for parameter in layer_type.parameters} | {"type"}
    unknown = sorted(key if isinstance(key, str) and len(key) <= 40 else quoted(key) for key in set(layer) - known)
    if unknown:
        allowed = ", ".join(p.name for p in layer_type.parameters) or "none"
        shown = ", ".join(unknown[:MAX_NAMED]) + (f" and {len(unknown) - MAX_NAMED:,} more"
                                                  if len(unknown) > MAX_NAMED else "")
        raise ArchitectureError(
            f"Layer {number} ({layer_type.name}) has unknown setting(s) {shown}; "
            f"its settings are: {allowed}.", number)
    result = {"type": layer_type.name}
    for parameter in layer_type.parameters:
        value = layer.get(parameter.name, copy.deepcopy(parameter.default))
        where = f"Layer {number} ({layer_type.name}) {parameter.name}"
        try:
            result[parameter.name] = _check_value(parameter, value)
        except ValueError as error:
            raise ArchitectureError(f"{where}: {error}.", number) from None
    return result


def _check_value(parameter: Parameter, value):
    if isinstance(value, LongNumber) and parameter.kind in ("int", "float"):
        limit = f"at least {parameter.minimum:g}" if value.negative else f"at most {parameter.maximum:g}"
        raise ValueError(f"must be {limit}, not {value!r}")
    if parameter.kind == "choice":
        if isinstance(value, bool) or value not in parameter.choices:
            raise ValueError(f"{quoted(value)} is not one of {', '.join(map(str, parameter.choices))}")
        return parameter.choices[parameter.choices.index(value)]
    if parameter.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a number, not {quoted(value)}")
        if not parameter.minimum <= value < parameter.maximum:
            shown = f"{value:g}" if isinstance(value, float) else quoted(value)
            raise ValueError(f"must be at least {parameter.minimum:g} and below {parameter.maximum:g}, "
                             f"not {shown}")
        return float(value)
    if parameter.kind == "optional_pair" and value is None:
        return None
    try:
        values = [_as_int(value)] if parameter.kind == "int" else _as_pair(value)
    except ValueError as error:
        if parameter.kind == "optional_pair":
            raise ValueError(f"{error}; leave it empty to use the pool size") from None
        raise
    for v in values:
        if v < parameter.minimum:
            raise ValueError(f"must be at least {parameter.minimum:g}, not {quoted(v)}")
        if v > parameter.maximum:
            raise ValueError(f"must be at most {parameter.maximum:g}, not {quoted(v)}")
    return values[0] if parameter.kind == "int" else values


def layer_label(layer: dict) -> str:
    """A short human name for a layer, e.g. 'Conv2D 64 5x5' or 'Dropout 0.25'."""
    kind = layer["type"]
    if kind == "Conv2D":
        kh, kw = _as_pair(layer["kernel_size"])
        stride = _as_pair(layer.get("strides", 1))
        extra = f", stride {stride[0]}" if stride != [1, 1] else ""
        extra += ", same" if layer.get("padding") == "same" else ""
        return f"Conv2D {layer['filters']} {kh}x{kw}{extra}"
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        ph, pw = _as_pair(layer["pool_size"])
        return f"{kind} {ph}x{pw}"
    if kind == "BatchNormalization":
        return f"BatchNormalization axis={layer['axis']}"
    if kind == "Dropout":
        return f"Dropout {layer['rate']:g}"
    if kind == "Dense":
        return f"Dense {layer['units']} {layer['activation']}"
    return kind


def _conv_output(size, kernel, stride, padding):
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def analyze(layers: list) -> ArchitectureReport:
    """Infer every layer's output shape, parameters and multiply-adds, as Keras would build it.

    Raises ArchitectureError with a message that names the layer and says what to change.
    """
    reports: list[LayerReport] = []
    _analyze_into(layers, reports)
    return ArchitectureReport(reports)


def analyze_partial(layers: list) -> tuple[ArchitectureReport, ArchitectureError | None]:
    """Like analyze, but never raises: the layers analysed before the first error, and that error.

    An editor shows the shapes up to the faulty layer, so the learner sees where it goes wrong. Whatever the
    list holds (numbers of any size, NaN, deep nesting, any type), the only error is an ArchitectureError,
    returned, not raised; tests/test_architecture_fuzz.py checks it.
    """
    reports: list[LayerReport] = []
    try:
        _analyze_into(layers, reports)
    except ArchitectureError as error:
        return ArchitectureReport(reports), error
    return ArchitectureReport(reports), None


def _analyze_into(layers, reports):
    if not isinstance(layers, list):
        raise ArchitectureError("An architecture is a list of layers.")
    if len(layers) + 1 > MAX_LAYERS:
        raise ArchitectureError(
            f"{len(layers) + 1} layers (with the output layer) is over the limit of {MAX_LAYERS}: "
            "remove some layers.")
    shape = INPUT_SHAPE
    for number, raw in enumerate(layers, start=1):
        layer = normalize_layer(raw, number)
        reports.append(_analyze_layer(layer, number, shape))
        shape = reports[-1].output_shape
    if len(shape) != 1:
        raise ArchitectureError(
            f"The output layer (Dense 10 softmax) needs a flat input, but the last layer gives "
            f"{_shape_text(shape)}: add Flatten or GlobalAveragePooling2D at the end.", len(layers) + 1)
    output = {"type": "Dense", "units": NUM_CLASSES, "activation": "softmax"}
    reports.append(_analyze_layer(output, len(layers) + 1, shape, label="Dense 10 softmax output"))
    report = ArchitectureReport(reports)
    if report.total_parameters > MAX_PARAMETERS:
        heaviest = max(reports, key=lambda r: r.parameters)
        raise ArchitectureError(
            f"{report.total_parameters:,} parameters is over the limit of {MAX_PARAMETERS:,}. "
            f"Layer {heaviest.number} ({heaviest.label}) alone has {heaviest.parameters:,}: "
            "use fewer filters or units, or pool before it.", heaviest.number)
    if report.multiply_adds > MAX_MULTIPLY_ADDS:
        heaviest = max(reports, key=lambda r: r.multiply_adds)
        raise ArchitectureError(
            f"{report.multiply_adds:,} multiply-adds per image is over the limit of {MAX_MULTIPLY_ADDS:,}. "
            f"Layer {heaviest.number} ({heaviest.label}) does {heaviest.multiply_adds:,}: use fewer "
            "filters, a stride of 2, or pool before it.", heaviest.number)


def _shape_text(shape):
    return "x".join(str(s) for s in shape)


def _analyze_layer(layer, number, shape, label=None):
    kind = layer["type"]
    label = label or layer_label(layer)
    name = f"Layer {number} ({label})"
    parameters = trainable = multiply_adds = 0
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D") and len(shape) != 3:
        raise ArchitectureError(
            f"{name} needs an image, but gets a flat vector of {shape[0]}: move it before the Flatten "
            "or GlobalAveragePooling2D.", number)
    if kind == "Conv2D":
        height, width, channels = shape
        kh, kw = layer["kernel_size"]
        sh, sw = layer["strides"]
        padding = layer["padding"]
        if padding == "valid" and (kh > height or kw > width):
            raise ArchitectureError(
                f"{name} gets a {height}x{width} input: use a smaller kernel, 'same' padding, "
                "or remove a pooling layer before it.", number)
        out = (_conv_output(height, kh, sh, padding), _conv_output(width, kw, sw, padding), layer["filters"])
        parameters = trainable = (kh * kw * channels + 1) * layer["filters"]
        multiply_adds = out[0] * out[1] * kh * kw * channels * layer["filters"]
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        height, width, channels = shape
        ph, pw = layer["pool_size"]
        sh, sw = layer["strides"] or layer["pool_size"]
        if ph > height or pw > width:
            raise ArchitectureError(
                f"{name} gets a {height}x{width} input, smaller than its window: use a smaller pool size "
                "or remove a pooling layer before it.", number)
        out = ((height - ph) // sh + 1, (width - pw) // sw + 1, channels)
    elif kind == "GlobalAveragePooling2D":
        out = (shape[2],)
    elif kind == "Flatten":
        out = (math.prod(shape),)
    elif kind == "BatchNormalization":
        axis = layer["axis"]
        rank = len(shape) + 1  # with the batch axis
        if axis != -1 and axis >= rank:
            raise ArchitectureError(
                f"{name}: axis {axis} does not exist after the Flatten (the input is a flat vector): "
                "use axis -1.", number)
        size = shape[axis] if axis == -1 else shape[axis - 1]
        parameters = 4 * size
        trainable = 2 * size
        out = shape
    elif kind == "Dropout":
        out = shape
    elif kind == "Dense":
        if len(shape) != 1:
            raise ArchitectureError(
                f"{name} gets a {_shape_text(shape)} image: add a Flatten (or GlobalAveragePooling2D) "
                "before it.", number)
        parameters = trainable = (shape[0] + 1) * layer["units"]
        multiply_adds = shape[0] * layer["units"]
        out = (layer["units"],)
    else:  # pragma: no cover - normalize_layer rejects unknown types
        raise ArchitectureError(f"{name}: unknown layer type.", number)
    if any(side < 1 for side in out):
        raise ArchitectureError(
            f"{name} shrinks a {_shape_text(shape)} input to nothing: use a smaller stride or window, "
            "or remove a pooling layer before it.", number)
    return LayerReport(number, kind, label, tuple(out), parameters, trainable, multiply_adds)


def build_model(layers: list, name: str = "mnist_cnn"):
    """Build the Keras model (uncompiled) after validating the architecture.

    Every layer is named here, as Keras would name it in a fresh session (conv2d, conv2d_1, …): Keras' own
    names come from a process-wide counter that clear_session() in another thread resets mid-build, which
    gave two layers one name.
    """
    analyze(layers)
    import keras
    from keras import layers as keras_layers

    counts: dict[str, int] = {}

    def layer_name(type_name):
        base = re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)).lower()
        counts[base] = counts.get(base, -1) + 1
        return base if counts[base] == 0 else f"{base}_{counts[base]}"

    built = [keras.Input(shape=INPUT_SHAPE, name="input_layer")]
    for number, raw in enumerate(layers, start=1):
        layer = normalize_layer(raw, number)
        settings = {key: value for key, value in layer.items() if key != "type"}
        for key in ("kernel_size", "strides", "pool_size"):
            if isinstance(settings.get(key), list):
                settings[key] = tuple(settings[key])
        built.append(getattr(keras_layers, layer["type"])(**settings, name=layer_name(layer["type"])))
    built.append(keras_layers.Dense(NUM_CLASSES, activation="softmax", name=layer_name("Dense")))
    return keras.Sequential(built, name=_keras_name(name))


def _keras_name(name):
    cleaned = "".join(c if c.isalnum() else "_" for c in name).strip("_")
    return cleaned or "mnist_cnn"


def preset_layers(preset_id: str) -> list:
    """A fresh copy of a preset's layers, safe to edit."""
    if preset_id not in PRESETS:
        raise ArchitectureError(f"Unknown preset {quoted(preset_id)}. Presets: {', '.join(PRESETS)}.")
    return copy.deepcopy(PRESETS[preset_id].layers)


def model_summary(model) -> str:
    """Keras' own summary table as text."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines)


ARCHITECTURE_FORMAT = "mnist-lab-architecture"


def to_json(layers: list, name: str) -> str:
    """Export an architecture; the output layer is implied and not written."""
    analyze(layers)
    layers = [normalize_layer(layer, n) for n, layer in enumerate(layers, start=1)]
    return json.dumps({"format": ARCHITECTURE_FORMAT, "version": 1, "name": name, "layers": layers}, indent=2)


def _parse_int(text: str):
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_READ_DIGITS else LongNumber(digits, text.startswith("-"))


def imported_name(name) -> str:
    """The name an imported file gives itself, as one line of at most MAX_NAME_LENGTH characters; "imported" if
    it gives none (or something that is not text)."""
    if not isinstance(name, str) or not name.strip():
        return "imported"
    return " ".join(name.split())[:MAX_NAME_LENGTH]


def from_json(text: str | bytes) -> tuple[str, list]:
    """Import an architecture exported by to_json (or a bare list of layers): returns (name, layers).

    The name is cut to MAX_NAME_LENGTH characters; it is the learner's to show as text, not Markdown.
    """
    try:
        data = json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as error:
        raise ArchitectureError(
            f"This is not valid JSON ({str(error)[:120]}). Export an architecture to see the format.") from None
    except TypeError:
        raise ArchitectureError("An architecture is JSON text; export one to see the format.") from None
    if isinstance(data, list):
        name, layers = "imported", data
    elif isinstance(data, dict) and isinstance(data.get("layers"), list):
        name, layers = imported_name(data.get("name")), data["layers"]
    else:
        raise ArchitectureError(
            "The JSON must be a list of layers or an object with a 'layers' list, "
            'e.g. {"name": "mine", "layers": [{"type": "Flatten"}]}.')
    layers = [normalize_layer(layer, n) for n, layer in enumerate(layers, start=1)]
    analyze(layers)
    return name, layers
