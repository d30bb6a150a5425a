"""Teaching notes: computed from the layers, they name the right layers and numbers, and their fixes do
what they say."""

from __future__ import annotations

import pytest

from mnist_lab.architecture import teaching
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze

CONV = {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3]}
FLATTEN = {"type": "Flatten"}


def notes_of(layers):
    return teaching.edit_notes(layers, analyze(layers))


def note_starting(notes, title):
    found = [note for note in notes if note.text.startswith(f"**{title}")]
    assert len(found) == 1, [note.text[:60] for note in notes]
    return found[0]


def has_note(notes, title):
    return any(note.text.startswith(f"**{title}") for note in notes)


def batchnorm_numbers(layers, axes):
    return tuple(n for n, layer in enumerate(layers, start=1)
                 if layer["type"] == "BatchNormalization" and layer["axis"] in axes)


@pytest.mark.parametrize("preset_id", list(PRESETS))
def test_preset_note_is_the_presets_own(preset_id):
    assert teaching.preset_note(preset_id) == PRESETS[preset_id].note


@pytest.mark.parametrize("preset_id", [preset_id for preset_id in PRESETS if PRESETS[preset_id].from_notebook])
def test_notebook_batchnorm_is_explained_with_its_counts(preset_id):
    layers = preset_layers(preset_id)
    report = analyze(layers)
    note = note_starting(notes_of(layers), "BatchNormalization over image rows")
    rows = batchnorm_numbers(layers, (1,))
    assert rows and note.layer_numbers == rows
    assert note.kind == "warning" and note.fix == teaching.FIX_BATCHNORM_AXIS
    for number in rows:
        layer = report.layers[number - 1]
        image_rows = layer.output_shape[0]
        assert layer.parameters == 4 * image_rows
        assert f"{layer.parameters} = 4 × {image_rows} rows (layer {number})" in note.text
    assert "channels-last" in note.text and "`axis=-1`" in note.text


@pytest.mark.parametrize("preset_id", list(PRESETS))
def test_corrected_batchnorm_normalises_channels(preset_id):
    layers = preset_layers(preset_id)
    fixed = teaching.corrected_batchnorm(layers)
    assert layers == preset_layers(preset_id)  # the original is left alone
    report = analyze(fixed)
    for number, (before, after) in enumerate(zip(layers, fixed), start=1):
        if before["type"] == "BatchNormalization":
            assert after == {**before, "axis": -1}
            channels = report.layers[number - 1].output_shape[-1]
            assert report.layers[number - 1].parameters == 4 * channels
        else:
            assert after == before
    assert not has_note(notes_of(fixed), "BatchNormalization over image")
    assert teaching.apply_fix(teaching.FIX_BATCHNORM_AXIS, layers) == fixed


def test_batchnorm_over_columns_and_on_vectors():
    layers = [CONV, {"type": "BatchNormalization", "axis": 2}, {"type": "BatchNormalization", "axis": 3},
              FLATTEN, {"type": "BatchNormalization", "axis": 1}]
    note = note_starting(notes_of(layers), "BatchNormalization over image columns")
    assert note.layer_numbers == (2,)  # axis 3 is the channels; axis 1 of a vector is its features
    assert "104 = 4 × 26 columns (layer 2)" in note.text and "per column" in note.text
    fixed = teaching.corrected_batchnorm(layers)
    assert [layer.get("axis") for layer in fixed] == [None, -1, 3, None, 1]


def test_corrected_batchnorm_works_on_a_broken_architecture():
    layers = [CONV, {"type": "BatchNormalization", "axis": 1}, {"type": "Dense", "units": 0}]
    assert teaching.corrected_batchnorm(layers)[1]["axis"] == -1


@pytest.mark.parametrize("preset_id", ["seed-5layer", "seed-7layer"])
def test_pooling_that_does_nothing_is_named_and_removable(preset_id):
    layers = preset_layers(preset_id)
    report = analyze(layers)
    noop = tuple(n for n, layer in enumerate(layers, start=1)
                 if layer["type"] == "MaxPooling2D" and layer["pool_size"] == [1, 1])
    note = note_starting(notes_of(layers), "Pooling that does nothing")
    assert noop and note.layer_numbers == noop and note.fix == teaching.FIX_NOOP_POOLING
    for number in noop:  # the claim: same shape in and out
        assert report.layers[number - 1].output_shape == report.layers[number - 2].output_shape
    lighter = teaching.apply_fix(teaching.FIX_NOOP_POOLING, layers)
    assert len(lighter) == len(layers) - len(noop)
    assert analyze(lighter).total_parameters == report.total_parameters
    assert analyze(lighter).multiply_adds == report.multiply_adds
    assert not has_note(notes_of(lighter), "Pooling that does nothing")


def test_one_by_one_pooling_with_a_stride_is_not_a_no_op():
    layers = [{"type": "MaxPooling2D", "pool_size": [1, 1], "strides": [2, 2]}, FLATTEN]
    assert not has_note(notes_of(layers), "Pooling that does nothing")
    assert teaching.without_noop_pooling(layers) == layers


