"""Export and import as JSON: a round trip keeps the layers, and any text imported gets a message, not a
traceback."""

from __future__ import annotations

import json

import pytest
from helpers import FLATTEN

from mnist_lab.architecture.json_format import ARCHITECTURE_FORMAT, from_json, to_json
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import ArchitectureError, default_layer, normalize_layer


@pytest.mark.parametrize("preset_id", list(PRESETS))
def test_json_round_trip(preset_id):
    layers = preset_layers(preset_id)
    text = to_json(layers, preset_id)
    assert json.loads(text)["format"] == ARCHITECTURE_FORMAT
    name, loaded = from_json(text)
    assert name == preset_id
    assert loaded == [normalize_layer(layer, n) for n, layer in enumerate(layers, start=1)]
    assert analyze(loaded).total_parameters == analyze(layers).total_parameters
    assert from_json(text.encode()) == (name, loaded)


def test_json_bare_list_is_accepted_and_normalised():
    name, layers = from_json('[{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"}]')
    assert name == "imported"
    assert layers[0] == {**default_layer("Conv2D"), "filters": 4, "kernel_size": [3, 3]}


@pytest.mark.parametrize("text, message", [
    ("{not json", "This is not valid JSON"),
    ("", "This is not valid JSON"),
    (b"\xff\xfe\x00", "This is not valid JSON"),
    ("[" * 100_000, "This is not valid JSON"),
    ('{"name": "x"}', "must be a list of layers or an object with a 'layers' list"),
    ('"Conv2D"', "must be a list of layers"),
    ('[{"type": "Dense", "units": Infinity}, {"type": "Flatten"}]', "Layer 1 (Dense) units: must be a whole number"),
    ('[{"type": "Conv2D", "filters": NaN}, {"type": "Flatten"}]', "Layer 1 (Conv2D) filters: must be a whole number"),
    ('[{"type": "Dropout", "rate": Infinity}, {"type": "Flatten"}]', "Layer 1 (Dropout) rate: must be a number"),
    ('[{"type": "Transformer"}]', "Layer 1: unknown layer type 'Transformer'"),
    ('[{"type": "Conv2D"}]', "output layer (Dense 10 softmax) needs a flat input"),
])
def test_malformed_json_gets_a_message(text, message):
    with pytest.raises(ArchitectureError) as caught:
        from_json(text)
    assert message in str(caught.value)


def test_huge_numbers_in_json_are_refused_by_every_entry_point():
    digits = "1" + "0" * 5000  # past Python's 4,300-digit limit for reading ints
    for number in ("1" + "0" * 400, digits, "-" + digits):
        text = f'[{{"type": "Flatten"}}, {{"type": "Dense", "units": {number}}}]'
        with pytest.raises(ArchitectureError, match="Layer 2 \\(Dense\\) units: must be"):
            from_json(text)


@pytest.mark.parametrize("name, expected", [
    ("mine", "mine"), ("  spaced  ", "spaced"), ("x" * 100, "x" * 60), (42, "imported"), ("", "imported"),
    (None, "imported"), ("two\nlines", "two lines"),
])
def test_imported_name_is_short_single_line_text(name, expected):
    assert from_json(json.dumps({"name": name, "layers": [FLATTEN]}))[0] == expected
