"""Architectures: the presets reproduce the notebook, the analysis agrees with Keras, and every impossible
architecture is refused with a message that names the layer and says what to change."""

from __future__ import annotations

import json
import math

import pytest

from mnist_lab import architectures
from mnist_lab.architectures import (
    LAYER_TYPES, MAX_LAYERS, MAX_MULTIPLY_ADDS, MAX_PARAMETERS, PRESETS, ArchitectureError, analyze,
    analyze_partial, build_model, default_layer, from_json, layer_label, normalize_layer, preset_layers, to_json,
)
from mnist_lab.evaluation import reference

REFERENCE = json.loads(reference.REFERENCE_FILE.read_text())["models"]

# "Param #" column of the notebook's model.summary() printouts (the output layer last), copied from the notebook.
NOTEBOOK_LAYER_PARAMETERS = {
    "seed-3layer": [640, 0, 18464, 44, 0, 4624, 12, 0, 0, 4352, 0, 2570],
    "seed-5layer": [1040, 0, 60060, 0, 0, 105070, 0, 64, 157590, 0, 24, 225100, 0, 0, 205312, 0, 5130],
    "seed-7layer": [6400, 0, 0, 73792, 80, 51232, 0, 0, 9248, 0, 0, 56, 2064, 52, 0, 1040, 48, 0, 0, 1160, 0, 0,
                    8448, 0, 2570],
}

# Architectures that exercise every layer type and setting: the analysis must match Keras on each.
VARIED = {
    "same padding and strides": [
        {"type": "Conv2D", "filters": 8, "kernel_size": [5, 3], "strides": [2, 1], "padding": "same"},
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 3, "padding": "valid", "activation": "tanh"},
        {"type": "Flatten"},
    ],
    "pooling with strides": [
        {"type": "AveragePooling2D", "pool_size": [3, 2], "strides": [2, 3]},
        {"type": "MaxPooling2D", "pool_size": 2, "strides": 1},
        {"type": "BatchNormalization", "axis": 2},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 7, "activation": "gelu"},
    ],
    "batchnorm on channels and on a vector": [
        {"type": "Conv2D", "filters": 6, "kernel_size": 4},
        {"type": "BatchNormalization", "axis": -1},
        {"type": "BatchNormalization", "axis": 3},
        {"type": "Flatten"},
        {"type": "BatchNormalization", "axis": 1},
        {"type": "Dropout", "rate": 0.0},
        {"type": "Dense", "units": 12, "activation": "linear"},
    ],
    "dense only": [{"type": "Flatten"}],
}


def keras_layer_parameters(model) -> list[int]:
    return [layer.count_params() for layer in model.layers]


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


@pytest.mark.parametrize("layers", list(PRESETS) + list(VARIED))
def test_analysis_agrees_with_keras(layers):
    layers = preset_layers(layers) if layers in PRESETS else VARIED[layers]
    report = analyze(layers)
    model = build_model(layers, "checked")
    assert model.count_params() == report.total_parameters
    assert sum(math.prod(weight.shape) for weight in model.trainable_weights) == report.trainable_parameters
    assert keras_layer_parameters(model) == [layer.parameters for layer in report.layers]
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [layer.output_shape for layer in report.layers]


def test_model_summary_is_keras_own_table_with_every_column():
    summary = architectures.model_summary(build_model(preset_layers("seed-3layer"), "seed-3layer"))
    assert "Param #" in summary and "Output Shape" in summary
    assert "Total params: 30,706" in summary
    assert "Non-trainable params: 28" in summary
    assert "18,464" in summary  # the widest layer's count is not cut off


def test_multiply_adds_count_every_weight_use():
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"},
              {"type": "Dense", "units": 5}]
    report = analyze(layers)
    conv, _, dense, output = report.layers
    assert conv.multiply_adds == 26 * 26 * 3 * 3 * 1 * 4
    assert dense.multiply_adds == 26 * 26 * 4 * 5
    assert output.multiply_adds == 5 * 10
    assert report.multiply_adds == conv.multiply_adds + dense.multiply_adds + output.multiply_adds


def refused(layers) -> ArchitectureError:
    with pytest.raises(ArchitectureError) as caught:
        analyze(layers)
    return caught.value


def conv(filters=8, kernel=3, **settings):
    return {"type": "Conv2D", "filters": filters, "kernel_size": kernel, **settings}


def pool(size=2, **settings):
    return {"type": "MaxPooling2D", "pool_size": size, **settings}


FLATTEN = {"type": "Flatten"}


def test_kernel_larger_than_its_input():
    error = refused([pool(14), conv(kernel=3), FLATTEN])
    assert error.layer_number == 2
    assert "Layer 2 (Conv2D 8 3x3) gets a 2x2 input" in str(error)
    assert "smaller kernel" in str(error) and "'same' padding" in str(error)


def test_pooling_that_would_shrink_a_side_to_nothing():
    error = refused([pool(), pool(), pool(), pool(), pool(), FLATTEN])  # 28 -> 14 -> 7 -> 3 -> 1 -> ?
    assert error.layer_number == 5
    assert "gets a 1x1 input, smaller than its window" in str(error)
    assert "smaller pool size" in str(error)


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


def test_dense_without_flatten_before_it():
    error = refused([conv(), {"type": "Dense", "units": 32}])
    assert error.layer_number == 2
    assert "gets a 26x26x8 image: add a Flatten" in str(error)


