"""What the Architecture page shows and the state its widgets keep, without Streamlit: an EditorSession on a
plain dict stands in for st.session_state."""

from __future__ import annotations

import io

import pytest

from mnist_lab.architecture import keras_code
from mnist_lab.architecture.editor import BLANK, EditorSession, KerasSummary, SavedEntry
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.layers import LAYER_TYPES, Parameter
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze, analyze_partial
from mnist_lab.architecture.saved import ArchitectureStore
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.views import architecture as view


@pytest.fixture
def session():
    return EditorSession({}, ArchitectureStore())


def parameter(type_name: str, name: str) -> Parameter:
    return next(item for item in LAYER_TYPES[type_name].parameters if item.name == name)


def test_a_structural_edit_gives_every_layer_widget_a_new_key_and_a_setting_edit_does_not(session):
    session.open()
    before = session.widget_key(0, "filters")
    session.state[before] = 32
    session.edit_from_widget(before, 0, parameter("Conv2D", "filters"))
    assert session.widget_key(0, "filters") == before  # typing a value keeps the widget (and the cursor)
    session.add("Dense", 0)
    assert session.widget_key(0, "filters") != before  # the old widget's value must not reach the new layer 1


def test_a_pair_typed_in_its_widget_is_read_as_a_pair_and_nonsense_is_kept_for_the_analysis(session):
    session.open()
    kernel, key = parameter("Conv2D", "kernel_size"), session.widget_key(0, "kernel_size")
    session.state[key] = "5"
    session.edit_from_widget(key, 0, kernel)
    assert session.layers()[0]["kernel_size"] == [5, 5]
    session.state[key] = "big"
    session.edit_from_widget(key, 0, kernel)
    _, error = analyze_partial(session.layers())
    assert error.layer_number == 1 and "kernel_size" in str(error)


def test_a_new_layer_goes_where_its_type_belongs_until_the_learner_picks_a_place(session):
    layers = session.open().layers
    positions = session.add_positions(layers)
    assert positions == range(len(layers) + 1)
    flatten = [layer["type"] for layer in layers].index("Flatten")
    assert session.state["architecture_add_type"] == "Conv2D" == next(iter(LAYER_TYPES))
    assert session.state[session.add_position_key] == flatten  # a convolution goes before the Flatten
    session.state["architecture_add_type"] = "Dropout"
    session.suggest_position()
    assert session.state[session.add_position_key] == len(layers)  # a dropout, at the end
    session.state[session.add_position_key] = 1  # the learner's own choice stays
    session.add_positions(layers)
    assert session.state[session.add_position_key] == 1
    session.add_chosen()
    assert session.layers()[1]["type"] == "Dropout" and session.focus == 1


def test_a_position_past_the_end_after_layers_were_removed_is_suggested_again(session):
    session.open()
    session.start_from(BLANK)
    session.state[session.add_position_key] = 7
    assert session.add_positions(session.layers()) == range(2)
    assert session.state[session.add_position_key] == 0  # a Conv2D before the blank start's Flatten


def test_saving_clears_the_typed_name_only_when_it_saved(session):
    session.open()
    session.state["architecture_save_name"] = "  no/slashes  "
    session.save_typed()
    assert session.state["architecture_save_name"] == "  no/slashes  "
    assert session.take_messages("save")[0][0] == "error"
    session.state["architecture_save_name"] = "  mine  "
    session.save_typed()
    assert session.state["architecture_save_name"] == "" and session.source == "saved:mine"


def test_an_uploaded_file_wins_over_pasted_text_and_its_name_is_offered_for_saving(session):
    session.open()
    upload = io.BytesIO(to_json([{"type": "Flatten"}], "from file").encode())
    pasted = to_json(preset_layers("seed-5layer"), "pasted")
    session.state.update(architecture_import_file=upload, architecture_import_text=pasted)
    session.import_given()
    assert session.state["architecture_save_name"] == "from file"
    assert session.state["architecture_import_text"] == ""
    assert session.layers() == [{"type": "Flatten"}]


def test_a_refused_import_keeps_the_pasted_text_to_correct(session):
    session.open()
    session.state.update(architecture_import_file=None, architecture_import_text="{not json",
                         architecture_save_name="kept")
    session.import_given()
    assert session.state["architecture_import_text"] == "{not json"
    assert session.state["architecture_save_name"] == "kept"
    assert session.take_messages("import")[0][0] == "error"


