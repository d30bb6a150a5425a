"""Compare page: headless (AppTest) with no runs, with broken runs, with many runs, in depth, head to head,
export and delete; and in Chromium with two trained runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from helpers import ARTIFACTS, open_app_page, open_page, page_texts, stored_run, trained_run, wait_idle
from mnist_lab.architecture import keras_code
from mnist_lab.evaluation import evaluation
from mnist_lab.data import load_npz, to_model_input
from mnist_lab.runs import RunStore

# How long a script run that tests a model on the 10,000 images may take on a loaded machine before the
# test calls it hung: a guard, not a speed check (a run takes seconds on a quiet 2-core CPU).
EVALUATION_TIMEOUT = 300_000
ONE_EPOCH = [{"epoch": 1, "loss": 0.5, "accuracy": 0.85, "val_loss": 0.4, "val_accuracy": 0.88, "seconds": 3.0}]


@pytest.fixture
def store():
    return RunStore()


@pytest.fixture
def synthetic(synthetic_npz, monkeypatch):
    """The tiny synthetic MNIST, also as the app's data file."""
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    return load_npz(str(synthetic_npz))


def open_compare(**session) -> AppTest:
    return open_app_page("pages/compare.py", **session)


texts = page_texts


def table_of(at):
    return at.dataframe[0].value


def test_without_runs_the_page_says_how_to_make_one_and_shows_the_notebook():
    at = open_compare()
    assert "No runs yet" in texts(at)
    assert any(link.proto.page.endswith("pages/train.py") or "train" in link.proto.page.lower()
               for link in at.get("page_link"))
    table = table_of(at)
    assert list(table["source"]) == ["notebook"] * 3
    assert list(table["test accuracy %"].round(2)) == [98.6, 99.32, 99.11]
    assert [header.value for header in at.header] == ["All runs", "Curves"]  # nothing to look closer at
    assert set(at.multiselect(key="compare_overlay").value) == {"notebook:seed-3layer", "notebook:seed-5layer",
                                                                "notebook:seed-7layer"}
    assert "**Most accurate:**" in texts(at)


def test_runs_without_models_keep_their_rows_and_do_not_crash(store, synthetic):
    stored_run(store, "stopped at once", status="stopped", message="Stopped before the first epoch.")
    missing = stored_run(store, "lost model", ONE_EPOCH)
    broken = stored_run(store, "broken model", ONE_EPOCH, test_accuracy=0.9)
    store.model_path(broken["id"]).write_bytes(b"not a keras file")
    at = open_compare()
    table = table_of(at)
    assert len(table) == 6
    assert {"stopped at once", "lost model", "broken model"} <= set(table["name"])
    notes = dict(zip(table["name"], table["notes"]))
    assert "no finished epoch" in notes["stopped at once"] and notes["lost model"] == "no saved model file"
    # The only run with a model file is offered in depth; its file is unreadable: a warning, no traceback.
    assert at.selectbox(key="compare_depth_run").value == broken["id"]
    assert any("is damaged" in warning.value and "not found" not in warning.value for warning in at.warning)
    assert missing["id"] not in at.selectbox(key="compare_depth_run").options


def test_hundreds_of_runs_stay_usable_with_filters(store):
    for number in range(240):
        stored_run(store, f"run {number:03d}", ONE_EPOCH, status=("completed", "failed", "stopped")[number % 3],
                   architecture="seed-3layer" if number % 2 else "mine", test_accuracy=0.9 + number / 10000)
    at = open_compare()
    assert len(table_of(at)) == 243
    assert len(at.multiselect(key="compare_overlay").value) == 3  # two newest runs + the notebook's 3-layer net
    at.multiselect(key="compare_filter_architecture").set_value(["mine"])
    at.multiselect(key="compare_filter_status").set_value(["failed"])
    at.run()
    table = table_of(at)
    assert len(table) == 40 and set(table["architecture"]) == {"mine"} and set(table["status"]) == {"failed"}
    at.text_input(key="compare_filter_name").input("run 00")
    at.run()
    assert list(table_of(at)["name"]) == ["run 004"]  # even (mine), 1 mod 3 (failed), 000 to 009
    at.text_input(key="compare_filter_name").input("no such run")
    at.run()
    assert not at.exception and len(table_of(at)) == 0 and "0 of 243 rows" in texts(at)


