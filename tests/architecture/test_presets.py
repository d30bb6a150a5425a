"""The presets: the notebook's three nets with its counts, and the two fast ones with their recipes."""

from __future__ import annotations

import json

import pytest

from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.evaluation.reference import REFERENCE_FILE


REFERENCE = json.loads(REFERENCE_FILE.read_text())["models"]


# "Param #" column of the notebook's model.summary() printouts (the output layer last), copied from the notebook.
NOTEBOOK_LAYER_PARAMETERS = {
    "seed-3layer": [640, 0, 18464, 44, 0, 4624, 12, 0, 0, 4352, 0, 2570],
    "seed-5layer": [1040, 0, 60060, 0, 0, 105070, 0, 64, 157590, 0, 24, 225100, 0, 0, 205312, 0, 5130],
    "seed-7layer": [6400, 0, 0, 73792, 80, 51232, 0, 0, 9248, 0, 0, 56, 2064, 52, 0, 1040, 48, 0, 0, 1160, 0, 0,
                    8448, 0, 2570],
}


NOTEBOOK_PRESETS = [preset_id for preset_id, preset in PRESETS.items() if preset.from_notebook]


def test_the_notebooks_three_nets_are_presets():
    assert NOTEBOOK_PRESETS == ["seed-3layer", "seed-5layer", "seed-7layer"]


@pytest.mark.parametrize("preset_id", NOTEBOOK_PRESETS)
def test_presets_reproduce_the_notebooks_counts(preset_id):
    report = analyze(preset_layers(preset_id))
    expected = REFERENCE[preset_id]["params"]
    assert report.total_parameters == expected["total"]
    assert report.trainable_parameters == expected["trainable"]
    assert report.non_trainable_parameters == expected["non_trainable"]
    assert [layer.parameters for layer in report.layers] == NOTEBOOK_LAYER_PARAMETERS[preset_id]
    assert sum(NOTEBOOK_LAYER_PARAMETERS[preset_id]) == expected["total"]


def test_unknown_preset():
    with pytest.raises(ArchitectureError, match="Unknown preset 'seed-9layer'. Presets: seed-3layer"):
        preset_layers("seed-9layer")


def test_preset_layers_are_fresh_copies():
    layers = preset_layers("seed-3layer")
    layers[0]["filters"] = 1
    assert PRESETS["seed-3layer"].layers[0]["filters"] == 64


def test_quick_cnn_shapes_counts_and_settings():
    preset = PRESETS["quick-cnn"]
    assert not preset.from_notebook and "not from the notebook" in preset.title.lower()
    report = analyze(preset_layers("quick-cnn"))
    assert [layer.output_shape for layer in report.layers] == [(14, 14, 32), (7, 7, 64), (3136,), (3136,), (128,), (10,)]
    assert [layer.parameters for layer in report.layers] == [
        (5 * 5 * 1 + 1) * 32, (3 * 3 * 32 + 1) * 64, 0, 0, (3136 + 1) * 128, (128 + 1) * 10]
    assert report.total_parameters == report.trainable_parameters == 422_154
    model = build_model(preset_layers("quick-cnn"), "quick-cnn")
    assert model.count_params() == report.total_parameters
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [layer.output_shape for layer in report.layers]
    seed_3layer = analyze(preset_layers("seed-3layer"))
    assert report.multiply_adds < seed_3layer.multiply_adds
    assert preset.training["batch_size"] == 256 and preset.training["schedule"] == "warmup-cosine"


def test_fast_cnn_builds_is_not_from_the_notebook_and_brings_its_recipe():
    from mnist_lab import training

    preset = PRESETS["fast-cnn"]
    assert not preset.from_notebook and "not from the notebook" in preset.title.lower()
    assert preset.note.startswith("Not from the notebook")
    report = analyze(preset_layers("fast-cnn"))
    assert [layer.output_shape for layer in report.layers] == [
        (14, 14, 24), (14, 14, 24), (7, 7, 32), (7, 7, 32), (1568,), (256,), (10,)]
    model = build_model(preset_layers("fast-cnn"), "fast-cnn")
    assert model.count_params() == report.total_parameters == 412_026
    assert report.multiply_adds < analyze(preset_layers("quick-cnn")).multiply_adds
    assert preset.training == {"epochs": 2, "batch_size": 256, "optimizer": "adam", "learning_rate": 0.01,
                               "schedule": "one-cycle"}
    assert "two epochs" in preset.title and "two passes" in preset.note  # the page's one sentence follows the recipe
    assert "one-cycle" in training.SCHEDULES
    recipe = training.plans.recipe("preset", "fast-cnn")  # what choosing it fills in on the Train page
    assert {setting: recipe[setting] for setting in preset.training} == preset.training
