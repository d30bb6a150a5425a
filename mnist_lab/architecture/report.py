"""What an architecture is before Keras builds it: each layer's output shape, parameters and multiply-adds,
worked out in plain Python, and the limits on them, so that a bad edit gets a message instead of a traceback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter

from mnist_lab.architecture.layers import INPUT_SHAPE, NUM_CLASSES
from mnist_lab.architecture.validation import ArchitectureError, as_pair, normalize_layer

MAX_LAYERS = 64
MAX_PARAMETERS = 50_000_000
MAX_MULTIPLY_ADDS = 2_000_000_000
# The limits on a whole architecture: (limit, LayerReport field, what it counts, verb, what to change).
_TOTAL_LIMITS = (
    (MAX_PARAMETERS, "parameters", "parameters", "alone has", "use fewer filters or units, or pool before it"),
    (MAX_MULTIPLY_ADDS, "multiply_adds", "multiply-adds per image", "does",
     "use fewer filters, a stride of 2, or pool before it"),
)


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


def layer_label(layer: dict) -> str:
    """A short human name for a layer, e.g. 'Conv2D 64 5x5' or 'Dropout 0.25'."""
    kind = layer["type"]
    if kind == "Conv2D":
        kh, kw = as_pair(layer["kernel_size"])
        stride = as_pair(layer.get("strides", 1))
        extra = f", stride {stride[0]}" if stride != [1, 1] else ""
        extra += ", same" if layer.get("padding") == "same" else ""
        return f"Conv2D {layer['filters']} {kh}x{kw}{extra}"
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        ph, pw = as_pair(layer["pool_size"])
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
    returned, not raised; tests/architecture/test_fuzz.py checks it.
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
    for limit, measure, what, verb, advice in _TOTAL_LIMITS:
        total = sum(getattr(layer, measure) for layer in reports)
        if total > limit:
            heaviest = max(reports, key=attrgetter(measure))
            raise ArchitectureError(
                f"{total:,} {what} is over the limit of {limit:,}. Layer {heaviest.number} ({heaviest.label}) "
                f"{verb} {getattr(heaviest, measure):,}: {advice}.", heaviest.number)


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
