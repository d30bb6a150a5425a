"""Architecture page: headless (AppTest) through every kind of edit, bad input, save/open/delete and import;
and in Chromium: the summary and counts appear, an edit updates the table."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from helpers import open_app_page, open_page, page_texts, wait_idle
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import MAX_PARAMETERS, analyze
from mnist_lab.architecture.saved import ArchitectureStore


def open_architecture(**session) -> AppTest:
    return open_app_page("pages/architecture.py", **session)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def shown(markdown: str) -> str:
    """Markdown as the learner reads it, for the escapes the page adds to what learners typed: "\\(" reads "(",
    and the invisible word joiner that keeps an address from becoming a link is not seen."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def texts(at) -> str:
    return shown(page_texts(at))


def errors(at) -> list[str]:
    return [shown(error.value) for error in at.error]


def successes(at) -> list[str]:
    return [shown(success.value) for success in at.success]


def metrics(at) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def setting(at, index: int, name: str):
    """The widget of one layer's setting (keys carry the editor's generation)."""
    key = f"architecture_{at.session_state['architecture_generation']}_{index}_{name}"
    for kind in (at.number_input, at.text_input, at.selectbox):
        try:
            return kind(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def layer_button(at, index: int, name: str):
    return at.button(key=f"architecture_{at.session_state['architecture_generation']}_{index}_{name}")


def summary_text(at) -> str:
    return "\n".join(code.value for code in at.code)


def edited_layers(at) -> list | None:
    return at.session_state["architecture_layers"]


def test_opens_the_notebook_net_with_counts_table_notes_and_keras_summary():
    at = open_architecture()
    report = analyze(preset_layers("seed-3layer"))
    assert at.title[0].value == "Architecture"
    assert metrics(at) == {"Parameters": "30,706", "Multiply-adds / image": f"{report.multiply_adds / 1e6:,.2f} M",
                           "Trainable": "30,678", "Non-trainable": "28"}
    table = at.dataframe[0].value
    assert list(table["parameters"]) == [layer.parameters for layer in report.layers]
    assert list(table["output"])[:3] == ["26×26×64", "13×13×64", "11×11×32"]
    summary = summary_text(at)
    assert "Total params: 30,706" in summary and "Param #" in summary
    assert "Keras counts 30,706 parameters too" in texts(at)
    assert "The notebook's smallest net" in texts(at)
    assert "**BatchNormalization over image rows.** Layers 4 and 7" in texts(at)
    assert at.button(key="architecture_fix_0").label.startswith("Switch BatchNormalization to axis=-1")
    assert at.session_state["architecture_name"] == "seed-3layer" and edited_layers(at) is None


@pytest.mark.parametrize("preset_id", ["seed-5layer", "seed-7layer"])
def test_start_from_another_preset(preset_id):
    at = open_architecture()
    at.selectbox(key="architecture_start").set_value(f"preset:{preset_id}")
    run(at)
    total = analyze(preset_layers(preset_id)).total_parameters
    assert metrics(at)["Parameters"] == f"{total:,}"
    assert f"Total params: {total:,}" in summary_text(at)
    assert at.session_state["architecture_name"] == preset_id and edited_layers(at) is None
    assert "**Pooling that does nothing.**" in texts(at)
    assert len(at.dataframe[0].value) == len(preset_layers(preset_id)) + 1


def test_editing_a_setting_updates_everything_and_hands_it_to_train():
    at = open_architecture()
    setting(at, 0, "filters").set_value(32)
    run(at)
    layers = preset_layers("seed-3layer")
    layers[0]["filters"] = 32
    report = analyze(layers)
    assert metrics(at)["Parameters"] == f"{report.total_parameters:,}"
    assert at.dataframe[0].value["parameters"].iloc[0] == report.layers[0].parameters
    assert f"Total params: {report.total_parameters:,}" in summary_text(at)
    assert at.session_state["architecture_name"] == "custom" and edited_layers(at)[0]["filters"] == 32
    assert "**Compared with seed-3layer:**" in texts(at)
    assert at.button(key="architecture_reset").label == "Back to seed-3layer"
    at.button(key="architecture_reset").click()
    run(at)
    assert at.session_state["architecture_name"] == "seed-3layer" and edited_layers(at) is None


def test_an_invalid_edit_shows_its_message_and_builds_nothing():
    at = open_architecture()
    setting(at, 2, "filters").set_value(0)
    run(at)
    assert any("Layer 3 (Conv2D) filters: must be at least 1, not 0." in error for error in errors(at))
    assert any(error.startswith("**This architecture cannot be built (layer 3).**") for error in errors(at))
    assert not at.metric and "Total params" not in summary_text(at)
    assert list(at.dataframe[0].value["layer"]) == ["1 · Conv2D 64 3x3", "2 · MaxPooling2D 2x2"]
    assert at.button(key="architecture_save").disabled
    assert edited_layers(at)[2]["filters"] == 0  # kept, so the learner can fix it
    setting(at, 2, "filters").set_value(8)
    run(at)
    assert not errors(at) and "Total params" in summary_text(at)


@pytest.mark.parametrize("index, name, value, message", [
    (0, "kernel_size", "abc", "Layer 1 (Conv2D) kernel_size: must be a whole number or a pair of whole numbers, "
                              "not 'abc'."),
    (0, "kernel_size", "29", "Layer 1 (Conv2D) kernel_size: must be at most 28, not 29."),
    (2, "kernel_size", "14", "Layer 3 (Conv2D 32 14x14) gets a 13x13 input: use a smaller kernel"),
    (1, "pool_size", "0x2", "Layer 2 (MaxPooling2D) pool_size: must be at least 1, not 0."),
    (7, "pool_size", "4", "Layer 8 (MaxPooling2D 4x4) gets a 3x3 input, smaller than its window"),
    (10, "rate", 1.0, "Layer 11 (Dropout) rate: must be at least 0 and below 1, not 1."),
    (10, "rate", -0.25, "Layer 11 (Dropout) rate: must be at least 0 and below 1, not -0.25."),
    (9, "units", -4, "Layer 10 (Dense) units: must be at least 1, not -4."),
    (9, "units", 70000, "Layer 10 (Dense) units: must be at most 65536, not 70000."),
])
def test_bad_settings_get_a_message_naming_the_layer(index, name, value, message):
    at = open_architecture()
    setting(at, index, name).set_value(value)
    run(at)
    assert any(message in error for error in errors(at)), errors(at)


def test_pair_settings_accept_short_forms():
    at = open_architecture()
    setting(at, 0, "kernel_size").set_value("5x3")
    run(at)
    assert edited_layers(at)[0]["kernel_size"] == [5, 3]
    assert at.dataframe[0].value["layer"].iloc[0] == "1 · Conv2D 64 5x3"
    assert at.dataframe[0].value["output"].iloc[0] == "24×26×64"
    setting(at, 1, "strides").set_value("1")
    run(at)
    assert edited_layers(at)[1]["strides"] == [1, 1] and not errors(at)


def test_batchnorm_fix_switches_to_channels():
    at = open_architecture()
    at.button(key="architecture_fix_0").click()
    run(at)
    layers = edited_layers(at)
    assert [layer["axis"] for layer in layers if layer["type"] == "BatchNormalization"] == [-1, -1]
    assert metrics(at)["Parameters"] == f"{analyze(layers).total_parameters:,}"
    assert "BatchNormalization over image rows" not in texts(at)
    assert setting(at, 3, "axis").value == -1


def test_add_move_and_remove_layers():
    at = open_architecture()
    at.selectbox(key="architecture_add_type").set_value("Dense")
    run(at)
    position = at.selectbox(key=f"architecture_add_position_{at.session_state['architecture_generation']}")
    assert position.value == 11  # after the last layer
    at.button(key="architecture_add").click()
    run(at)
    assert [layer["type"] for layer in edited_layers(at)][-2:] == ["Dropout", "Dense"]
    assert not errors(at)
    layer_button(at, 11, "up").click()
    run(at)
    assert [layer["type"] for layer in edited_layers(at)][-2:] == ["Dense", "Dropout"]
    layer_button(at, 10, "remove").click()
    run(at)
    assert at.session_state["architecture_name"] == "seed-3layer" and edited_layers(at) is None


def test_moving_a_dense_above_the_flatten_is_explained():
    at = open_architecture()
    layer_button(at, 9, "up").click()  # Dense 256 above the Flatten
    run(at)
    assert any("Layer 9 (Dense 256 relu) gets a 1x1x16 image: add a Flatten" in error for error in errors(at))


def test_blank_start_and_absurd_sizes():
    at = open_architecture()
    at.selectbox(key="architecture_start").set_value("blank")
    run(at)
    assert edited_layers(at) == [{"type": "Flatten"}] and metrics(at)["Parameters"] == "7,850"
    assert "**No hidden layer.**" in texts(at)
    at.selectbox(key="architecture_add_type").set_value("Dense")
    run(at)
    at.button(key="architecture_add").click()
    run(at)
    setting(at, 1, "units").set_value(65536)
    run(at)
    assert any(f"is over the limit of {MAX_PARAMETERS:,}" in error and "Layer 2 (Dense 65536 relu)" in error
               for error in errors(at))


def test_save_open_and_delete():
    store = ArchitectureStore()
    at = open_architecture()
    setting(at, 0, "filters").set_value(16)
    run(at)
    at.text_input(key="architecture_save_name").set_value("small first layer")
    at.button(key="architecture_save").click()
    run(at)
    assert store.list() == ["small first layer"]
    assert store.load("small first layer")[0]["filters"] == 16
    assert any("Saved as 'small first layer'" in success for success in successes(at))
    assert at.session_state["architecture_name"] == "small first layer" and edited_layers(at) is None
    assert at.text_input(key="architecture_save_name").value == ""

    at.selectbox(key="architecture_start").set_value("preset:seed-5layer")
    run(at)
    assert at.session_state["architecture_name"] == "seed-5layer"
    at.button(key="architecture_open_small first layer").click()
    run(at)
    assert at.session_state["architecture_name"] == "small first layer"
    assert setting(at, 0, "filters").value == 16

    at.button(key="architecture_delete_small first layer").click()
    run(at)
    assert store.list() == []
    assert any("Deleted 'small first layer'" in success for success in successes(at))
    assert at.session_state["architecture_name"] == "custom" and edited_layers(at)[0]["filters"] == 16


def test_saved_architecture_survives_a_new_session():
    ArchitectureStore().save("from before", preset_layers("seed-5layer"))
    at = open_architecture()
    assert "from before (saved)" in at.selectbox(key="architecture_start").options
    at.selectbox(key="architecture_start").set_value("saved:from before")
    run(at)
    assert at.session_state["architecture_name"] == "from before" and edited_layers(at) is None
    assert metrics(at)["Parameters"] == "759,390"


def test_a_learners_saved_net_records_them_and_another_learner_cannot_delete_or_replace_it():
    store = ArchitectureStore()
    ada, bob = open_architecture(), open_architecture()
    ada.text_input(key="architecture_save_name").set_value("adas net")
    ada.button(key="architecture_save").click()
    run(ada)
    assert store.record("adas net") == {"owner": ada.session_state["learner_id"],
                                        "owner_name": ada.session_state["learner_name"]}
    run(bob)
    assert f"by {ada.session_state['learner_name']}" in " ".join(caption.value for caption in bob.caption)
    assert not [button for button in bob.button if button.key == "architecture_delete_adas net"]
    setting(bob, 0, "filters").set_value(8)
    run(bob)
    bob.text_input(key="architecture_save_name").set_value("adas net")
    bob.button(key="architecture_save").click()
    run(bob)
    assert any("belongs to " + ada.session_state["learner_name"] in error for error in errors(bob))
    assert store.load("adas net") == preset_layers(next(iter(PRESETS)))  # Ada's net, unchanged
    run(ada)
    ada.button(key="architecture_delete_adas net").click()
    run(ada)
    assert store.list() == []


def test_a_damaged_saved_file_is_listed_with_its_problem(isolated_storage):
    ArchitectureStore().save("fine", preset_layers("seed-3layer"))
    (isolated_storage / "architectures" / "broken.json").write_text('{"layers": [{"type": "Conv2D", "filters": -1}]}')
    at = open_architecture()
    assert any("The saved architecture 'broken'" in shown(caption.value)
               and "filters: must be at least 1" in shown(caption.value) for caption in at.caption)
    assert at.button(key="architecture_open_broken").disabled
    assert not at.button(key="architecture_open_fine").disabled
    at.selectbox(key="architecture_start").set_value("saved:broken")
    run(at)
    assert any("The saved architecture 'broken'" in error for error in errors(at))
    assert at.session_state["architecture_name"] == "seed-3layer"
    at.button(key="architecture_delete_broken").click()
    run(at)
    assert ArchitectureStore().list() == ["fine"]


@pytest.mark.parametrize("name, message", [
    ("seed-3layer", "Not saved: 'seed-3layer' is the name of a preset"),
    ("a/b", "Not saved: The name contains '/'"),
    ("   ", "Not saved: Give the architecture a name."),
])
def test_bad_names_are_refused(name, message):
    at = open_architecture()
    at.text_input(key="architecture_save_name").set_value(name)
    at.button(key="architecture_save").click()
    run(at)
    assert any(message in error for error in errors(at)), errors(at)
    assert ArchitectureStore().list() == []


def test_import_from_text():
    at = open_architecture()
    at.text_area(key="architecture_import_text").set_value(
        to_json([{"type": "Conv2D", "filters": 6, "kernel_size": 5}, {"type": "Flatten"}], "shared net"))
    at.button(key="architecture_import").click()
    run(at)
    assert any("Imported 'shared net' (2 layers)" in success for success in successes(at))
    assert edited_layers(at)[0]["filters"] == 6 and at.session_state["architecture_name"] == "custom"
    assert at.text_input(key="architecture_save_name").value == "shared net"
    assert at.selectbox(key="architecture_start").value is None
    assert metrics(at)["Parameters"] == f"{(5 * 5 + 1) * 6 + (24 * 24 * 6 + 1) * 10:,}"


@pytest.mark.parametrize("text, message", [
    ("{oops", "Not imported: This is not valid JSON"),
    ('{"name": "x"}', "must be a list of layers or an object with a 'layers' list"),
    ('[{"type": "LSTM"}]', "Layer 1: unknown layer type 'LSTM'"),
    ('[{"type": "Dense", "units": 8}]', "Layer 1 (Dense 8 relu) gets a 28x28x1 image: add a Flatten"),
    ('[{"type": "Dropout", "rate": 1}, {"type": "Flatten"}]', "Layer 1 (Dropout) rate"),
    (json.dumps([{"type": "Dropout", "rate": 0.1}] * 70), "is over the limit of 64"),
])
def test_bad_imports_leave_the_open_architecture_alone(text, message):
    at = open_architecture()
    at.text_area(key="architecture_import_text").set_value(text)
    at.button(key="architecture_import").click()
    run(at)
    assert any(message in error for error in errors(at)), errors(at)
    assert at.session_state["architecture_name"] == "seed-3layer" and edited_layers(at) is None


def test_an_edit_survives_a_page_switch():
    at = open_architecture()
    setting(at, 0, "filters").set_value(24)
    run(at)
    at.switch_page("pages/home.py")
    run(at)
    at.switch_page("pages/architecture.py")
    run(at)
    assert edited_layers(at)[0]["filters"] == 24
    assert setting(at, 0, "filters").value == 24
    assert at.dataframe[0].value["layer"].iloc[0] == "1 · Conv2D 24 3x3"


def test_architecture_from_the_session_is_opened():
    layers = [{"type": "Conv2D", "filters": 3, "kernel_size": [3, 3]}, {"type": "Flatten"}]
    at = open_architecture(architecture_name="custom", architecture_layers=layers)
    assert setting(at, 0, "filters").value == 3
    at = open_architecture(architecture_name="no longer saved", architecture_layers=None)
    assert any("There is no saved architecture called 'no longer saved'" in shown(warning.value) for warning in at.warning)
    assert at.session_state["architecture_name"] == "seed-3layer"


INJECTED = "[link](http://x) ![img](http://x/i.png) <b>bold</b>"
LIVE_MARKUP = ("](http", "![", "<b>")  # what Markdown would turn into a link, an image, bold


def markdown_elements(at) -> list[str]:
    """The Markdown sources of every element Streamlit renders as Markdown."""
    return [element.value for kind in (at.markdown, at.caption, at.info, at.warning, at.error, at.success)
            for element in kind]


def test_an_imported_name_is_shown_as_text():
    at = open_architecture()
    at.text_area(key="architecture_import_text").set_value(to_json([{"type": "Flatten"}], INJECTED))
    at.button(key="architecture_import").click()
    run(at)
    assert any(f"Imported '{INJECTED}' (1 layer)" in success for success in successes(at))
    assert at.text_input(key="architecture_save_name").value == INJECTED  # a text box shows it as typed
    assert not [text for text in markdown_elements(at) if any(live in text for live in LIVE_MARKUP)]


def test_values_quoted_in_errors_are_shown_as_text():
    at = open_architecture()
    at.text_area(key="architecture_import_text").set_value(json.dumps([{"type": INJECTED}]))
    at.button(key="architecture_import").click()
    run(at)
    assert any(f"unknown layer type '{INJECTED}'" in error for error in errors(at)), errors(at)
    setting(at, 0, "kernel_size").set_value(INJECTED)
    run(at)
    assert any(f"not '{INJECTED}'" in error for error in errors(at)), errors(at)
    assert not [text for text in markdown_elements(at) if any(live in text for live in LIVE_MARKUP)]


def test_saved_names_with_markdown_marks_are_shown_as_text():
    ArchitectureStore().save("__init__ v1.0", [{"type": "Flatten"}])
    at = open_architecture()
    assert "**\\_\\_init\\_\\_ v1.0**" in markdown_elements(at)
    at.selectbox(key="architecture_start").set_value("saved:__init__ v1.0")
    run(at)
    assert at.session_state["architecture_name"] == "__init__ v1.0"


def test_an_edited_presets_note_says_it_is_edited():
    at = open_architecture()
    assert at.info[0].value == PRESETS["seed-3layer"].note
    setting(at, 0, "filters").set_value(16)
    run(at)
    assert at.info[0].value.startswith("**Edited: this note is about seed-3layer as the notebook has it")


def test_option_labels_name_each_preset_once():
    at = open_architecture()
    labels = at.selectbox(key="architecture_start").options
    assert "quick-cnn: a fast modern net for a lesson (not from the notebook)" in labels
    assert not [label for label in labels if label.count("quick-cnn") > 1]


def test_a_share_near_all_parameters_is_not_rounded_to_100_percent():
    layers = [{"type": "Flatten"}, {"type": "Dense", "units": 2000}, {"type": "Dense", "units": 1}]
    at = open_architecture(architecture_name="custom", architecture_layers=layers)
    assert "1,570,000 of the 1,572,021 parameters (99.9 %)" in texts(at)


@pytest.fixture
def offline_data(synthetic_npz, monkeypatch):
    """The home page (opened first) shows MNIST: give it the tiny synthetic file, so it never downloads.
    Request it before app_server, which copies the environment."""
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))


