"""The Architecture page's logic without Streamlit: where an edit starts, the session that holds it, what the Train
page receives."""

from __future__ import annotations

import json

import pytest

from mnist_lab.architecture import editor, edits
from mnist_lab.architecture.editor import EditorSession
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.saved import ArchitectureStore
from mnist_lab.architecture.validation import default_layer

CONV = {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3]}
FLATTEN = {"type": "Flatten"}


@pytest.fixture
def store(tmp_path):
    return ArchitectureStore(tmp_path / "saved")


@pytest.fixture
def session(store):
    return EditorSession({}, store)


def test_handoff_of_unchanged_and_edited(store):
    assert editor.handoff("preset:seed-3layer", preset_layers("seed-3layer"), store) == ("seed-3layer", None)
    short_form = preset_layers("seed-3layer")
    short_form[0]["kernel_size"] = 3
    assert editor.handoff("preset:seed-3layer", short_form, store) == ("seed-3layer", None)
    edited = preset_layers("seed-3layer")
    edited[0]["filters"] = 1
    assert editor.handoff("preset:seed-3layer", edited, store) == ("custom", edited)
    store.save("mine", [CONV, FLATTEN])
    assert editor.handoff("saved:mine", store.load("mine"), store) == ("mine", None)
    assert editor.handoff("blank", [FLATTEN], store) == ("custom", [FLATTEN])
    assert editor.handoff(None, [FLATTEN], store) == ("custom", [FLATTEN])
    assert editor.handoff("saved:gone", [FLATTEN], store) == ("custom", [FLATTEN])


def test_open_current(store):
    opened = editor.open_current("seed-5layer", None, None, store)
    assert opened.source == "preset:seed-5layer" and opened.layers == preset_layers("seed-5layer")
    store.save("mine", [CONV, FLATTEN])
    assert editor.open_current("mine", None, None, store).source == "saved:mine"
    edited = [CONV, CONV, FLATTEN]
    assert editor.open_current("custom", edited, "preset:seed-3layer", store) == \
        editor.Opened("preset:seed-3layer", edited)
    gone = editor.open_current("deleted one", None, "saved:deleted one", store)
    assert gone.source == "preset:seed-3layer" and "There is no saved architecture called 'deleted one'" in gone.message


def test_source_options_list_presets_saved_and_blank(store):
    store.save("zeta", [FLATTEN])
    options = editor.source_options(store)
    assert list(options) == [f"preset:{p}" for p in PRESETS] + ["saved:zeta", "blank"]
    assert options["saved:zeta"] == "zeta (saved)"
    assert editor.source_layers("blank", store) == [FLATTEN]
    assert editor.source_name("preset:seed-5layer") == "seed-5layer" and editor.source_name(None) == "custom"


def test_session_starts_at_the_first_preset_and_hands_edits_on(session):
    state = session.state
    assert session.open().source == "preset:seed-3layer"
    assert (state["architecture_name"], state["architecture_layers"]) == ("seed-3layer", None)
    generation = session.generation
    session.edit_setting(0, "filters", 32)
    assert state["architecture_name"] == "custom" and state["architecture_layers"][0]["filters"] == 32
    assert session.generation == generation  # a setting edit keeps the widgets
    session.edit_setting(0, "filters", 64)
    assert (state["architecture_name"], state["architecture_layers"]) == ("seed-3layer", None)
    session.add("Conv2D", 2)
    assert session.generation == generation + 1 and session.focus == 2
    assert session.layers()[2] == default_layer("Conv2D")
    session.move(2, -1)
    assert session.focus == 1 and session.layers()[1] == default_layer("Conv2D")
    session.remove(1)
    assert state["architecture_layers"] is None and session.focus is None
    session.start_from("preset:seed-7layer")
    assert state["architecture_name"] == "seed-7layer" and session.source == "preset:seed-7layer"


def test_session_keeps_invalid_edits_for_the_page_to_explain(session):
    session.edit_setting(0, "kernel_size", edits.parse_pair("abc"))
    layers = session.state["architecture_layers"]
    assert layers[0]["kernel_size"] == "abc"
    assert session.source_report() is not None  # the start is still there to compare with


def test_session_save_open_delete(session, store):
    session.edit_setting(0, "filters", 16)
    assert session.save("mine")
    assert store.list() == ["mine"]
    assert (session.state["architecture_name"], session.state["architecture_layers"]) == ("mine", None)
    assert session.source == "saved:mine" and session.layers()[0]["filters"] == 16
    assert session.take_messages() == []  # not at the top: next to the Save button
    assert session.take_messages("save") == [
        ("success", "Saved as 'mine'. The Train page now offers it beside the presets.")]
    assert session.take_messages("save") == []
    session.delete("mine")
    assert store.list() == []
    assert session.state["architecture_name"] == "custom" and session.layers()[0]["filters"] == 16
    assert session.source is None


