"""The ready-made architectures: the notebook's three nets, as it trained them, and two fast modern ones."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from mnist_lab.architecture.validation import ArchitectureError, quoted


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


def preset_layers(preset_id: str) -> list:
    """A fresh copy of a preset's layers, safe to edit."""
    if preset_id not in PRESETS:
        raise ArchitectureError(f"Unknown preset {quoted(preset_id)}. Presets: {', '.join(PRESETS)}.")
    return copy.deepcopy(PRESETS[preset_id].layers)
