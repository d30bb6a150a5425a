"""Why a model said what it said: the feature maps of its convolutions, a saliency map and Grad-CAM.

Layers are called one by one (`layer(x, training=False)`), which works the same on every Keras
backend and yields every intermediate output in one pass. The saliency map is the gradient of the
top class's score (its logit, before the softmax, so that a confident guess still has a gradient)
with respect to the input pixels: the pixels where a small change would move the score most.
Grad-CAM (Selvaraju et al., 2017) takes the same gradient at the last convolution layer's output
instead: each of its maps is weighed by how much the score gains from it on average, and the weighed
sum, where positive, says which regions of the image the guess rests on, at that layer's resolution.
Gradients are the one thing Keras 3 has no backend-independent API for, hence `_gradient`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from mnist_lab.errors import LabError
from mnist_lab.images.gallery import digit_grid
from mnist_lab.evaluation.inference import model_input

MAX_CHANNELS = 32
TILE = 52  # pixels per feature map in a grid
SMOOTHING_SAMPLES = 8


class ExplanationError(LabError):
    """A model or backend this lab cannot explain; the message says why."""


@dataclass
class LayerMaps:
    number: int  # 1-based position among the model's layers
    name: str  # e.g. "Conv2D 64 3x3"
    maps: np.ndarray  # (height, width, channels) float32

    @property
    def grid(self) -> str:
        """'26x26': the maps' height and width, the grid the layer sees the image on."""
        return "x".join(str(size) for size in self.maps.shape[:2])


def _label(layer) -> str:
    config = layer.get_config()
    kernel = "x".join(str(size) for size in config.get("kernel_size", ()))
    return f"{type(layer).__name__} {config.get('filters', '')} {kernel}".strip()


def _logits(model, x, start: int = 0):
    """The last layer's output before its softmax, computed layer by layer with keras.ops from the output of
    layer `start` - 1 (from the input when 0)."""
    from keras import ops

    last = model.layers[-1]
    if not hasattr(last, "kernel") or getattr(last, "units", None) != 10:
        raise ExplanationError("Saliency maps need a model that ends in Dense(10, softmax), as every lab model does.")
    for layer in model.layers[start:-1]:
        x = layer(x, training=False)
    return ops.add(ops.matmul(x, last.kernel), last.bias)


def conv_feature_maps(model, image: np.ndarray) -> list[LayerMaps]:
    """What each Conv2D layer outputs for this image (after its activation)."""
    from keras import layers as keras_layers
    from keras import ops

    x = model_input(image)[:1]
    found = []
    for number, layer in enumerate(model.layers, start=1):
        x = layer(x, training=False)
        if isinstance(layer, keras_layers.Conv2D):
            found.append(LayerMaps(number, _label(layer), np.asarray(ops.convert_to_numpy(x))[0]))
    return found


def feature_grid(maps: np.ndarray, columns: int = 16, max_channels: int = MAX_CHANNELS) -> Image.Image:
    """One picture with every channel's map side by side, white = strong activation.

    All channels share one scale (the layer's largest value), so a channel that stays dark is one
    that this drawing does not excite.
    """
    maps = np.asarray(maps, dtype="float32")[..., :max_channels]
    channels = np.moveaxis(maps, -1, 0)
    top = float(channels.max())
    channels = np.clip(channels / top, 0.0, 1.0) if top > 0 else np.zeros_like(channels)
    scale = max(1, round(TILE / channels.shape[1]))
    return digit_grid(channels, columns=min(columns, len(channels)), scale=scale, padding=3)


def _gradient(function, x: np.ndarray) -> np.ndarray:
    """d sum(function(x)) / dx, as a float32 array of x's shape, on any of Keras' backends."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            score = tf.reduce_sum(function(tensor))
        gradient = tape.gradient(score, tensor)
    elif backend == "jax":
        import jax

        gradient = jax.grad(lambda value: function(value).sum())(jax.numpy.asarray(x))
    elif backend == "torch":
        import torch

        tensor = torch.tensor(x, requires_grad=True, device=keras.ops.convert_to_tensor(x).device)
        function(tensor).sum().backward()
        gradient = tensor.grad
    else:
        raise ExplanationError(f"Saliency maps need gradients, which this lab computes on the tensorflow, jax and "
                               f"torch backends; Keras is running on {backend!r}.")
    return np.asarray(keras.ops.convert_to_numpy(gradient), dtype="float32").reshape(np.shape(x))


def input_gradient(model, images: np.ndarray, class_index: int) -> np.ndarray:
    """d logit[class_index] / d input for each image of a batch (n, 28, 28), on any of Keras' backends."""
    x = model_input(images)
    return _gradient(lambda value: _logits(model, value)[:, class_index], x).reshape(-1, 28, 28)