def test_overlay_choice_is_shared_and_drives_the_observations(store):
    first = stored_run(store, "first", ONE_EPOCH, test_accuracy=0.95)
    second = stored_run(store, "second", ONE_EPOCH, test_accuracy=0.97)
    at = open_compare(selected_run_ids=[first["id"]])
    assert at.multiselect(key="compare_overlay").value == [first["id"], "notebook:seed-3layer"]
    at.multiselect(key="compare_overlay").set_value([first["id"], second["id"]])
    at.run()
    assert at.session_state["selected_run_ids"] == [first["id"], second["id"]]
    assert "**Most accurate:** “second”, 97.00 %" in texts(at)
    at.multiselect(key="compare_overlay").set_value([])
    at.run()
    assert "Choose one or more runs" in texts(at)


def test_one_run_in_depth_confusion_matrix_and_gallery_filter(store, synthetic):
    run_id = trained_run(store, synthetic, "synthetic run", epochs=1)
    at = open_compare()
    assert at.selectbox(key="compare_depth_run").value == run_id
    scores = evaluation.evaluate_run(store, run_id, synthetic.x_test, synthetic.y_test)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Test accuracy"] == f"{100 * scores.accuracy:.2f} %"
    wrong = int((scores.predictions != scores.labels).sum())
    assert metrics["Mistakes"] == f"{wrong:,} of {len(scores.labels):,}"
    # Pick the most frequent mistake (what a click on the heatmap does) through the two filters.
    matrix = evaluation.confusion_matrix(scores.labels, scores.predictions)
    off_diagonal = matrix * (1 - np.eye(10, dtype=int))
    true_digit, predicted_digit = np.unravel_index(off_diagonal.argmax(), matrix.shape)
    if off_diagonal.max() == 0:
        pytest.skip("the tiny model made no mistakes on the synthetic digits")
    at.selectbox(key="compare_gallery_true").set_value(int(true_digit))
    at.selectbox(key="compare_gallery_predicted").set_value(int(predicted_digit))
    at.run()
    assert not at.exception
    expected = int(np.sum((synthetic.y_test == true_digit) & (scores.predictions == predicted_digit)))
    assert f"{expected:,} mistakes match" in texts(at)
    at.selectbox(key="compare_gallery_predicted").set_value(int(true_digit))
    at.run()
    assert "That is the diagonal" in texts(at)


def test_two_runs_head_to_head(store, synthetic):
    first = trained_run(store, synthetic, "first", epochs=1, seed=1)
    second = trained_run(store, synthetic, "second", epochs=1, seed=2, layers=[{"type": "Flatten"}],
                         architecture="linear")
    at = open_compare(compare_tab="Two runs head to head")
    at.selectbox(key="compare_versus_first").set_value(first)
    at.selectbox(key="compare_versus_second").set_value(second)
    at.run()
    assert not at.exception
    first_predictions = store.load_model(first).predict(to_model_input(synthetic.x_test), verbose=0).argmax(1)
    second_predictions = store.load_model(second).predict(to_model_input(synthetic.x_test), verbose=0).argmax(1)
    first_right, second_right = first_predictions == synthetic.y_test, second_predictions == synthetic.y_test
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Only “first” right"] == f"{np.sum(first_right & ~second_right):,}"
    assert metrics["Only “second” right"] == f"{np.sum(second_right & ~first_right):,}"
    assert metrics["Both wrong"] == f"{np.sum(~first_right & ~second_right):,}"
    at.selectbox(key="compare_versus_second").set_value(first)
    at.run()
    assert "Choose two different runs" in texts(at)


def test_export_buttons_and_delete_with_confirmation(store):
    kept = stored_run(store, "kept", ONE_EPOCH)
    doomed = stored_run(store, "doomed", ONE_EPOCH)
    at = open_compare(compare_tab="Export or delete")
    at.selectbox(key="compare_manage_run").set_value(doomed["id"])
    at.run()
    labels = {button.label: button for button in at.get("download_button")}
    assert set(labels) == {"Model (.keras)", "History (CSV)", "Architecture (JSON)", "Keras script (.py)"}
    assert labels["Model (.keras)"].proto.disabled  # no model file for this run
    assert at.button(key="compare_delete").disabled  # not confirmed yet
    at.checkbox(key="compare_delete_confirm").check()
    at.run()
    at.button(key="compare_delete").click()
    at.run()
    assert not at.exception
    assert [meta["id"] for meta in store.list()] == [kept["id"]]
    assert "Deleted “doomed”." in texts(at)
    assert "doomed" not in set(table_of(at)["name"])


