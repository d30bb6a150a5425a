import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mnist_lab.architecture.building import build_model
from mnist_lab.images import augmentation


@pytest.fixture
def digits():
    """A vertical bar and a square ring: simple strokes whose changes are easy to see."""
    images = np.zeros((8, 28, 28, 1), "float32")
    images[::2, 6:22, 12:15] = 1.0
    images[1::2, 8:20, 8:20] = 1.0
    images[1::2, 11:17, 11:17] = 0.0
    return images


def test_augmentation_changes_training_inputs(digits):
    augmented = augmentation.preview(digits, seed=3)
    assert augmented.shape == digits.shape
    assert 0.0 <= augmented.min() and augmented.max() <= 1.0
    changed = [not np.allclose(a, d, atol=1e-3) for a, d in zip(augmented, digits)]
    assert all(changed)
    assert np.abs(augmented.sum(axis=(1, 2, 3)) - digits.sum(axis=(1, 2, 3))).max() > 1.0


def test_augmentation_is_the_identity_outside_training(digits):
    augmenter = augmentation.build_augmenter(seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmenter(digits, training=False)), digits)


def test_stroke_width_thickens_or_thins():
    layer = augmentation.RandomStrokeWidth(seed=0)
    images = np.zeros((64, 28, 28, 1), "float32")
    images[:, 10:18, 13:15] = 1.0
    ink = keras.ops.convert_to_numpy(layer(images, training=True)).sum(axis=(1, 2, 3))
    assert (ink > 16).any() and (ink < 16).any() and (ink == 16).any()


def test_saved_model_has_no_augmentation_so_test_and_drawings_never_see_it(tmp_path, digits):
    model = build_model([{"type": "Flatten"}])
    trainer = augmentation.with_augmentation(model, seed=1)
    trainer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    trainer.fit(digits, np.arange(8) % 10, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trainer(digits, training=False)),
                               keras.ops.convert_to_numpy(model(digits, training=False)), atol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert not any("augment" in layer.name or isinstance(layer, augmentation.RandomStrokeWidth)
                   for layer in loaded.layers)
    np.testing.assert_allclose(loaded.predict(digits, verbose=0), model.predict(digits, verbose=0), atol=1e-6)
