"""The Keras model: Keras' own summary, and layer names that no other thread can change."""

from __future__ import annotations

from helpers import FLATTEN

from mnist_lab.architecture.building import build_model, model_summary
from mnist_lab.architecture.presets import preset_layers


def test_model_summary_is_keras_own_table_with_every_column():
    summary = model_summary(build_model(preset_layers("seed-3layer"), "seed-3layer"))
    assert "Param #" in summary and "Output Shape" in summary
    assert "Total params: 30,706" in summary
    assert "Non-trainable params: 28" in summary
    assert "18,464" in summary  # the widest layer's count is not cut off


def test_model_layers_are_named_by_the_lab_not_by_a_process_wide_counter():
    import keras

    first = [layer.name for layer in build_model(preset_layers("seed-3layer")).layers]
    keras.backend.clear_session()  # what another thread may do while a model is being built
    build_model([FLATTEN])
    second = [layer.name for layer in build_model(preset_layers("seed-3layer")).layers]
    assert first == second and len(set(first)) == len(first)
    assert first[:3] == ["conv2d", "max_pooling2d", "conv2d_1"] and first[-1] == "dense_1"
