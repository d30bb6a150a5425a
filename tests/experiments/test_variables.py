"""What an experiment can vary: values read from text, shown to a class, applied to the base."""

import pytest

from mnist_lab.architecture.sources import preset_architecture
from mnist_lab.experiments import VARIABLES, ExperimentError, parse_values, variable

SETTINGS = {"epochs": 1, "batch_size": 128}


@pytest.mark.parametrize("key, texts, values, shown", [
    ("batch_size", "32, 128,512", [32, 128, 512], "batch size 128"),
    ("learning_rate", ["0.001", "0.01"], [0.001, 0.01], "learning rate 0.01"),
    ("optimizer", "adam,SGD", ["adam", "sgd"], "SGD with momentum 0.9"),
    ("augment", "off,on", [False, True], "augmentation on"),
    ("train_size", "1000,5000", [1000, 5000], "5,000 training images"),
    ("batch_norm_axis", "1,-1", [1, -1], "BatchNormalization axis -1"),
    ("architecture", "seed-3layer,quick-cnn,saved:mine", ["preset:seed-3layer", "preset:quick-cnn", "saved:mine"],
     "quick-cnn"),
])
def test_values_are_read_from_text_and_shown_with_the_variables_name(key, texts, values, shown):
    assert parse_values(key, texts) == values
    assert variable(key).shown(values[1]) == shown


@pytest.mark.parametrize("key, texts, named", [
    ("batch_size", "32,zero", "'zero'"), ("batch_size", "32,0", "'0'"), ("learning_rate", "0.1,-1", "'-1'"),
    ("dropout", "0.2,1.0", "'1.0'"), ("optimizer", "adam,rmsprop", "'rmsprop'"), ("augment", "on,maybe", "'maybe'"),
    ("batch_norm_axis", "1,4", "'4'"), ("epochs", "1,1000", "'1000'"),
])
def test_a_value_that_is_not_one_is_refused_by_name(key, texts, named):
    with pytest.raises(ExperimentError, match=named):
        parse_values(key, texts)


@pytest.mark.parametrize("key", list(VARIABLES))
def test_every_variables_example_is_values_a_teacher_could_pose(key):
    """The Teacher form shows the example as the values field's placeholder: typing it must be accepted."""
    assert len(parse_values(key, VARIABLES[key].example)) >= 2


def test_two_to_six_distinct_values_and_only_known_variables():
    with pytest.raises(ExperimentError, match="2 to 6 different values"):
        parse_values("batch_size", "32,32")
    with pytest.raises(ExperimentError, match="2 to 6"):
        parse_values("batch_size", ",".join(str(2 ** power) for power in range(7)))
    with pytest.raises(ExperimentError, match="cannot vary; choose one of: batch_size"):
        variable("colour")


def test_settings_variables_set_the_setting_and_layer_variables_change_only_their_layers():
    base = preset_architecture("seed-3layer")
    architecture, settings = VARIABLES["batch_size"].apply(base, SETTINGS, 32)
    assert architecture is base and settings == {"epochs": 1, "batch_size": 32}
    varied, unchanged = VARIABLES["batch_norm_axis"].apply(base, SETTINGS, -1)
    axes = [layer["axis"] for layer in varied["layers"] if layer["type"] == "BatchNormalization"]
    assert axes and set(axes) == {-1} and unchanged == SETTINGS
    assert {layer["axis"] for layer in base["layers"] if layer["type"] == "BatchNormalization"} == {1}  # untouched
    wider, _ = VARIABLES["filters"].apply(base, SETTINGS, 64, layer=2)
    filters = [layer["filters"] for layer in wider["layers"] if layer["type"] == "Conv2D"]
    original = [layer["filters"] for layer in base["layers"] if layer["type"] == "Conv2D"]
    assert filters == [original[0], 64, *original[2:]]
    quick, _ = VARIABLES["architecture"].apply(base, SETTINGS, "preset:quick-cnn")
    assert quick == preset_architecture("quick-cnn")


def test_a_base_with_nothing_to_vary_is_refused():
    quick = preset_architecture("quick-cnn")
    with pytest.raises(ExperimentError, match="no Dropout layer"):
        VARIABLES["dropout"].check_base({"layers": [{"type": "Flatten"}]})
    with pytest.raises(ExperimentError, match="no BatchNormalization layer"):
        VARIABLES["batch_norm_axis"].check_base(quick)
    with pytest.raises(ExperimentError, match="a number from 1 to 2"):
        VARIABLES["filters"].check_base(quick, layer=3)