def test_session_refuses_bad_saves_with_a_message(session):
    assert not session.save("seed-3layer")
    assert not session.save("a/b")
    session.edit_setting(0, "filters", 0)
    assert not session.save("broken")
    kinds, texts = zip(*session.take_messages("save"))
    assert kinds == ("error",) * 3
    assert "is the name of a preset" in texts[0] and "contains '/'" in texts[1] and "filters" in texts[2]
    session.delete("never saved")
    assert "Not deleted: There is no saved architecture called 'never saved'" in session.take_messages("saved")[0][1]


def test_session_import(session):
    assert session.import_text(to_json([CONV, FLATTEN], "shared")) == "shared"
    assert session.source is None and session.layers()[0]["filters"] == 8
    assert session.state["architecture_name"] == "custom"
    assert session.import_text("{broken") is None
    assert session.import_text('[{"type": "LSTM"}]') is None
    messages = session.take_messages("import")
    assert messages[0][0] == "success" and "Imported 'shared' (2 layers)" in messages[0][1]
    assert messages[1] == ("error", messages[1][1]) and "not valid JSON" in messages[1][1]
    assert "unknown layer type 'LSTM'" in messages[2][1]
    assert session.layers()[0]["filters"] == 8  # a refused import leaves the open one alone


def test_session_falls_back_when_the_saved_one_is_gone(store):
    state = {"architecture_name": "lost", "architecture_layers": None}
    session = EditorSession(state, store)
    opened = session.open()
    assert opened.source == "preset:seed-3layer" and state["architecture_name"] == "seed-3layer"
    assert "no saved architecture called 'lost'" in session.take_messages()[0][1]


def test_table_rows_and_labels():
    report = analyze(preset_layers("seed-3layer"))
    rows = editor.table_rows(report)
    assert [row["layer"] for row in rows][:2] == ["1 · Conv2D 64 3x3", "2 · MaxPooling2D 2x2"]
    assert rows[-1]["layer"] == "12 · Dense 10 softmax output" and rows[0]["output"] == "26×26×64"
    assert sum(row["parameters"] for row in rows) == report.total_parameters
    assert set(rows[0]) == {"layer", "output", "parameters", "multiply-adds"}  # the share is the bar of parameters
    assert editor.safe_label({"type": "Conv2D", "filters": 0}, 1) == "Conv2D"
    assert editor.safe_label({"type": "Conv2D", "filters": 5}, 1) == "Conv2D 5 3x3"
    assert editor.safe_label("junk", 1) == "?"


def test_keras_summary_matches_the_analysis():
    layers = preset_layers("seed-5layer")
    summary = editor.keras_summary(json.dumps(layers))
    report = analyze(layers)
    assert not summary.error
    assert summary.total_parameters == report.total_parameters
    assert summary.trainable_parameters == report.trainable_parameters
    assert f"Total params: {report.total_parameters:,}" in summary.text
    assert editor.keras_summary(to_json(layers, "named")).total_parameters == report.total_parameters


def test_keras_summary_never_raises():
    summary = editor.keras_summary('[{"type": "Dense", "units": 0}]')
    assert summary.text == "" and summary.error.startswith("Keras could not build this architecture:")


def test_saved_entries_list_sizes_and_damaged_files(store):
    store.save("good", [CONV, FLATTEN])
    store.root.joinpath("broken.json").write_text("{not json")
    broken, good = editor.saved_entries(store)
    assert good == editor.SavedEntry("good", 2, analyze([CONV, FLATTEN]).total_parameters)
    assert broken.name == "broken" and "not valid JSON" in broken.problem


def test_saving_as_x_json_saves_x_and_opens_it(session, store):
    session.edit_setting(0, "filters", 16)
    assert session.save("wide.json")
    assert store.list() == ["wide"] and [path.name for path in store.root.iterdir()] == ["wide.json"]
    assert (session.state["architecture_name"], session.source) == ("wide", "saved:wide")
    assert session.take_messages("save")[0][1].startswith("Saved as 'wide'.")
    assert editor.source_options(store)["saved:wide"] == "wide (saved)"
    session.start_from("preset:seed-3layer")
    session.start_from("saved:wide")
    assert session.layers()[0]["filters"] == 16


def test_preset_labels_name_the_preset_once(store):
    for key, label in editor.source_options(store).items():
        if key.startswith("preset:"):
            name = key.partition(":")[2]
            assert label.startswith(f"{name}: ") and label.count(name) == 1, label


@pytest.mark.parametrize("text", [
    '[{"type": "Flatten"}, {"type": "Dense", "units": 1%s}]' % ("0" * 400),
    '[{"type": "Flatten"}, {"type": "Dense", "units": 1%s}]' % ("0" * 5000),
    '{"name": "%s", "layers": [{"type": "Flatten"}]}' % ("x" * 1_000_000),
    '[{"type": "%s"}]' % ("x" * 1_000_000),
])
def test_imports_of_huge_values_give_a_short_message(session, text):
    name = session.import_text(text)
    messages = session.take_messages("import")
    assert len(messages) == 1 and len(messages[0][1]) < 300
    if name is not None:
        assert name == "x" * 60
