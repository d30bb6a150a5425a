"""Edits of a layer list: each returns a new list, size pairs read as typed, new layers go where they belong."""

from __future__ import annotations

import pytest

from mnist_lab.architecture import edits
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import default_layer

CONV = {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3]}
FLATTEN = {"type": "Flatten"}
DENSE = {"type": "Dense", "units": 32}


@pytest.mark.parametrize("text, value", [
    ("3", [3, 3]), ("3x5", [3, 5]), (" 3 X 5 ", [3, 5]), ("3,5", [3, 5]), ("3×5", [3, 5]), ("(3, 5)", [3, 5]),
    ("0", [0, 0]), ("-2", [-2, -2]), ("", None), ("  ", None), ("abc", "abc"), ("3x", "3x"), ("3x5x7", "3x5x7"),
])
def test_parse_pair(text, value):
    assert edits.parse_pair(text) == value


def test_pair_text():
    assert [edits.pair_text(value) for value in ([3, 5], (2, 2), 4, None, "odd")] == ["3x5", "2x2", "4x4", "", "odd"]
    assert edits.parse_pair(edits.pair_text([7, 1])) == [7, 1]


def test_edits_return_new_lists():
    layers = [CONV, FLATTEN]
    added = edits.insert_layer(layers, "Dense", 2)
    assert added == [CONV, FLATTEN, default_layer("Dense")] and layers == [CONV, FLATTEN]
    assert edits.move_layer(added, 2, -1) == [CONV, default_layer("Dense"), FLATTEN]
    assert edits.move_layer(added, 0, -1) == added and edits.move_layer(added, 2, 1) == added
    assert edits.remove_layer(added, 0) == [FLATTEN, default_layer("Dense")]
    changed = edits.set_setting(layers, 0, "filters", 16)
    assert changed[0]["filters"] == 16 and layers[0]["filters"] == 8
    with pytest.raises(ValueError, match="outside 0..2"):
        edits.insert_layer(layers, "Dense", 3)


@pytest.mark.parametrize("type_name, expected", [
    ("Conv2D", 2), ("MaxPooling2D", 2), ("BatchNormalization", 2), ("Flatten", 3), ("GlobalAveragePooling2D", 3),
    ("Dense", 5), ("Dropout", 5),
])
def test_suggested_position(type_name, expected):
    layers = [CONV, CONV, FLATTEN, DENSE, {"type": "Dropout", "rate": 0.5}]
    assert edits.suggested_position(layers, type_name) == expected


def test_suggested_position_without_flatten():
    assert edits.suggested_position([CONV], "Conv2D") == 1
    assert edits.suggested_position([CONV, DENSE], "Flatten") == 1
    assert edits.suggested_position([], "Dense") == 0


def test_suggestions_keep_a_preset_valid():
    for type_name in ("MaxPooling2D", "BatchNormalization", "Flatten", "Dropout", "Dense"):
        layers = preset_layers("seed-7layer")
        analyze(edits.insert_layer(layers, type_name, edits.suggested_position(layers, type_name)))
