"""Data augmentation: random shifts, small rotations, zoom and stroke-width changes, for training only.

The augmentation is a stack of Keras preprocessing layers placed in front of the model while it
trains (`with_augmentation`). The model that is saved, evaluated and used on the Draw page is the
inner one, so test images and drawings never go through it; and the random layers are identities
whenever `training=False` anyway.
"""

from __future__ import annotations

import keras
from keras import layers, ops

SETTINGS = {
    "shift": 0.1,  # fraction of the image height and width
    "rotation_degrees": 10,
    "zoom": 0.1,
    "stroke": "thinner or thicker, one in three each",
}


@keras.saving.register_keras_serializable(package="mnist_lab")
class RandomStrokeWidth(layers.Layer):
    """Makes each image's strokes a little thicker (dilation) or thinner (erosion), or leaves them.

    People draw with pens of every width; MNIST's strokes are fairly uniform.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=True):
        if not training:
            return inputs
        thicker = ops.max_pool(inputs, pool_size=2, strides=1, padding="same")
        thinner = -ops.max_pool(-inputs, pool_size=2, strides=1, padding="same")
        choice = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(choice < 1 / 3, thicker, ops.where(choice < 2 / 3, thinner, inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_augmenter(seed: int | None = None) -> keras.Sequential:
    """The random transformations, as one Keras model that is active only when training=True."""
    factor = SETTINGS["rotation_degrees"] / 360
    return keras.Sequential([
        layers.RandomTranslation(SETTINGS["shift"], SETTINGS["shift"], fill_mode="constant", seed=seed),
        layers.RandomRotation(factor, fill_mode="constant", seed=seed),
        layers.RandomZoom(SETTINGS["zoom"], fill_mode="constant", seed=seed),
        RandomStrokeWidth(seed=seed),
    ], name="augmentation")


def with_augmentation(model: keras.Model, seed: int | None = None) -> keras.Model:
    """A model to fit: the augmentation in front of `model`, sharing its weights.

    Fit the returned model, then save and evaluate `model` itself.
    """
    return keras.Sequential([keras.Input(shape=model.input_shape[1:]), build_augmenter(seed), model],
                            name=f"{model.name}_augmented")


def preview(images, seed: int = 0):
    """Augmented copies of float images (n, 28, 28, 1) in [0, 1], for a preview grid."""
    augmented = build_augmenter(seed)(ops.convert_to_tensor(images), training=True)
    return ops.convert_to_numpy(ops.clip(augmented, 0.0, 1.0))