def table_cell(page, text: str):
    """A cell of the layer table (the grid draws on a canvas; its cells are kept for accessibility)."""
    return page.locator("[data-testid='stDataFrame'] [role='gridcell']").filter(
        has_text=re.compile(f"^{re.escape(text)}$"))


@pytest.mark.browser
def test_architecture_page_in_browser(offline_data, app_server, page):
    open_page(page, app_server)  # the home page first: it installs the app's navigation
    page.get_by_role("link", name="Architecture").first.click()
    page.get_by_role("heading", name="Architecture", exact=True).wait_for()
    page.locator("[data-testid='stMetricValue']", has_text="30,706").wait_for()
    page.get_by_text("Total params: 30,706").wait_for(timeout=90_000)  # Keras' own summary
    table_cell(page, "1 · Conv2D 64 3x3").wait_for(state="attached")
    wait_idle(page)
    scroller = page.locator("[data-testid='stDataFrame'] .dvn-scroller").first
    assert scroller.evaluate("element => element.scrollWidth <= element.clientWidth"), "the layer table scrolls sideways"

    layers = preset_layers("seed-3layer")
    layers[0]["filters"] = 20
    report = analyze(layers)
    page.get_by_text("1 · Conv2D 64 3x3 →").click()
    filters = page.locator("input[aria-label='filters']:visible")
    filters.fill("20")
    filters.press("Enter")
    table_cell(page, "1 · Conv2D 20 3x3").wait_for(state="attached")
    table_cell(page, str(report.layers[2].parameters)).wait_for(state="attached")  # layer 3 has fewer inputs
    page.locator("[data-testid='stMetricValue']", has_text=f"{report.total_parameters:,}").wait_for()
    page.get_by_text(f"Total params: {report.total_parameters:,}").wait_for(timeout=60_000)
    page.get_by_text(f"1 · Conv2D 20 3x3 → 26×26×20 · {report.layers[0].parameters:,} parameters").wait_for()

    filters.fill("0")
    filters.press("Enter")
    page.get_by_text("Layer 1 (Conv2D) filters: must be at least 1, not 0.").first.wait_for()
    assert page.get_by_text("Traceback").count() == 0
    filters.fill("20")
    filters.press("Enter")
    page.locator("[data-testid='stMetricValue']", has_text=f"{report.total_parameters:,}").wait_for()
    wait_idle(page)