def test_each_run_offers_its_keras_script_with_its_layers_and_settings(store):
    layers = [{"type": "Conv2D", "filters": 12, "kernel_size": [5, 5], "strides": [2, 2], "padding": "same",
               "activation": "relu"}, {"type": "Flatten"}, {"type": "Dense", "units": 48, "activation": "relu"}]
    mine = stored_run(store, "my small net", ONE_EPOCH, layers=layers, architecture="small",
                      settings={"epochs": 3, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.05})
    stored_run(store, "another", ONE_EPOCH)
    at = open_compare(compare_tab="Export or delete")
    at.selectbox(key="compare_manage_run").set_value(mine["id"])
    at.run()
    assert not at.exception
    assert "Keras script (.py)" in {button.label for button in at.get("download_button")}
    assert at.expander[-1].label == "Keras code"
    script = at.code[0].value
    assert script == keras_code.run_script(store.get(mine["id"])).rstrip("\n")  # the download's and the CLI's text
    assert 'layers.Conv2D(12, kernel_size=(5, 5), strides=(2, 2), padding="same", activation="relu"),' in script
    assert 'layers.Dense(48, activation="relu"),' in script and "layers.Flatten()," in script
    assert "EPOCHS = 3\nBATCH_SIZE = 64\nTRAIN_SIZE = 600" in script
    assert "keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)" in script
    assert "3 epochs on 600 training images in batches of 64 with SGD with momentum 0.9 at 0.05" in texts(at)


def test_a_run_whose_architecture_cannot_be_written_says_so(store):
    broken = stored_run(store, "impossible", ONE_EPOCH)
    store.update(broken["id"], architecture={"name": "odd", "source": "saved", "layers": [{"type": "Dense", "units": 3}]})
    at = open_compare(compare_tab="Export or delete")
    at.selectbox(key="compare_manage_run").set_value(broken["id"])
    at.run()
    assert not at.exception
    assert "Keras script (.py)" not in {button.label for button in at.get("download_button")}
    assert "No Keras script:" in texts(at) and not at.code


def test_a_run_still_training_cannot_be_deleted(store):
    live = stored_run(store, "live", ONE_EPOCH, status="running", pid=os.getppid())  # trained by a living process
    at = open_compare(compare_tab="Export or delete")
    at.checkbox(key="compare_delete_confirm").check()
    at.run()
    at.button(key="compare_delete").click()
    at.run()
    assert not at.exception
    assert any("still running" in error.value for error in at.error)
    assert store.get(live["id"])["status"] == "running"


# ---- In a real browser ---------------------------------------------------------------------------