def saliency(model, image: np.ndarray, class_index: int, samples: int = SMOOTHING_SAMPLES,
             noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """Signed saliency in [-1, 1] (28x28): > 0 where more ink would raise the class's score, < 0 where it
    would lower it.

    The gradient of one image is speckled; averaging it over a few copies with a little noise added
    (SmoothGrad) keeps what is stable, for the cost of one small batch.
    """
    image = model_input(image)[0, :, :, 0]
    rng = np.random.default_rng(seed)
    batch = np.concatenate([image[None], image + rng.normal(0.0, noise, size=(samples - 1, 28, 28))])
    gradient = input_gradient(model, batch.astype("float32"), class_index).mean(axis=0)
    top = float(np.percentile(np.abs(gradient), 99))
    return np.clip(gradient / top, -1.0, 1.0) if top > 0 else gradient


def saliency_overlay(image: np.ndarray, salient: np.ndarray, size: int = 224) -> Image.Image:
    """The 28x28 input in grey, with red where more ink would raise the score and blue where it would
    lower it."""
    base = model_input(image)[0, :, :, 0] * 0.5
    salient = np.asarray(salient, dtype="float32").reshape(28, 28)
    raise_score, lower_score = np.clip(salient, 0, 1), np.clip(-salient, 0, 1)
    red = base + (1 - base) * raise_score
    green = base * (1 - np.maximum(raise_score, lower_score)) + 0.35 * lower_score
    blue = base + (1 - base) * lower_score
    rgb = (np.clip(np.stack([red * (1 - lower_score * 0.6), green, blue * (1 - raise_score * 0.9)], axis=-1), 0, 1)
           * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((size, size), Image.Resampling.NEAREST)


def last_convolution(model) -> int | None:
    """The position (0-based) of the model's last Conv2D layer; None when it has none."""
    from keras import layers as keras_layers

    found = [index for index, layer in enumerate(model.layers) if isinstance(layer, keras_layers.Conv2D)]
    return found[-1] if found else None


def grad_cam_grid(model, image: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM at the last convolution layer's own resolution (h, w), not yet scaled: ReLU(sum_k alpha_k A_k),
    where A_k are that layer's maps (after its activation) and alpha_k the mean over each map of the gradient
    of the class's logit. ExplanationError for a model without a convolution."""
    from keras import ops

    position = last_convolution(model)
    if position is None:
        raise ExplanationError("Grad-CAM needs a convolution layer, and this model has none.")
    x = model_input(image)[:1]
    for layer in model.layers[:position + 1]:
        x = layer(x, training=False)
    maps = np.asarray(ops.convert_to_numpy(x), dtype="float32")
    gradient = _gradient(lambda value: _logits(model, value, position + 1)[:, class_index], maps)
    weights = gradient[0].mean(axis=(0, 1))
    return np.maximum((maps[0] * weights).sum(axis=-1), 0.0)


def grad_cam(model, image: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM of the class (see grad_cam_grid) scaled up smoothly to 28x28, in [0, 1]: 1 where the class's
    evidence is strongest, all 0 when no region raises its score. Its detail is the last convolution
    layer's grid (3x3 for the 3-layer net)."""
    cam = grad_cam_grid(model, image, class_index)
    enlarged = np.asarray(Image.fromarray(cam.astype("float32")).resize((28, 28), Image.Resampling.BILINEAR),
                          dtype="float32")
    top = float(enlarged.max())
    return np.clip(enlarged / top, 0.0, 1.0) if top > 0 else np.zeros((28, 28), "float32")


def grad_cam_overlay(image: np.ndarray, cam: np.ndarray, size: int = 224) -> Image.Image:
    """The 28x28 input in grey under a heat map: dark where Grad-CAM finds nothing, through red to yellow
    where the class's evidence is strongest."""
    base = model_input(image)[0, :, :, 0] * 0.5
    heat = np.clip(np.asarray(cam, dtype="float32").reshape(28, 28), 0, 1)
    red = np.clip(heat * 2, 0, 1)
    green = np.clip(heat * 2 - 1, 0, 1)
    rgb = np.stack([base + (1 - base) * red, base * (1 - heat) + green * 0.9, base * (1 - heat)], axis=-1)
    rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((size, size), Image.Resampling.NEAREST)