def test_headings_give_each_layers_shape_and_count_and_mark_the_faulty_one():
    layers = preset_layers("seed-3layer")
    report = analyze(layers)
    assert view.layer_heading(layers[0], 1, report, None) == "**1** · Conv2D 64 3x3 → 26×26×64 · 640 parameters"
    assert view.output_heading(len(layers) + 1, report).endswith("→ 10 · 2,570 parameters")  # 256 × 10 + 10
    broken = [{"type": "Conv2D", "filters": 8, "kernel_size": [30, 30]}]
    report, error = analyze_partial(broken)
    heading = view.layer_heading(broken[0], 1, report, error)
    assert heading.startswith(":red[") and "cannot be built" in heading and "→" not in heading
    assert view.output_heading(2, report) == "**2** · Dense 10 softmax: the output, always there"


def test_a_layer_of_an_unknown_type_is_named_as_text():
    layer = {"type": "**Bold**"}
    assert view.layer_type(layer) is None and view.layer_type("not a layer") is None
    report, error = analyze_partial([layer])
    assert "\\*\\*Bold\\*\\*" in view.layer_heading(layer, 1, report, error)


def test_setting_fields_start_from_the_layers_values_or_from_a_plain_one():
    dense = parameter("Dense", "activation")
    field = view.setting_field({"type": "Dense", "activation": "relu"}, dense)
    assert field.kind == "choice" and field.choices[field.value] == "relu"
    assert view.setting_field({"type": "Dense", "activation": "swish?"}, dense).value == 0
    kernel = view.setting_field({"type": "Conv2D", "kernel_size": [3, 5]}, parameter("Conv2D", "kernel_size"))
    assert (kernel.kind, kernel.value) == ("pair", "3x5")
    assert view.setting_field({"type": "Dropout", "rate": "half"}, parameter("Dropout", "rate")).value == 0.0
    units = view.setting_field({"type": "Dense", "units": "many"}, parameter("Dense", "units"))
    assert (units.kind, units.value) == ("whole", 1)


def test_the_badge_and_the_way_back_follow_the_edit(session):
    session.open()
    assert view.status_badge(session).text == "Unchanged: seed-3layer" and view.back_label(session) is None
    session.edit_setting(0, "filters", 8)
    assert view.status_badge(session).text == "Edited, not saved"
    assert view.back_label(session) == "Back to seed-3layer"
    assert "Edited" in view.preset_note(session)
    session.start_from(BLANK)
    session.add("Dense", 1)
    assert (view.status_badge(session).text, view.back_label(session)) == ("Your own, not saved", "Start again")
    assert view.preset_note(session) is None


def test_metrics_show_the_change_since_the_start_and_none_when_unchanged():
    seed = analyze(preset_layers("seed-3layer"))
    wider = preset_layers("seed-3layer")
    wider[0]["filters"] = 65  # 9 more weights and 1 bias, and 9 × 32 more weights in layer 3
    report = analyze(wider)
    counts = {metric.label: metric for metric in view.metrics(report, seed)}
    assert counts["Parameters"].delta == f"{10 + 9 * 32:+,}"
    assert counts["Trainable"].delta is None
    assert all(metric.delta is None for metric in view.metrics(seed, seed))
    assert all(metric.delta is None for metric in view.metrics(seed, None))


def test_notes_begin_with_the_change_from_where_the_edit_started(session):
    session.open()
    session.edit_setting(0, "filters", 8)
    layers = session.layers()
    found = view.notes(session, layers, analyze(layers), session.source_report())
    assert found[0].text.startswith("**Compared with seed-3layer:**")


def test_the_keras_script_trains_as_the_preset_recommends():
    preset = next(preset for preset in PRESETS.values() if preset.training)
    recipe = view.keras_recipe(f"preset:{preset.id}")
    assert all(recipe[key] == value for key, value in preset.training.items())
    assert view.keras_recipe("saved:mine") == keras_code.DEFAULT_SETTINGS
    assert "for 12 epochs in batches of 128 with adam" in view.keras_code_caption(view.keras_recipe(None))


def test_a_saved_entry_says_its_size_or_its_problem_and_who_saved_it():
    assert view.saved_entry_caption(SavedEntry("a", 3, 1234, owner_name="Ada")) == (
        "3 layers + output · 1,234 parameters · by Ada")
    assert view.saved_entry_caption(SavedEntry("b", problem="Not JSON [line 1]")) == ":red[Not JSON \\[line 1\\]]"


def test_keras_counting_otherwise_is_a_warning():
    report = analyze(preset_layers("seed-3layer"))
    agreed = KerasSummary("", report.total_parameters, report.trainable_parameters)
    assert view.summary_check(agreed, report)[0] == "caption"
    kind, message = view.summary_check(KerasSummary("", 1, 1), report)
    assert kind == "warning" and "please report" in message


def test_a_build_error_names_the_layer_and_shows_the_learners_text_as_text():
    error = ArchitectureError("Layer 2 (Dense) units: not *many*.", 2)
    assert view.build_error(error) == ("**This architecture cannot be built (layer 2).** "
                                       "Layer 2 \\(Dense\\) units\\: not \\*many\\*.")
