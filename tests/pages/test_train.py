"""Train page: settings, starting and stopping runs, messages instead of tracebacks, live charts in a browser."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import urllib.request
from pathlib import Path

import pytest
from helpers import ARTIFACTS, app_test, open_app_page, open_page, wait_idle
from playwright.sync_api import expect

from mnist_lab import training
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.runs import RunStore

SHOTS = Path("/tmp/shots")
TINY = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"}]


@pytest.fixture(autouse=True)
def background_work_finishes():
    """Runs and the speed measurement the page started end before the next test (and before exit)."""
    yield
    assert training.wait_for_background(300)


def train_page(**session):
    return open_app_page("pages/train.py", **session)


def button(at, label):
    return next(widget for widget in at.button if widget.label == label)


def texts(elements):
    return " ".join(str(element.value) for element in elements)


def test_settings_start_at_the_notebooks_values(synthetic_data):
    at = train_page()
    assert at.title[0].value == "Train"
    architecture = at.selectbox(key="train_architecture")
    assert architecture.value == "preset:seed-3layer"
    assert [option.split(":")[0] for option in architecture.options] == list(PRESETS)
    assert at.number_input(key="train_epochs").value == 12
    assert at.select_slider(key="train_batch_size").value == 128
    assert at.selectbox(key="train_optimizer").value == "adam"
    assert at.select_slider(key="train_learning_rate").value == pytest.approx(0.001)
    assert at.radio(key="train_validation").value == "holdout"
    assert at.select_slider(key="train_train_size").value == 500  # all but the 100 held out of 600
    assert at.number_input(key="train_seed").value == 1
    assert "100 training images are set aside for validation" in texts(at.caption)
    assert "30,706 parameters" in texts(at.caption)
    assert "None yet: choose a net above and press Train." in texts(at.caption)
    assert "No one else has trained yet." in texts(at.caption)


def test_quick_demo_optimizer_and_validation_choices(synthetic_data):
    at = train_page()
    at.number_input(key="train_epochs").set_value(5).run()
    button(at, "Quick demo").click().run()
    assert at.number_input(key="train_epochs").value == 1
    assert at.select_slider(key="train_train_size").value == 500
    assert at.select_slider(key="train_batch_size").value == 32
    at.selectbox(key="train_optimizer").select("adadelta").run()
    assert at.select_slider(key="train_learning_rate").value == pytest.approx(1.0)
    at.radio(key="train_validation").set_value("test").run()
    assert not at.exception
    assert training.TEST_VALIDATION_NOTE in texts(at.caption)
    button(at, "The notebook's plan").click().run()
    assert at.select_slider(key="train_train_size").value == 600
    assert at.number_input(key="train_epochs").value == 12
    assert at.select_slider(key="train_batch_size").value == 128


def test_settings_survive_a_visit_to_another_page(synthetic_data):
    at = train_page()
    at.number_input(key="train_epochs").set_value(3).run()
    at.select_slider(key="train_batch_size").set_value(32).run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == 3
    assert at.select_slider(key="train_batch_size").value == 32


def test_training_the_architecture_being_edited_from_the_page(synthetic_data, isolated_storage):
    at = train_page(architecture_name="tiny", architecture_layers=TINY)
    assert at.selectbox(key="train_architecture").value == "edited"
    at.number_input(key="train_epochs").set_value(2).run()
    at.text_input(key="train_name").input("my first run").run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    run_id = at.session_state["train_watched_run"]
    assert at.query_params["run"] == run_id
    assert training.wait_for_run(run_id, 300)
    at.run()  # one poll of the page: run_every never ticks in AppTest
    assert not at.exception
    meta = RunStore(isolated_storage / "runs").get(run_id)
    assert meta["status"] == "completed" and meta["name"] == "my first run"
    assert meta["architecture"]["source"] == "edited" and meta["architecture"]["label"] == "tiny"
    assert "Your run: my first run" in texts(at.markdown)
    done = texts(at.success)
    assert f"{100 * meta['test_accuracy']:.2f} %" in done and "of the 200 test images" in done
    assert "2 epoch(s)" in done
    assert "batches so far" in texts(at.caption)
    assert any(widget.label == "Compare it with other runs and the notebook" for widget in at.button)


def test_a_saved_architecture_trains_under_its_name(synthetic_data, isolated_storage):
    from mnist_lab.architecture.saved import ArchitectureStore

    ArchitectureStore().save("my net", TINY)
    at = train_page(architecture_name="my net", architecture_layers=None)
    assert at.selectbox(key="train_architecture").value == "saved:my net"
    at.number_input(key="train_epochs").set_value(1).run()
    button(at, "Train").click().run()
    run_id = at.session_state["train_watched_run"]
    assert training.wait_for_run(run_id, 300)
    meta = RunStore(isolated_storage / "runs").get(run_id)
    assert meta["architecture"]["source"] == "saved" and meta["architecture"]["name"] == "my net"
    assert meta["status"] == "completed"


def test_a_presets_recommended_settings_are_applied_when_it_is_chosen(synthetic_data, monkeypatch):
    preset = PRESETS["seed-7layer"]
    monkeypatch.setitem(PRESETS, "seed-7layer", dataclasses.replace(preset, training={
        "batch_size": 64, "epochs": 4, "learning_rate": 0.004, "schedule": "warmup-cosine", "momentum": 0.9}))
    at = train_page()
    at.number_input(key="train_epochs").set_value(9).run()
    at.selectbox(key="train_architecture").select("preset:seed-7layer").run()
    assert not at.exception
    assert at.select_slider(key="train_batch_size").value == 64
    assert at.number_input(key="train_epochs").value == 4
    assert at.select_slider(key="train_learning_rate").value == pytest.approx(0.004)
    assert at.selectbox(key="train_schedule").value == "warmup-cosine"
    at.number_input(key="train_epochs").set_value(6).run()  # the learner's own change stays
    assert at.number_input(key="train_epochs").value == 6
    at.selectbox(key="train_architecture").select("preset:seed-3layer").run()  # back to the notebook's recipe
    assert (at.number_input(key="train_epochs").value, at.select_slider(key="train_batch_size").value) == (12, 128)
    assert at.selectbox(key="train_schedule").value == "constant"


def test_a_full_queue_is_a_message_and_stop_works_from_the_page(synthetic_data, isolated_storage, monkeypatch):
    monkeypatch.setenv(training.MAX_QUEUED_VARIABLE, "0")
    monkeypatch.setenv(training.MAX_CONCURRENT_VARIABLE, "1")
    at = train_page(architecture_name="tiny", architecture_layers=TINY)
    at.number_input(key="train_epochs").set_value(200).run()
    at.select_slider(key="train_batch_size").set_value(16).run()
    button(at, "Train").click().run()
    run_id = at.session_state["train_watched_run"]
    button(at, "Train").click().run()
    assert not at.exception
    assert "The training queue is full: 1 run(s) training and 0 waiting" in texts(at.error)
    at.button(key=f"stop_{run_id}").click().run()
    assert training.wait_for_run(run_id, 120)
    at.run()
    meta = RunStore(isolated_storage / "runs").get(run_id)
    assert meta["status"] == "stopped"
    assert meta["message"] in texts(at.warning)


def test_failed_and_interrupted_runs_show_their_message(synthetic_data, isolated_storage):
    store = RunStore(isolated_storage / "runs")
    failed = store.create("broken", custom_architecture(TINY, "tiny"), {"epochs": 2})["id"]
    store.update(failed, status="failed", message="Out of memory while training: use a smaller batch size.")
    at = app_test()
    at.query_params["run"] = failed
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception
    assert "Out of memory while training" in texts(at.error)
    assert "Watching: broken" in texts(at.markdown)  # a run of no learner


def test_missing_data_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", "/nowhere/mnist.npz")
    at = train_page()
    shown = texts(at.error)
    assert "ask your teacher" in shown and "MNIST_LAB_DATA" not in shown and "/nowhere" not in shown


def test_a_bad_concurrency_setting_is_a_message(synthetic_data, monkeypatch):
    monkeypatch.setenv(training.MAX_CONCURRENT_VARIABLE, "many")
    at = train_page()
    shown = texts(at.error)
    assert "set up wrongly" in shown and "ask your teacher" in shown and "MNIST_LAB" not in shown


# --- in a browser ---------------------------------------------------------------------------------------

@pytest.fixture
def synthetic_server(synthetic_npz, monkeypatch, request):
    """The app on the tiny synthetic data set (its path is only known once the fixture ran)."""
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    return request.getfixturevalue("app_server")


def batches_so_far(page) -> int:
    text = page.get_by_text(re.compile(r"batches so far")).first.inner_text()
    return int(re.search(r"\(([\d,]+) batches so far", text).group(1).replace(",", ""))


@pytest.mark.browser
def test_a_run_trains_live_in_the_browser(synthetic_server, page, browser):
    """Also a second learner, whose Train page was open before the run began: the run appears there by itself,
    and watching it they have no Stop."""
    open_page(page, synthetic_server)  # the home page first: the app registers its pages
    open_page(page, synthetic_server, "train")
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    open_page(other, synthetic_server, "train")
    other.get_by_text("No one else has trained yet.").wait_for(timeout=120_000)
    page.get_by_text("from Train to the test score").wait_for(timeout=120_000)
    page.get_by_test_id("stSelectbox").filter(has_text="Architecture").click()
    page.get_by_role("option", name=re.compile("seed-5layer")).click()
    page.get_by_text("759,390 parameters").first.wait_for(timeout=60_000)  # the preset and its recipe are in
    wait_idle(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("2")
    epochs.press("Enter")
    wait_idle(page)
    expect(epochs).to_have_value("2", timeout=60_000)  # not undone by a rerun still under way on a busy machine
    batch_slider = page.get_by_test_id("stSlider").filter(has_text="Batch size").get_by_role("slider")
    batch_slider.focus()
    for _ in range(3):  # 128 → 64 → 32 → 16: more, shorter batches to watch
        batch_slider.press("ArrowLeft")
    wait_idle(page)
    expect(page.get_by_test_id("stSlider").filter(has_text="Batch size")).to_contain_text("16")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Your run: seed-5layer · 2 epochs · 500 images").wait_for(timeout=60_000)
    page.get_by_text("Time left").wait_for(timeout=120_000)
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=120_000)
    first = batches_so_far(page)
    page.wait_for_function(
        "(seen) => { const match = document.body.innerText.match(/\\(([\\d,]+) batches so far/);"
        " return match && parseInt(match[1].replace(/,/g, '')) > seen; }", arg=first, timeout=120_000)
    grown = batches_so_far(page)
    assert grown > first
    others_row = other.get_by_text(re.compile(r"· seed-5layer · 2 epochs · 500 images$"))
    others_row.wait_for(timeout=30_000)  # no reload: the page polls the class's runs
    other.get_by_role("button", name="Watch").first.click()
    other.get_by_text("only they or the teacher can stop it").first.wait_for(timeout=30_000)
    other.get_by_text(re.compile(r"'s run: seed-5layer · 2 epochs · 500 images")).wait_for()
    assert other.get_by_role("button", name="Stop", exact=True).count() == 0
    other.screenshot(path=str(ARTIFACTS / "test_a_second_learner_watches_without_stop.png"))
    other.context.close()
    assert page.get_by_test_id("stVegaLiteChart").count() == 2
    page.reload()  # a refresh (a new session) finds the run still going, charts and all
    page.get_by_text("Your run: seed-5layer · 2 epochs · 500 images").wait_for(timeout=60_000)
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=60_000)
    assert batches_so_far(page) >= grown
    # .first: while the page reruns, the old and the new result may both be in the page for a moment.
    page.get_by_text("Done:").first.wait_for(timeout=300_000)
    wait_idle(page)
    assert batches_so_far(page) == 2 * 32
    assert page.get_by_text(re.compile(r"of the 200 test images right")).first.is_visible()
    page.get_by_role("button", name="Compare it with other runs and the notebook").wait_for()


@pytest.mark.browser
def test_killing_the_training_process_leaves_the_server_serving_and_the_run_failed(synthetic_server, page,
                                                                                 isolated_storage):
    open_page(page, synthetic_server, "train")
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("100")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    # Past the first epoch, so one is kept (the page polls once a second: it may skip an epoch's number).
    page.get_by_text(re.compile(r"Epoch ([2-9]|\d\d+) of 100")).wait_for(timeout=180_000)
    [meta] = RunStore(isolated_storage / "runs").list()
    assert meta["pid"] != synthetic_server.process.pid  # it trains in a process of its own
    os.kill(meta["pid"], signal.SIGKILL)
    with urllib.request.urlopen(f"{synthetic_server.url}/_stcore/health", timeout=10) as response:
        assert response.status == 200
    page.get_by_text(re.compile(r"stopped unexpectedly: signal 9")).first.wait_for(timeout=60_000)
    assert synthetic_server.process.poll() is None
    meta = RunStore(isolated_storage / "runs").get(meta["id"])
    assert meta["status"] == "failed" and meta["epochs_done"] >= 1


def test_augmentation_shows_a_preview_of_augmented_digits(monkeypatch, synthetic_npz):
    from streamlit.testing.v1.element_tree import Image

    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    at = app_test(180)
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception
    images_before = sum(isinstance(node, Image) for node in at.main)
    at.toggle(key="train_augment").set_value(True).run()
    assert not at.exception
    assert sum(isinstance(node, Image) for node in at.main) == images_before + 1


@pytest.mark.browser
def test_at_1280x720_the_live_chart_is_in_view_after_pressing_train(synthetic_server, browser):
    """A laptop screen: after pressing Train the learner sees the run start and its chart grow without
    scrolling."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_page(page, synthetic_server)  # the home page first: the app registers its pages
        open_page(page, synthetic_server, "train")
        page.get_by_text("from Train to the test score").wait_for(timeout=120_000)
        page.get_by_role("button", name="Quick demo").click()
        epochs = page.get_by_role("spinbutton", name="Epochs")
        expect(epochs).to_have_value("1", timeout=60_000)  # the quick demo is in: no later rerun undoes the 200
        wait_idle(page)
        epochs.fill("200")  # long enough to look at while it trains; stopped below
        epochs.press("Enter")
        wait_idle(page)
        expect(epochs).to_have_value("200", timeout=60_000)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text(re.compile(r"Epoch \d+ of 200 · batch")).wait_for(timeout=120_000)
        chart = page.get_by_test_id("stVegaLiteChart").first
        chart.wait_for(timeout=120_000)
        page.get_by_role("button", name="Stop").wait_for()  # still training
        box = chart.bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 720, box
        assert page.evaluate("() => window.scrollY") == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "train_1280.png"))
        # An epoch has ended, so the stop keeps a model (on a busy machine the chart is up before that).
        page.get_by_text(re.compile(r"Epoch (?:[2-9]|[1-9]\d+) of 200 · batch")).wait_for(timeout=120_000)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text(re.compile(r"Stopped by request")).wait_for(timeout=120_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "test_train_page_at_1280x720.png"))
        context.close()


