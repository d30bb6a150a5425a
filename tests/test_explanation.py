"""Explanations: feature maps are the layers' real outputs, the saliency is the real gradient of the
top class's logit, and both render as single pictures."""

from __future__ import annotations

import numpy as np
import pytest

from draw_support import SEVEN, canvas_pixels, draw_strokes
from mnist_lab import architectures, explanation, preprocessing

TINY = [
    {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": [2, 2]},
    {"type": "Conv2D", "filters": 3, "kernel_size": [3, 3], "activation": "tanh"},
    {"type": "BatchNormalization", "axis": -1},
    {"type": "Dropout", "rate": 0.5},
    {"type": "Flatten"},
]


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(3)
    return architectures.build_model(TINY, "tiny")


@pytest.fixture(scope="module")
def digit():
    return preprocessing.preprocess_canvas(canvas_pixels(draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9)))).image


def test_feature_maps_are_each_convolutions_output(model, digit):
    import keras

    found = explanation.conv_feature_maps(model, digit)
    assert [layer.number for layer in found] == [1, 3]
    assert [layer.name for layer in found] == ["Conv2D 4 3x3", "Conv2D 3 3x3"]
    report = architectures.analyze(TINY)
    assert [layer.maps.shape for layer in found] == [report.layers[0].output_shape, report.layers[2].output_shape]
    for layer in found:
        probe = keras.Model(model.inputs[0], model.layers[layer.number - 1].output)
        expected = np.asarray(probe(digit.reshape(1, 28, 28, 1), training=False))[0]
        np.testing.assert_allclose(layer.maps, expected, rtol=1e-5, atol=1e-5)


def test_logits_are_what_the_softmax_turns_into_the_prediction(model, digit):
    import keras

    x = digit.reshape(1, 28, 28, 1)
    logits = np.asarray(explanation._logits(model, keras.ops.convert_to_tensor(x)))
    probabilities = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), probabilities, rtol=1e-4, atol=1e-6)


def test_input_gradient_matches_finite_differences(model):
    """On a noisy image, so that no max pooling window has a tie that makes the gradient one-sided."""
    import keras

    digit = np.random.default_rng(0).uniform(0, 1, (28, 28)).astype("float32")

    def logit(image, class_index):
        return float(np.asarray(explanation._logits(model, keras.ops.convert_to_tensor(
            image.reshape(1, 28, 28, 1).astype("float32"))))[0, class_index])

    class_index = 4
    gradient = explanation.input_gradient(model, digit[None], class_index)[0]
    assert gradient.shape == (28, 28)
    step = 1e-3
    strongest = np.argsort(np.abs(gradient).ravel())[-5:]
    for flat in strongest:
        row, column = divmod(int(flat), 28)
        up, down = digit.copy(), digit.copy()
        up[row, column] += step
        down[row, column] -= step
        numeric = (logit(up, class_index) - logit(down, class_index)) / (2 * step)
        assert numeric == pytest.approx(gradient[row, column], rel=0.1, abs=1e-3)


def test_batched_gradients_are_per_image(model, digit):
    blank = np.zeros((28, 28), "float32")
    both = explanation.input_gradient(model, np.stack([digit, blank]), 2)
    np.testing.assert_allclose(both[0], explanation.input_gradient(model, digit[None], 2)[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(both[1], explanation.input_gradient(model, blank[None], 2)[0], rtol=1e-4, atol=1e-6)


def test_saliency_is_signed_scaled_and_repeatable(model, digit):
    first = explanation.saliency(model, digit, 7)
    assert first.shape == (28, 28)
    assert first.min() >= -1.0 and first.max() <= 1.0 and np.abs(first).max() == pytest.approx(1.0)
    assert (first > 0).any() and (first < 0).any()
    np.testing.assert_array_equal(first, explanation.saliency(model, digit, 7))
    single = explanation.saliency(model, digit, 7, samples=1)
    raw = explanation.input_gradient(model, digit[None], 7)[0]
    assert np.corrcoef(single.ravel(), raw.ravel())[0, 1] > 0.99


def test_feature_grid_is_one_picture_with_dead_channels_black():
    maps = np.zeros((13, 13, 5), "float32")
    maps[..., 0] = 2.0
    maps[4:8, 4:8, 3] = 1.0
    grid = explanation.feature_grid(maps, columns=5)
    scale = round(explanation.TILE / 13)
    assert grid.width >= 5 * 13 * scale and grid.height >= 13 * scale
    pixels = np.asarray(grid.convert("L"))
    assert pixels.max() == 255
    padding = 3
    second_tile = pixels[padding:padding + 13 * scale, padding + (13 * scale + padding):padding + (13 * scale + padding) + 13 * scale]
    assert second_tile.max() == 0  # channel 1 never fires: black
    many = explanation.feature_grid(np.ones((5, 5, 100), "float32"))
    assert many.height < many.width  # capped to MAX_CHANNELS, 16 per row


def test_saliency_overlay_colours_raise_and_lower(digit):
    salient = np.zeros((28, 28), "float32")
    salient[0, 0] = 1.0
    salient[0, 27] = -1.0
    picture = np.asarray(explanation.saliency_overlay(digit, salient, size=56))
    assert picture.shape == (56, 56, 3)
    red, blue = picture[0, 0], picture[0, 55]
    assert red[0] > 200 and red[2] < 60
    assert blue[2] > 200 and blue[0] < 120