@pytest.mark.parametrize("preset_id", list(PRESETS))
def test_where_the_parameters_and_the_work_sit(preset_id):
    layers = preset_layers(preset_id)
    report = analyze(layers)
    notes = notes_of(layers)
    heaviest = max(report.layers, key=lambda layer: layer.parameters)
    note = note_starting(notes, "Where the parameters sit")
    share = round(100 * heaviest.parameters / report.total_parameters)
    assert note.layer_numbers == (heaviest.number,)
    assert f"Layer {heaviest.number} ({heaviest.label}) holds {heaviest.parameters:,} of the " \
           f"{report.total_parameters:,} parameters ({share} %)" in note.text
    busiest = max(report.layers, key=lambda layer: layer.multiply_adds)
    work = note_starting(notes, "Where the work is")
    assert work.layer_numbers == (busiest.number,) and f"{busiest.multiply_adds:,}" in work.text


def test_dense_heavy_net_explains_dense_counts():
    layers = [FLATTEN, {"type": "Dense", "units": 300, "activation": "relu"}]
    note = note_starting(notes_of(layers), "Where the parameters sit")
    assert "Layer 2 (Dense 300 relu) holds 235,500" in note.text and "(inputs + 1) × units" in note.text


def test_nets_without_convolution():
    assert has_note(notes_of([FLATTEN]), "No hidden layer")
    assert "logistic regression" in note_starting(notes_of([FLATTEN]), "No hidden layer").text
    dense = notes_of([FLATTEN, {"type": "Dense", "units": 64, "activation": "relu"}])
    assert has_note(dense, "No convolution") and not has_note(dense, "No hidden layer")
    assert not has_note(notes_of(preset_layers("seed-3layer")), "No convolution")


def test_big_flatten_before_dense():
    layers = [CONV, FLATTEN, {"type": "Dense", "units": 128, "activation": "relu"}]
    note = note_starting(notes_of(layers), "A big Flatten")
    assert note.layer_numbers == (2, 3) and "5,408 numbers" in note.text and "692,352" in note.text
    assert not has_note(notes_of(preset_layers("seed-3layer")), "A big Flatten")


def test_linear_activation_and_heavy_dropout():
    layers = [{**CONV, "activation": "linear"}, FLATTEN, {"type": "Dropout", "rate": 0.8},
              {"type": "Dense", "units": 10, "activation": "linear"}]
    notes = notes_of(layers)
    assert note_starting(notes, "Linear activation").layer_numbers == (1, 4)
    assert note_starting(notes, "Heavy dropout").layer_numbers == (3,)
    assert not has_note(notes_of(preset_layers("seed-3layer")), "Heavy dropout")  # 0.5 is usual


def test_notes_accept_layers_in_short_form():
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "MaxPooling2D", "pool_size": 1},
              FLATTEN]
    assert note_starting(notes_of(layers), "Pooling that does nothing").layer_numbers == (2,)


def test_change_note_compares_with_the_start():
    source = analyze(preset_layers("seed-3layer"))
    edited_layers = preset_layers("seed-3layer")
    edited_layers[0]["filters"] = 128
    edited = analyze(edited_layers)
    note = teaching.change_note("seed-3layer", source, edited)
    assert note.text.startswith("**Compared with seed-3layer:**")
    assert f"{edited.total_parameters:,} parameters instead of 30,706" in note.text
    growth = edited.total_parameters / source.total_parameters - 1
    assert f"(+{growth:.0%})" in note.text
    bigger = analyze([{"type": "Conv2D", "filters": 512, "kernel_size": 3}, FLATTEN])
    assert "×" in teaching.change_note("x", source, bigger).text
    fixed = analyze(teaching.corrected_batchnorm(preset_layers("seed-3layer")))
    note = teaching.change_note("seed-3layer", source, fixed).text
    assert f"({fixed.total_parameters / source.total_parameters - 1:+.1%})" in note  # +136 of 30,706
    assert "instead of 2,667,776 (unchanged)" in note


def test_unknown_fix():
    with pytest.raises(ValueError, match="Unknown fix 'paint'"):
        teaching.apply_fix("paint", [FLATTEN])


@pytest.mark.parametrize("part, whole, text", [
    (692_352, 694_090, "99.7 %"), (694_090, 694_090, "100 %"), (0, 694_090, "0 %"), (3, 694_090, "under 0.1 %"),
    (694_089, 694_090, "over 99.9 %"), (1, 2, "50 %"), (995, 1000, "99.5 %"), (5, 1000, "0.5 %"), (1, 0, "0 %"),
])
def test_shares_say_100_or_0_percent_only_when_exact(part, whole, text):
    assert teaching.share_text(part, whole) == text


def test_where_the_parameters_sit_never_rounds_to_all_of_them():
    layers = [CONV, FLATTEN, {"type": "Dense", "units": 64}]
    report = analyze(layers)
    heaviest = max(report.layers, key=lambda layer: layer.parameters)
    assert heaviest.parameters != report.total_parameters
    note = note_starting(notes_of(layers), "Where the parameters sit")
    assert "(100 %)" not in note.text and f"({teaching.share_text(heaviest.parameters, report.total_parameters)})" \
        in note.text


def test_an_edited_presets_note_says_it_is_about_the_preset():
    assert teaching.preset_note("seed-3layer", edited=False) == PRESETS["seed-3layer"].note
    edited = teaching.preset_note("seed-3layer", edited=True)
    assert edited.startswith("**Edited: this note is about seed-3layer as the notebook has it, not about your edit")
    assert edited.endswith(PRESETS["seed-3layer"].note)


def test_change_note_shows_a_saved_name_as_text():
    report = analyze([FLATTEN])
    note = teaching.change_note("[x](http://y)", report, analyze([CONV, FLATTEN]))
    assert note.text.startswith("**Compared with \\[x\\]\\(http\u2060\\://y\\):**")
