"""The analysis: shapes and counts agree with Keras, and every architecture that cannot be built is refused
with a message that names the layer and says what to change."""

from __future__ import annotations

import math

import pytest
from helpers import FLATTEN, conv, pool, refused

from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import (MAX_LAYERS, MAX_MULTIPLY_ADDS, MAX_PARAMETERS, analyze, analyze_partial,
                                          layer_label)
from mnist_lab.architecture.validation import normalize_layer


# Architectures that exercise every layer type and setting: the analysis must match Keras on each.
VARIED = {
    "same padding and strides": [
        {"type": "Conv2D", "filters": 8, "kernel_size": [5, 3], "strides": [2, 1], "padding": "same"},
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 3, "padding": "valid", "activation": "tanh"},
        {"type": "Flatten"},
    ],
    "pooling with strides": [
        {"type": "AveragePooling2D", "pool_size": [3, 2], "strides": [2, 3]},
        {"type": "MaxPooling2D", "pool_size": 2, "strides": 1},
        {"type": "BatchNormalization", "axis": 2},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 7, "activation": "gelu"},
    ],
    "batchnorm on channels and on a vector": [
        {"type": "Conv2D", "filters": 6, "kernel_size": 4},
        {"type": "BatchNormalization", "axis": -1},
        {"type": "BatchNormalization", "axis": 3},
        {"type": "Flatten"},
        {"type": "BatchNormalization", "axis": 1},
        {"type": "Dropout", "rate": 0.0},
        {"type": "Dense", "units": 12, "activation": "linear"},
    ],
    "dense only": [{"type": "Flatten"}],
}


def keras_layer_parameters(model) -> list[int]:
    return [layer.count_params() for layer in model.layers]


@pytest.mark.parametrize("layers", list(PRESETS) + list(VARIED))
def test_analysis_agrees_with_keras(layers):
    layers = preset_layers(layers) if layers in PRESETS else VARIED[layers]
    report = analyze(layers)
    model = build_model(layers, "checked")
    assert model.count_params() == report.total_parameters
    assert sum(math.prod(weight.shape) for weight in model.trainable_weights) == report.trainable_parameters
    assert keras_layer_parameters(model) == [layer.parameters for layer in report.layers]
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [layer.output_shape for layer in report.layers]


def test_multiply_adds_count_every_weight_use():
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"},
              {"type": "Dense", "units": 5}]
    report = analyze(layers)
    conv, _, dense, output = report.layers
    assert conv.multiply_adds == 26 * 26 * 3 * 3 * 1 * 4
    assert dense.multiply_adds == 26 * 26 * 4 * 5
    assert output.multiply_adds == 5 * 10
    assert report.multiply_adds == conv.multiply_adds + dense.multiply_adds + output.multiply_adds


def test_kernel_larger_than_its_input():
    error = refused([pool(14), conv(kernel=3), FLATTEN])
    assert error.layer_number == 2
    assert "Layer 2 (Conv2D 8 3x3) gets a 2x2 input" in str(error)
    assert "smaller kernel" in str(error) and "'same' padding" in str(error)


def test_pooling_that_would_shrink_a_side_to_nothing():
    error = refused([pool(), pool(), pool(), pool(), pool(), FLATTEN])  # 28 -> 14 -> 7 -> 3 -> 1 -> ?
    assert error.layer_number == 5
    assert "gets a 1x1 input, smaller than its window" in str(error)
    assert "smaller pool size" in str(error)


def test_dense_without_flatten_before_it():
    error = refused([conv(), {"type": "Dense", "units": 32}])
    assert error.layer_number == 2
    assert "gets a 26x26x8 image: add a Flatten" in str(error)


def test_image_layer_after_flatten():
    error = refused([FLATTEN, conv()])
    assert error.layer_number == 2
    assert "needs an image, but gets a flat vector of 784: move it before the Flatten" in str(error)


def test_no_flatten_at_all_blames_the_output_layer():
    error = refused([conv()])
    assert error.layer_number == 2
    assert "output layer (Dense 10 softmax) needs a flat input" in str(error)
    assert "add Flatten or GlobalAveragePooling2D at the end" in str(error)


def test_batchnorm_axis_that_does_not_exist_after_flatten():
    error = refused([FLATTEN, {"type": "BatchNormalization", "axis": 2}])
    assert error.layer_number == 2
    assert "axis 2 does not exist after the Flatten" in str(error) and "use axis -1" in str(error)


def test_too_many_parameters_states_the_limit_and_the_heaviest_layer():
    error = refused([FLATTEN, {"type": "Dense", "units": 65536}])
    assert f"is over the limit of {MAX_PARAMETERS:,}" in str(error)
    assert error.layer_number == 2 and "Layer 2 (Dense 65536 relu) alone has 51,445,760" in str(error)


def test_too_much_work_per_image_states_the_limit():
    error = refused([conv(512), conv(512), conv(512), {"type": "GlobalAveragePooling2D"}])
    assert f"over the limit of {MAX_MULTIPLY_ADDS:,}" in str(error)
    assert error.layer_number == 2  # the first 26x26 -> 24x24 convolution of 512 x 512 channels


def test_too_many_layers_states_the_limit():
    error = refused([{"type": "Dropout", "rate": 0.1}] * (MAX_LAYERS - 1) + [FLATTEN])
    assert f"{MAX_LAYERS + 1} layers (with the output layer) is over the limit of {MAX_LAYERS}" in str(error)
    analyze([{"type": "Dropout", "rate": 0.1}] * (MAX_LAYERS - 2) + [FLATTEN])  # exactly at the limit


def test_analyze_partial_reports_the_layers_before_the_error():
    report, error = analyze_partial([conv(), pool(), conv(filters=0), FLATTEN])
    assert [layer.number for layer in report.layers] == [1, 2]
    assert report.layers[-1].output_shape == (13, 13, 8)
    assert error.layer_number == 3
    report, error = analyze_partial(preset_layers("seed-3layer"))
    assert error is None and report.total_parameters == analyze(preset_layers("seed-3layer")).total_parameters


def test_layer_labels():
    labels = [layer_label(normalize_layer(layer, 1)) for layer in [
        conv(64, 5), conv(8, [3, 1], strides=2, padding="same"), pool(2), {"type": "AveragePooling2D", "pool_size": 3},
        {"type": "BatchNormalization", "axis": 1}, {"type": "Dropout", "rate": 0.25}, FLATTEN,
        {"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 256, "activation": "relu"}]]
    assert labels == ["Conv2D 64 5x5", "Conv2D 8 3x1, stride 2, same", "MaxPooling2D 2x2", "AveragePooling2D 3x3",
                      "BatchNormalization axis=1", "Dropout 0.25", "Flatten", "GlobalAveragePooling2D",
                      "Dense 256 relu"]