@pytest.mark.browser
def test_import_a_file_save_and_delete_in_browser(offline_data, app_server, page, tmp_path):
    exported = tmp_path / "shared.json"
    layers = [{"type": "Conv2D", "filters": 12, "kernel_size": 5}, {"type": "MaxPooling2D", "pool_size": 2},
              {"type": "Flatten"}]
    exported.write_text(to_json(layers, "from a friend"))
    total = analyze(layers).total_parameters
    open_page(page, app_server)
    page.get_by_role("link", name="Architecture").first.click()
    page.get_by_role("heading", name="Save and share").wait_for()
    wait_idle(page)

    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(exported))
    page.get_by_text("shared.json").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported 'from a friend' (3 layers)").wait_for()
    page.locator("[data-testid='stMetricValue']", has_text=f"{total:,}").first.wait_for()
    wait_idle(page)  # until the run ends, the previous run's elements are still on the page
    name = page.get_by_placeholder("e.g. wide-5x5")
    assert name.input_value() == "from a friend"

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved as 'from a friend'").wait_for()
    assert ArchitectureStore().list() == ["from a friend"]
    page.get_by_text(f"3 layers + output · {total:,} parameters").wait_for()

    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete for good").click()
    page.get_by_text("Deleted 'from a friend'").wait_for()
    assert ArchitectureStore().list() == []
    wait_idle(page)

    page.locator("[data-testid='stFileUploader'] [data-testid='stFileChipDeleteBtn'] button, [data-testid='stFileUploader'] button[data-testid='stFileChipDeleteBtn']").first.click()
    wait_idle(page)
    page.get_by_placeholder('{"name": "mine", "layers": [{"type": "Flatten"}]}').fill(
        to_json([{"type": "Flatten"}], INJECTED))
    page.get_by_role("button", name="Import", exact=True).click()
    # As typed; an invisible word joiner after "http" keeps each address from becoming a link.
    page.get_by_text(re.compile(re.escape(f"Imported '{INJECTED}' (1 layer)").replace("http", "http\u2060?"))).wait_for()
    wait_idle(page)
    main = page.locator("[data-testid='stMain']")
    assert main.locator("a[href^='http://x']").count() == 0
    assert main.locator("img[src^='http://x']").count() == 0
    assert main.locator("b", has_text="bold").count() == 0


def test_keras_code_of_what_is_open():
    at = open_architecture()
    setting(at, 0, "filters").set_value(20)
    run(at)
    scripts = [code.value for code in at.code if code.language == "python"]
    assert len(scripts) == 1 and '        layers.Conv2D(20, kernel_size=(3, 3), activation="relu"),\n' in scripts[0]
    assert "keras.Sequential([" in scripts[0] and "EPOCHS = 12" in scripts[0]
    at.selectbox(key="architecture_start").set_value("preset:quick-cnn")
    run(at)
    script = next(code.value for code in at.code if code.language == "python")
    assert "EPOCHS = 2\nBATCH_SIZE = 256" in script and "CosineDecay" in script