def test_image_layer_after_flatten():
    error = refused([FLATTEN, conv()])
    assert error.layer_number == 2
    assert "needs an image, but gets a flat vector of 784: move it before the Flatten" in str(error)


def test_no_flatten_at_all_blames_the_output_layer():
    error = refused([conv()])
    assert error.layer_number == 2
    assert "output layer (Dense 10 softmax) needs a flat input" in str(error)
    assert "add Flatten or GlobalAveragePooling2D at the end" in str(error)


def test_batchnorm_axis_that_does_not_exist_after_flatten():
    error = refused([FLATTEN, {"type": "BatchNormalization", "axis": 2}])
    assert error.layer_number == 2
    assert "axis 2 does not exist after the Flatten" in str(error) and "use axis -1" in str(error)


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


def test_too_many_parameters_states_the_limit_and_the_heaviest_layer():
    error = refused([FLATTEN, {"type": "Dense", "units": 65536}])
    assert f"is over the limit of {MAX_PARAMETERS:,}" in str(error)
    assert error.layer_number == 2 and "Layer 2 (Dense 65536 relu) alone has 51,445,760" in str(error)


def test_too_much_work_per_image_states_the_limit():
    error = refused([conv(512), conv(512), conv(512), {"type": "GlobalAveragePooling2D"}])
    assert f"over the limit of {MAX_MULTIPLY_ADDS:,}" in str(error)
    assert error.layer_number == 2  # the first 26x26 -> 24x24 convolution of 512 x 512 channels


def test_too_many_layers_states_the_limit():
    error = refused([{"type": "Dropout", "rate": 0.1}] * (MAX_LAYERS - 1) + [FLATTEN])
    assert f"{MAX_LAYERS + 1} layers (with the output layer) is over the limit of {MAX_LAYERS}" in str(error)
    analyze([{"type": "Dropout", "rate": 0.1}] * (MAX_LAYERS - 2) + [FLATTEN])  # exactly at the limit


def test_analyze_partial_reports_the_layers_before_the_error():
    report, error = analyze_partial([conv(), pool(), conv(filters=0), FLATTEN])
    assert [layer.number for layer in report.layers] == [1, 2]
    assert report.layers[-1].output_shape == (13, 13, 8)
    assert error.layer_number == 3
    report, error = analyze_partial(preset_layers("seed-3layer"))
    assert error is None and report.total_parameters == analyze(preset_layers("seed-3layer")).total_parameters


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


def test_layer_labels():
    labels = [layer_label(normalize_layer(layer, 1)) for layer in [
        conv(64, 5), conv(8, [3, 1], strides=2, padding="same"), pool(2), {"type": "AveragePooling2D", "pool_size": 3},
        {"type": "BatchNormalization", "axis": 1}, {"type": "Dropout", "rate": 0.25}, FLATTEN,
        {"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 256, "activation": "relu"}]]
    assert labels == ["Conv2D 64 5x5", "Conv2D 8 3x1, stride 2, same", "MaxPooling2D 2x2", "AveragePooling2D 3x3",
                      "BatchNormalization axis=1", "Dropout 0.25", "Flatten", "GlobalAveragePooling2D",
                      "Dense 256 relu"]


def test_choice_labels_come_from_the_registry():
    axis = next(p for p in LAYER_TYPES["BatchNormalization"].parameters if p.name == "axis")
    assert axis.choice_label(1) == "1: image rows" and axis.choice_label(-1) == "-1: channels"
    padding = next(p for p in LAYER_TYPES["Conv2D"].parameters if p.name == "padding")
    assert padding.choice_label("same") == "same"


@pytest.mark.parametrize("preset_id", list(PRESETS))
def test_json_round_trip(preset_id):
    layers = preset_layers(preset_id)
    text = to_json(layers, preset_id)
    assert json.loads(text)["format"] == architectures.ARCHITECTURE_FORMAT
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


def test_huge_numbers_in_json_are_refused_by_every_entry_point():
    digits = "1" + "0" * 5000  # past Python's 4,300-digit limit for reading ints
    for number in ("1" + "0" * 400, digits, "-" + digits):
        text = f'[{{"type": "Flatten"}}, {{"type": "Dense", "units": {number}}}]'
        with pytest.raises(ArchitectureError, match="Layer 2 \\(Dense\\) units: must be"):
            from_json(text)


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


@pytest.mark.parametrize("name, expected", [
    ("mine", "mine"), ("  spaced  ", "spaced"), ("x" * 100, "x" * 60), (42, "imported"), ("", "imported"),
    (None, "imported"), ("two\nlines", "two lines"),
])
def test_imported_name_is_short_single_line_text(name, expected):
    assert from_json(json.dumps({"name": name, "layers": [FLATTEN]}))[0] == expected


def test_model_layers_are_named_by_the_lab_not_by_a_process_wide_counter():
    import keras

    first = [layer.name for layer in build_model(preset_layers("seed-3layer")).layers]
    keras.backend.clear_session()  # what another thread may do while a model is being built
    build_model([FLATTEN])
    second = [layer.name for layer in build_model(preset_layers("seed-3layer")).layers]
    assert first == second and len(set(first)) == len(first)
    assert first[:3] == ["conv2d", "max_pooling2d", "conv2d_1"] and first[-1] == "dense_1"
