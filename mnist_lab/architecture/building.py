"""The Keras model of an architecture, built only after the architecture has been checked."""

from __future__ import annotations

import re

from mnist_lab.architecture.layers import INPUT_SHAPE, NUM_CLASSES
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import normalize_layers


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
    for layer in normalize_layers(layers):
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


def model_summary(model) -> str:
    """Keras' own summary table as text."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines)
