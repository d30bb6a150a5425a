"""A layer's settings: defaults filled in, and every bad value refused with a short message that names the
layer and the setting, whatever its size or type."""

from __future__ import annotations

import pytest
from helpers import FLATTEN, conv, pool, refused

from mnist_lab.architecture.json_format import from_json
from mnist_lab.architecture.layers import LAYER_TYPES
from mnist_lab.architecture.report import analyze, analyze_partial
from mnist_lab.architecture.validation import ArchitectureError, default_layer, normalize_layer


@pytest.mark.parametrize("layer, setting, value", [
    (conv(filters=0), "filters", "must be at least 1, not 0"),
    (conv(filters=-3), "filters", "must be at least 1, not -3"),
    ({"type": "Dense", "units": 0}, "units", "must be at least 1, not 0"),
    ({"type": "Dense", "units": -10}, "units", "must be at least 1, not -10"),
    (conv(kernel=0), "kernel_size", "must be at least 1, not 0"),
    (conv(strides=[1, 0]), "strides", "must be at least 1, not 0"),
    (conv(filters=2.5), "filters", "must be a whole number, not 2.5."),
    (conv(filters=True), "filters", "must be a whole number, not True."),
    (conv(kernel="abc"), "kernel_size", "must be a whole number or a pair of whole numbers, not 'abc'."),
    (conv(kernel=[3, 3, 3]), "kernel_size", "must be a whole number or a pair of whole numbers, not [3, 3, 3]."),
    (conv(kernel=[3, 1.5]), "kernel_size", "must be a whole number or a pair of whole numbers, not [3, 1.5]."),
    (pool(strides="x"), "strides", "not 'x'; leave it empty to use the pool size."),
    (conv(padding="full"), "padding", "'full' is not one of valid, same"),
    (conv(activation="swish2"), "activation", "is not one of relu"),
    ({"type": "BatchNormalization", "axis": True}, "axis", "is not one of -1, 1, 2, 3"),
    (conv(filters=5000), "filters", "must be at most 4096"),
])
def test_bad_settings_name_the_layer_and_the_setting(layer, setting, value):
    dense = layer["type"] == "Dense"
    error = refused([FLATTEN, layer] if dense else [layer, FLATTEN])
    number = 2 if dense else 1
    assert error.layer_number == number
    assert f"Layer {number} ({layer['type']}) {setting}:" in str(error)
    assert value in str(error)


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, float("nan"), "half"])
def test_dropout_rate_outside_zero_to_one(rate):
    error = refused([FLATTEN, {"type": "Dropout", "rate": rate}])
    assert error.layer_number == 2
    assert "Layer 2 (Dropout) rate:" in str(error)
    assert "at least 0 and below 1" in str(error) or "must be a number" in str(error)


def test_dropout_rate_zero_and_just_below_one_are_fine():
    analyze([FLATTEN, {"type": "Dropout", "rate": 0}, {"type": "Dropout", "rate": 0.99}])


@pytest.mark.parametrize("type_name", ["LSTM", "conv2d", None, ["Conv2D"], 3])
def test_unknown_layer_type(type_name):
    error = refused([{"type": type_name}, FLATTEN])
    assert error.layer_number == 1
    assert f"Layer 1: unknown layer type {type_name!r}" in str(error)
    assert ", ".join(LAYER_TYPES) in str(error)


def test_layer_that_is_not_an_object_and_unknown_settings():
    assert "Layer 1 must be an object with a 'type'" in str(refused(["Conv2D", FLATTEN]))
    error = refused([{"type": "Flatten", "units": 3}])
    assert "Layer 1 (Flatten) has unknown setting(s) units; its settings are: none." in str(error)
    error = refused([conv(kernel_sise=3), FLATTEN])
    assert "unknown setting(s) kernel_sise" in str(error) and "kernel_size" in str(error)


def test_normalize_fills_defaults_and_canonical_values():
    assert normalize_layer({"type": "Conv2D"}, 1) == default_layer("Conv2D")
    layer = normalize_layer({"type": "Conv2D", "filters": 16.0, "kernel_size": 5, "strides": 2}, 1)
    assert layer["filters"] == 16 and isinstance(layer["filters"], int)
    assert layer["kernel_size"] == [5, 5] and layer["strides"] == [2, 2]
    assert normalize_layer({"type": "BatchNormalization", "axis": 1.0}, 1)["axis"] == 1
    assert isinstance(normalize_layer({"type": "BatchNormalization", "axis": 1.0}, 1)["axis"], int)
    assert normalize_layer({"type": "MaxPooling2D"}, 1)["strides"] is None
    for type_name in LAYER_TYPES:
        assert normalize_layer(default_layer(type_name), 1) == default_layer(type_name)


HUGE = 10 ** 400  # math.isfinite(HUGE) raises OverflowError


@pytest.mark.parametrize("layers, message", [
    ([FLATTEN, {"type": "Dense", "units": HUGE}], "Layer 2 (Dense) units: must be at most 65536, not a 401-digit number."),
    ([{"type": "Dropout", "rate": HUGE}, FLATTEN], "rate: must be at least 0 and below 1, not a 401-digit number"),
    ([{"type": "Dropout", "rate": -HUGE}, FLATTEN], "not a 401-digit negative number"),
    ([{"type": "Conv2D", "kernel_size": [HUGE, 3]}, FLATTEN], "kernel_size: must be at most 28, not a 401-digit"),
    ([{"type": "Conv2D", "filters": 10 ** 5000}, FLATTEN], "filters: must be at most 4096, not a 5,001-digit number"),
    ([{"type": "BatchNormalization", "axis": HUGE}, FLATTEN], "axis: a 401-digit number is not one of"),
    ([{"type": "Conv2D", "strides": [[10 ** 5000], 1]}, FLATTEN], "not a list too large to show"),
    ([FLATTEN, {"type": "Dense", "units": 1e300}], "units: must be at most 65536, not a 301-digit number"),
])
def test_numbers_of_any_size_are_refused_with_a_short_message(layers, message):
    error = refused(layers)
    assert message in str(error) and len(str(error)) < 300
    assert isinstance(analyze_partial(layers)[1], ArchitectureError)


@pytest.mark.parametrize("layer", [
    {"type": "x" * 1_000_000},
    {"type": "Dropout", "rate": "x" * 1_000_000},
    {"type": "Flatten", "x" * 1_000_000: 1},
    {"type": "Conv2D", "kernel_size": ["x" * 1_000_000, 3]},
    "x" * 1_000_000,
])
def test_long_values_give_short_messages(layer):
    error = refused([layer, FLATTEN])
    assert len(str(error)) < 400 and "1,000,00" in str(error)  # cut, with the length it had


def test_many_unknown_settings_are_counted_not_listed():
    error = refused([{"type": "Flatten", **{f"extra{n}": n for n in range(100)}}])
    assert "and 95 more" in str(error) and len(str(error)) < 300


def test_non_text_keys_and_deep_nesting_are_refused():
    nested = []
    for _ in range(100_000):
        nested = [nested]
    assert "must be an object" in str(refused([nested]))
    assert "unknown setting(s) 1, a;" in str(refused([{"type": "Flatten", 1: 2, "a": 3}]))
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        from_json("[" * 100_000 + "]" * 100_000)
