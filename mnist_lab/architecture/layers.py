"""The layer types a learner can use and their settings: the one registry that the editor shows, the
validator checks and the builder hands to Keras.

An architecture is a JSON-serialisable list of layer dicts such as
``{"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"}``. The final
``Dense(10, activation="softmax")`` is never part of the list: the builder always appends it.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
MAX_CHANNELS = 4096

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


# Settings that several layer types share, defined once.
_ACTIVATION = Parameter("activation", "choice", "relu", "Non-linearity applied to each output.", choices=ACTIVATIONS)
_POOLING = (
    _pair_param("pool_size", [2, 2], "Height and width of each window."),
    Parameter("strides", "optional_pair", None, "Step between windows; empty = the pool size.", minimum=1, maximum=28),
)

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
                _ACTIVATION,
            ),
        ),
        LayerType("MaxPooling2D",
                  "Keeps the largest value of each window: shrinks the image, keeps the strongest signal.", _POOLING),
        LayerType("AveragePooling2D", "Averages each window: shrinks the image smoothly.", _POOLING),
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
            (Parameter("units", "int", 128, "Number of units (outputs).", 1, 65536), _ACTIVATION),
        ),
    )
}
