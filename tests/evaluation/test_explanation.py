"""Explanations: feature maps are the layers' real outputs, the saliency is the real gradient of the
top class's logit, and both render as single pictures."""

from __future__ import annotations

import numpy as np
import pytest

from draw_support import SEVEN, canvas_pixels, draw_strokes
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.report import analyze
from mnist_lab.evaluation import explanation
from mnist_lab.images import canvas

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
    return build_model(TINY, "tiny")


@pytest.fixture(scope="module")
def digit():
    return canvas.preprocess_canvas(canvas_pixels(draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9)))).image


def test_feature_maps_are_each_convolutions_output(model, digit):
    import keras

    found = explanation.conv_feature_maps(model, digit)
    assert [layer.number for layer in found] == [1, 3]
    assert [layer.name for layer in found] == ["Conv2D 4 3x3", "Conv2D 3 3x3"]
    report = analyze(TINY)
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


# --- Grad-CAM -------------------------------------------------------------------------------------

def test_grad_cam_is_a_28x28_map_in_0_1(model, digit):
    cam = explanation.grad_cam(model, digit, 7)
    assert cam.shape == (28, 28) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert cam.max() == pytest.approx(1.0) or cam.max() == 0.0
    last = analyze(TINY).layers[2].output_shape  # the last convolution's grid
    assert explanation.grad_cam_grid(model, digit, 7).shape == tuple(last[:2])
    picture = explanation.grad_cam_overlay(digit, cam, size=56)
    assert picture.size == (56, 56) and picture.mode == "RGB"


def test_grad_cam_weighs_each_map_by_its_mean_gradient(model, digit):
    """Against finite differences: the layers after TINY's last convolution (BatchNormalization, Dropout,
    Flatten, Dense) are linear, so moving a whole map by +-h changes the logit by exactly 2h x its gradient sum."""
    import keras

    position = explanation.last_convolution(model)
    probe = keras.Model(model.inputs[0], model.layers[position].output)
    maps = np.asarray(probe(digit.reshape(1, 28, 28, 1), training=False))
    for class_index in (2, 7):
        def logit(values):
            return float(np.asarray(explanation._logits(model, keras.ops.convert_to_tensor(values), position + 1))
                         [0, class_index])

        step, cells = 1e-2, maps.shape[1] * maps.shape[2]
        alphas = []
        for channel in range(maps.shape[-1]):
            up, down = maps.copy(), maps.copy()
            up[..., channel] += step
            down[..., channel] -= step
            alphas.append((logit(up) - logit(down)) / (2 * step * cells))
        expected = np.maximum((maps[0] * np.array(alphas)).sum(axis=-1), 0.0)
        np.testing.assert_allclose(explanation.grad_cam_grid(model, digit, class_index), expected,
                                   rtol=1e-2, atol=1e-4)


def test_grad_cam_needs_a_convolution():
    flat = build_model([{"type": "Flatten"}], "flat")
    with pytest.raises(explanation.ExplanationError, match="convolution"):
        explanation.grad_cam(flat, np.zeros((28, 28), "float32"), 0)


@pytest.mark.slow
def test_grad_cam_of_a_trained_net_lies_on_the_digits_ink(real_mnist):
    """A small net trained for seconds on a slice of MNIST: over 30 test digits, Grad-CAM's mass per pixel is
    higher on the digits' ink (dilated by 2 pixels: the map is coarse) than on the empty field, in all and for
    the typical digit."""
    import keras
    from scipy import ndimage

    from mnist_lab import data

    keras.utils.set_random_seed(0)
    layers = [{"type": "Conv2D", "filters": 8, "kernel_size": [3, 3], "activation": "relu"},
              {"type": "MaxPooling2D", "pool_size": [2, 2]},
              {"type": "Conv2D", "filters": 16, "kernel_size": [3, 3], "activation": "relu"},
              {"type": "MaxPooling2D", "pool_size": [2, 2]},
              {"type": "Conv2D", "filters": 16, "kernel_size": [3, 3], "activation": "relu"},
              {"type": "MaxPooling2D", "pool_size": [2, 2]},  # 3x3 to 1x1, as in the notebook's 3-layer net
              {"type": "Flatten"}]
    trained = build_model(layers, "small")
    trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    trained.fit(data.to_model_input(real_mnist.x_train[:4000]), real_mnist.y_train[:4000], epochs=2, batch_size=64,
                verbose=0)
    totals, ratios = np.zeros(4), []
    for image, label in zip(real_mnist.x_test[:30], real_mnist.y_test[:30]):
        cam = explanation.grad_cam(trained, image, int(label))
        ink = ndimage.binary_dilation(image > 0, iterations=2)
        totals += [cam[ink].sum(), ink.sum(), cam[~ink].sum(), (~ink).sum()]
        ratios.append(cam[ink].mean() / max(cam[~ink].mean(), 1e-9))
    on_ink, on_field = totals[0] / totals[1], totals[2] / totals[3]
    assert on_ink > on_field and np.median(ratios) > 1, (on_ink, on_field, np.round(ratios, 2))