def choose(page, label: str, option: str):
    """Pick an option of a selectbox. The first click can land while the page still scrolls the box into
    view and miss; so open the list until its option shows (a wait on a condition, not a sleep)."""
    combo = page.get_by_role("combobox", name=label, exact=True)
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(5):
        combo.click()
        try:
            choice.wait_for(timeout=3000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    choice.click()
    wait_idle(page, EVALUATION_TIMEOUT)


def click_chart_mark(page, selector: str, attempts: int = 5):
    """Click a chart mark where a learner would. A rerun can replace the chart between finding the mark
    and clicking it ("Element is not attached to the DOM"): then wait for the app to be idle and find
    the mark again in the new chart."""
    for attempt in range(attempts):
        wait_idle(page)
        mark = page.locator(selector).first
        try:
            mark.scroll_into_view_if_needed()
            box = mark.bounding_box()
            if box is None:
                continue  # detached while measuring
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        except PlaywrightError:
            if attempt == attempts - 1:
                raise
            continue
        wait_idle(page)
        return
    raise AssertionError(f"the chart mark {selector} kept being replaced")


@pytest.fixture
def two_trained_runs(real_mnist):
    """Two small runs on real MNIST, stored before the server starts."""
    store = RunStore()
    three = trained_run(store, real_mnist, "three layers", epochs=2, train_size=3000)
    dense = trained_run(store, real_mnist, "dense only", epochs=2, train_size=3000,
                        layers=[{"type": "Flatten"}, {"type": "Dense", "units": 64}], architecture="dense")
    return store, three, dense


@pytest.mark.browser
@pytest.mark.app_env(MNIST_LAB_DATA=os.environ.get("MNIST_LAB_DATA", ""))
def test_compare_in_browser(two_trained_runs, real_mnist, app_server, page, tmp_path):
    store, three, dense = two_trained_runs
    open_page(page, app_server)  # the home page first: it installs the app's navigation
    page.get_by_role("link", name="Compare").first.click()
    wait_idle(page)
    page.get_by_role("heading", name="All runs").wait_for()
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for()

    # Overlay both runs and the notebook's 3-layer net: every curve is drawn, named by run.
    overlay = page.locator("[data-testid='stMultiSelect']").filter(has_text="Runs to overlay")
    for name in ("three layers", "dense only"):
        assert overlay.get_by_text(name, exact=True).is_visible()
    loss_chart = page.locator("[data-testid='stVegaLiteChart']").first
    for name in ("three layers", "dense only", "Notebook: 3 layer CNN, kernel size 3x3"):
        loss_chart.locator(f"path[aria-label*='run: {name};']").first.wait_for(state="attached")
    page.get_by_text("What the numbers say").wait_for()
    wait_idle(page, EVALUATION_TIMEOUT)  # the newest run is tested on the 10,000 images in this script run
    page.get_by_role("heading", name="Confusion matrix").wait_for()  # of the newest run, at first

    # One run in depth: the confusion matrix of "three layers"; a click on a cell filters the gallery.
    choose(page, "Run", "three layers")
    scores = evaluation.evaluate_run(store, three, real_mnist.x_test, real_mnist.y_test)
    expect(page.locator("[data-testid='stMetric']").filter(has_text="Test accuracy")).to_contain_text(
        f"{100 * scores.accuracy:.2f} %")
    matrix = evaluation.confusion_matrix(scores.labels, scores.predictions)
    off_diagonal = matrix * (1 - np.eye(10, dtype=int))
    true_digit, predicted_digit = (int(d) for d in np.unravel_index(off_diagonal.argmax(), matrix.shape))
    click_chart_mark(page, f"path[aria-label*='predicted digit: {predicted_digit}; true digit: {true_digit};']")
    page.get_by_text(f"{int(matrix[true_digit, predicted_digit]):,} mistakes match").wait_for()

    # Export: the downloaded model loads and predicts what the stored one predicts.
    page.get_by_role("tab", name="Export or delete").click()
    wait_idle(page)
    choose(page, "Run", "three layers")
    page.get_by_text("Yes, delete “three layers”").wait_for()  # the rerun for the chosen run has finished
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Model (.keras)").click()
    downloaded = tmp_path / "downloaded.keras"
    download_info.value.save_as(downloaded)
    import keras

    sample = to_model_input(real_mnist.x_test[:64])
    reloaded = keras.saving.load_model(downloaded, compile=False)
    assert np.allclose(reloaded.predict(sample, verbose=0), store.load_model(three).predict(sample, verbose=0),
                       atol=1e-6)

    # The run's Keras script: downloaded under the run's name, with its layers and its settings; shown too.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Keras script (.py)").click()
    assert download_info.value.suggested_filename.startswith("three-layers") and \
        download_info.value.suggested_filename.endswith(".py")
    script_path = tmp_path / "net.py"
    download_info.value.save_as(script_path)
    script = script_path.read_text()
    assert '        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),\n' in script
    assert "EPOCHS = 2\nBATCH_SIZE = 64\nTRAIN_SIZE = 3000" in script
    compile(script, "net.py", "exec")
    page.get_by_text("Keras code", exact=True).click()
    code = page.locator("[data-testid='stExpander']").filter(has_text="Keras code").locator("[data-testid='stCode']")
    expect(code).to_contain_text("BATCH_SIZE = 64")


# ---- Screen sizes and names as typed, in a browser (no trained model needed) ---------------------

COVERING_NAME = '<div style="position:fixed;inset:0;z-index:9999;background:red">x</div>'
MARKDOWN_NAME = "[link](http://example.invalid) ![i](http://example.invalid/i.png)"


def visible_headers(page) -> list[str]:
    """The table's column headers as the grid's accessibility layer lists them: the columns on screen."""
    return page.locator("[data-testid='data-grid-canvas'] th[role='columnheader']").all_inner_texts()


@pytest.mark.browser
@pytest.mark.parametrize("width, height", [(390, 844), (1280, 720)])
def test_the_accuracy_is_the_first_column_in_view(store, app_server, browser, width, height):
    for number in range(3):
        stored_run(store, f"run {number} with a long descriptive name", ONE_EPOCH, test_accuracy=0.95 + number / 100)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_page(page, app_server, "compare")
        grid = page.locator("[data-testid='data-grid-canvas']").first
        grid.scroll_into_view_if_needed()
        expect(page.locator("[data-testid='data-grid-canvas'] th[role='columnheader']").first).to_have_text(
            "test accuracy %")
        box = grid.bounding_box()
        assert box["x"] >= 0 and box["x"] + 112 <= width  # the pinned accuracy column (112 px) is on screen
        assert 0 <= box["y"] < height
        assert "name" in visible_headers(page)  # and the run it belongs to beside it
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways page scroll
        if width >= 1280:
            charts = page.locator("[data-testid='stVegaLiteChart']")
            expect(charts).to_have_count(2)
            loss, accuracy = charts.nth(0).bounding_box(), charts.nth(1).bounding_box()
            assert loss["x"] + loss["width"] <= accuracy["x"] and abs(loss["y"] - accuracy["y"]) < 5  # side by side
        page.screenshot(path=str(ARTIFACTS / f"compare-{width}x{height}.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.browser
def test_names_with_markup_show_as_text_in_the_browser(store, app_server, browser):
    for name in (COVERING_NAME, MARKDOWN_NAME):
        stored_run(store, name, ONE_EPOCH, test_accuracy=0.9)
    damaged = stored_run(store, COVERING_NAME + " (damaged)", ONE_EPOCH)
    meta = store.get(damaged["id"])
    (store.path(damaged["id"]) / "run.json").write_text(
        json.dumps(dict(meta, settings=dict(meta["settings"], epochs="12"))))
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_page(page, app_server, "compare")
        page.get_by_text("What the numbers say").wait_for()
        page.get_by_text("is damaged", exact=False).first.wait_for()
        page.get_by_role("tab", name="Export or delete").click()
        wait_idle(page)
        page.get_by_text("Yes, delete").wait_for()

        assert page.evaluate("() => [...document.querySelectorAll('div')].filter(element =>"
                             " getComputedStyle(element).position === 'fixed'"
                             " && getComputedStyle(element).backgroundColor === 'rgb(255, 0, 0)').length") == 0
        live = page.locator("a[href*='example.invalid'], img[src*='example.invalid']")
        assert live.count() == 0, live.evaluate_all("elements => elements.map(element => element.parentElement.outerHTML)")
        shown = [text.replace("\u2060", "") for text in  # the invisible joiner that keeps a URL from linking
                 page.locator("[data-testid='stMarkdownContainer']").all_inner_texts()]
        assert any(f"“{COVERING_NAME}" in text for text in shown)  # as typed, in quotes
        assert any(f"“{MARKDOWN_NAME}”" in text for text in shown)
        page.screenshot(path=str(ARTIFACTS / "compare-names-as-text.png"), full_page=True)
    finally:
        context.close()


def test_only_the_runs_learner_can_delete_it(store, monkeypatch):
    from mnist_lab.classroom import learners

    monkeypatch.setenv("MNIST_LAB_TEACHER_KEY", "a key")  # a class server: runs of nobody are the teacher's
    key = "k" * 24
    theirs = stored_run(store, "ben's run", ONE_EPOCH, owner="b" * 16, owner_name="Ben")
    at = open_compare(compare_tab="Export or delete", learner_key=key)
    assert not [box for box in at.checkbox if box.key == "compare_delete_confirm"]
    assert any("Only Ben or the teacher can delete this run." in caption.value for caption in at.caption)
    store.update(theirs["id"], owner=learners.learner_id(key))
    at.run()
    at.checkbox(key="compare_delete_confirm").check().run()
    at.button(key="compare_delete").click().run()
    assert not at.exception and store.list() == []


def test_the_class_set_column_scores_runs_on_the_class_handwriting(store, synthetic):
    from mnist_lab.evaluation import comparison
    from mnist_lab.images.handwriting import HandwritingSet

    run_id = trained_run(store, synthetic, "synthetic run", epochs=1)
    at = open_compare()
    assert comparison.CLASS_SET_COLUMN not in table_of(at).columns  # no class set yet
    for image, label in zip(synthetic.x_test[:12], synthetic.y_test[:12]):
        HandwritingSet(owner="a" * 16).add(image, int(label))
    assert HandwritingSet().pool_class_set() == 12
    at.run()
    assert table_of(at)[comparison.CLASS_SET_COLUMN].isna().all()  # not scored until asked
    at.button(key="compare_score_class_set").click().run()
    assert not at.exception
    images, labels, _ = HandwritingSet.class_set().load()
    expected = evaluation.evaluate_run(store, run_id, images, labels, cache_file="elsewhere.npz").accuracy
    shown = table_of(at).set_index("name")[comparison.CLASS_SET_COLUMN]
    assert shown["synthetic run"] == pytest.approx(100 * expected)
    assert "leaderboard on real handwriting" in texts(at)