def test_a_learner_watches_their_own_run_and_cannot_stop_anothers(synthetic_data, monkeypatch):
    """Two sessions on one server: B is not shown A's run by default, has no Stop for it when watching it,
    and the library refuses B's stop too."""
    from mnist_lab.classroom import learners

    import app

    monkeypatch.setenv("MNIST_LAB_EXECUTOR", "thread")
    first, second = train_page(), train_page()
    first.number_input(key="train_epochs").set_value(40).run()
    button(first, "Train").click().run()
    assert not first.exception
    run_id = first.session_state["train_watched_run"]
    meta = app.shared_manager().store.get(run_id)
    assert meta["owner"] == first.session_state["learner_id"]
    assert meta["name"].startswith(first.session_state["learner_name"] + " · ")
    second.run()
    assert second.session_state["train_watched_run"] is None  # not someone else's run
    assert any(meta["name"] in markdown.value for markdown in second.markdown)  # but listed with the class's
    second.query_params["run"] = run_id
    second.run()
    assert not [b for b in second.button if b.label == "Stop"]
    assert "only they or the teacher can stop it" in texts(second.caption)
    with pytest.raises(learners.NotYours):
        app.shared_manager().stop(run_id, by=learners.Actor(second.session_state["learner_id"]))
    assert app.shared_manager().store.get(run_id)["status"] in ("queued", "running")
    first.run()
    button(first, "Stop").click().run()
    assert app.shared_manager().wait(run_id, 120)
    assert app.shared_manager().store.get(run_id)["status"] == "stopped"
