"""Draw page: headless (AppTest) without runs, with a trained run through the upload path, bad uploads,
undo/clear state, the handwriting set; and in Chromium, digits drawn with the mouse."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from helpers import ARTIFACTS, open_app_page, open_page, page_texts, wait_idle
from draw_support import (CANVAS_DIGITS, clear_canvas, draw_on_canvas, install_run, install_untrained_run, trained_model_folder,
                          two_epoch_folder, wait_canvas_ready)
from mnist_lab import data
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import RunStore
from mnist_lab.views.markdown import plain as markdown_text


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """seed-3layer trained on all of MNIST for one epoch (trained once per session)."""
    if not os.environ.get("MNIST_LAB_DATA"):
        pytest.skip("MNIST_LAB_DATA is not set")
    return trained_model_folder(tmp_path_factory, data.load_mnist())


@pytest.fixture
def trained_run(trained_folder):
    return install_run(trained_folder, RunStore())


def open_draw(**session) -> AppTest:
    return open_app_page("pages/draw.py", **session)


texts = page_texts


def guesses(at) -> list[str]:
    """The top guess shown for each model, e.g. ['7']."""
    found = []
    for markdown in at.markdown:
        if "draw-guess" in markdown.value:
            guess = markdown.value.split("data-testid='draw-guess'")[1]
            found.append(guess.split(">", 1)[1].split("<", 1)[0].strip())
    return found


def png(image: np.ndarray, size: int | None = None, dark_on_light: bool = False) -> bytes:
    picture = Image.fromarray(255 - image if dark_on_light else image)
    if size:
        picture = picture.resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def upload(at: AppTest, name: str, content: bytes, mime: str = "image/png") -> AppTest:
    at.segmented_control(key="draw_source").set_value("Upload an image").run()
    at.file_uploader(key="draw_upload").set_value((name, content, mime)).run()
    assert not at.exception, at.exception
    return at


def test_without_runs_the_page_says_how_to_train_one_and_still_shows_the_steps():
    at = open_draw()
    assert "No trained model yet" in texts(at)
    assert any("train" in link.proto.page.lower() for link in at.get("page_link"))
    assert "python -m mnist_lab train" in texts(at)
    assert "Draw a digit" in texts(at)  # the canvas is empty in a headless run
    assert {toggle.label for toggle in at.toggle} == {"Remove specks", "Crop to ink", "Deskew", "Keep aspect ratio",
                                                      "Anti-aliasing", "Centre of mass"}
    assert not at.toggle(key="draw_step_deskew").value and at.toggle(key="draw_step_crop").value
    assert not at.multiselect  # no models to choose


@pytest.mark.slow
def test_an_uploaded_digit_is_predicted_by_each_chosen_model(trained_run, real_mnist):
    at = open_draw()
    assert at.multiselect(key="draw_run_ids").value == [trained_run["id"]]
    assert "Draw a digit" in texts(at)
    digit, label = real_mnist.x_test[0], int(real_mnist.y_test[0])
    upload(at, "photo.png", png(digit, size=300, dark_on_light=True))
    assert guesses(at) == [str(label)]
    assert "Dark ink on light paper: inverted" in texts(at)
    assert at.session_state["selected_run_ids"] == [trained_run["id"]]  # shared with the Compare page
    # The why: a saliency map for the guess and one feature-map grid per convolution layer.
    assert f"**SmoothGrad saliency** for the guess {label}" in texts(at)
    captions = [caption for image in at.image for caption in image.captions]
    assert sum(caption.startswith("Layer ") for caption in captions) == 3  # seed-3layer's three convolutions
    assert "Ink found" in captions and "In the 28x28 field" in captions
    # Switching steps off changes what the model sees but never breaks the page.
    for toggle in at.toggle:
        toggle.set_value(False)
    at.run()
    assert not at.exception and len(guesses(at)) == 1


@pytest.mark.slow
def test_two_models_side_by_side(trained_run, real_mnist):
    store = RunStore()
    second = store.create("second net", trained_run["architecture"], trained_run["settings"])
    shutil.copy(store.model_path(trained_run["id"]), store.model_path(second["id"]))
    store.update(second["id"], status="stopped", test_accuracy=0.9)
    at = open_draw()
    assert set(at.multiselect(key="draw_run_ids").value) == {trained_run["id"], second["id"]}
    upload(at, "digit.png", png(real_mnist.x_test[1]))
    assert len(guesses(at)) == 2 and guesses(at)[0] == guesses(at)[1]  # the same weights
    assert at.segmented_control(key="draw_explained").value == trained_run["id"]  # the more accurate first
    at.multiselect(key="draw_run_ids").set_value([trained_run["id"]]).run()
    assert len(guesses(at)) == 1 and not [widget for widget in at.segmented_control if widget.key == "draw_explained"]


@pytest.mark.parametrize("content, message", [
    (b"this is a text file", "not an image"),
    (png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))[:2000], "damaged"),
])
def test_bad_uploads_get_a_message(content, message):
    at = upload(open_draw(), "digit.png", content)
    assert any(message in error.value for error in at.error)


def _bomb() -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_upload_gets_a_message():
    at = upload(open_draw(), "bomb.png", _bomb())
    assert any("too large to open safely" in error.value for error in at.error)


def test_a_blank_upload_asks_for_a_digit():
    at = upload(open_draw(), "blank.png", png(np.full((200, 200), 250, np.uint8)))
    assert "No digit found" in texts(at)


def test_undo_drops_the_last_stroke_and_clear_starts_a_new_canvas():
    strokes = [{"type": "Path", "path": [["M", 1, 1]]}, {"type": "Path", "path": [["M", 2, 2]]}]
    at = open_draw(draw_initial_drawing={"objects": strokes})
    undo = next(button for button in at.button if button.label == "Undo stroke")
    assert not undo.disabled
    undo.click().run()
    assert at.session_state["draw_initial_drawing"]["objects"] == strokes[:1]
    generation = at.session_state["draw_canvas_generation"]
    next(button for button in at.button if button.label == "Clear").click().run()
    assert at.session_state["draw_canvas_generation"] == generation + 1
    assert at.session_state["draw_initial_drawing"] is None
    assert next(button for button in at.button if button.label == "Undo stroke").disabled


@pytest.mark.slow
def test_keep_score_and_delete_handwriting_samples(trained_run, real_mnist):
    at = open_draw()
    mine = HandwritingSet(owner=at.session_state["learner_id"])  # the learner's own set
    digit, label = real_mnist.x_test[2], int(real_mnist.y_test[2])
    upload(at, "mine.png", png(digit, size=140))
    keep = next(button for button in at.button if button.label == "Keep it in my set")
    keep.click().run()
    assert "Choose which digit you drew" in texts(at) and len(mine) == 0
    at.pills(key="draw_sample_label").set_value(label).run()
    next(button for button in at.button if button.label == "Keep it in my set").click().run()
    samples = mine.samples()
    assert [sample.label for sample in samples] == [label] and samples[0].raw_path is not None
    assert f"Kept as a {label}" in texts(at)
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert row["run"] == f"{trained_run['name']} ({100 * trained_run['test_accuracy']:.1f} %)"
    assert row["my handwriting"] == 1.0
    assert row["gap (points)"] == pytest.approx((trained_run["test_accuracy"] - 1.0) * 100)
    at.multiselect(key="draw_delete_ids").set_value([samples[0].id]).run()
    next(button for button in at.button if button.label == "Delete").click().run()
    assert len(mine) == 0 and "Your set is empty" in texts(at)


# --- in Chromium ----------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_drawn_digits_are_predicted_in_the_browser(trained_run, app_server, page):
    open_page(page, app_server)  # the home page first: it installs the app's navigation
    page.get_by_role("link", name="Draw").first.click()
    wait_idle(page)
    page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
    wait_canvas_ready(page)
    guess = page.locator("[data-testid='draw-guess']")
    for digit, strokes in CANVAS_DIGITS.items():
        draw_on_canvas(page, strokes)
        expect(guess).to_have_count(1, timeout=60_000)
        expect(guess.first).to_contain_text(f"{digit} ", timeout=60_000)
        wait_idle(page)
        if digit != "7":  # the 7, drawn last, stays for the undo below
            clear_canvas(page)
    # Two more strokes, then undo them one by one: the crop (its caption) follows each step back to the 7.
    crop = page.get_by_text(re.compile(r"^Cropped to \d+x\d+$"))
    seven_crop = crop.inner_text()
    draw_on_canvas(page, [[(30, 150), (250, 150)]])
    expect(crop).not_to_have_text(seven_crop)
    wider_crop = crop.inner_text()
    draw_on_canvas(page, [[(110, 15), (170, 15)]])
    expect(crop).not_to_have_text(wider_crop)
    undo = page.get_by_role("button", name="Undo stroke", exact=True)
    undo.click()
    expect(crop).to_have_text(wider_crop)
    undo.click()
    expect(crop).to_have_text(seven_crop)
    expect(guess.first).to_contain_text("7 ")
    page.get_by_text("SmoothGrad saliency").first.wait_for()
    expect(page.get_by_text("Layer 1: Conv2D 64 3x3")).to_have_count(1)
    page.get_by_role("heading", name="What the model sees").scroll_into_view_if_needed()


# --- names as typed, layout at two screen sizes ---------------------------------------------------

COVERING_NAME = '<div style="position:fixed;inset:0;z-index:9999;background:red">'
MARKDOWN_NAME = "[click me](http://example.invalid/x) ![seen](http://example.invalid/y.png) **bold**"


def test_run_names_are_shown_as_typed_never_as_markup():
    store = RunStore()
    for name in (COVERING_NAME, MARKDOWN_NAME):
        install_untrained_run(store, name)
    blob = np.zeros((200, 200), np.uint8)
    blob[40:160, 90:110] = 255
    at = upload(open_draw(), "bar.png", png(blob))
    assert len(guesses(at)) == 2
    for markdown in at.markdown:
        if markdown.proto.allow_html:
            assert "div style" not in markdown.value and "example.invalid" not in markdown.value, markdown.value
    shown = {f"{COVERING_NAME} (50.0 %)", f"{MARKDOWN_NAME} (50.0 %)"}  # with their accuracy
    assert {text.value for text in at.text} >= shown  # st.text: shown as typed
    explained = at.segmented_control(key="draw_explained")
    assert {option.content for option in explained.proto.options} == {markdown_text(name) for name in shown}


def open_draw_in_browser(page, app_server):
    open_page(page, app_server, "draw")
    page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
    wait_canvas_ready(page)


@pytest.mark.browser
def test_names_with_markup_show_as_text_in_the_browser(app_server, browser):
    store = RunStore()
    for name in (COVERING_NAME, MARKDOWN_NAME):
        install_untrained_run(store, name)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        open_draw_in_browser(page, app_server)
        draw_on_canvas(page, CANVAS_DIGITS["7"])
        expect(page.locator("[data-testid='draw-guess']")).to_have_count(2, timeout=60_000)
        wait_idle(page)
        assert page.evaluate("() => [...document.querySelectorAll('div')].filter(element =>"
                             " getComputedStyle(element).position === 'fixed'"
                             " && getComputedStyle(element).backgroundColor === 'rgb(255, 0, 0)').length") == 0
        live = page.locator("a[href*='example.invalid'], img[src*='example.invalid']")
        assert live.count() == 0, live.evaluate_all("elements => elements.map(element => element.parentElement.outerHTML)")
        expect(page.get_by_text(f"{COVERING_NAME} (50.0 %)", exact=True).first).to_be_visible()
        # As typed; an invisible word joiner after "http" keeps the address from becoming a link.
        as_typed = re.compile("^" + re.escape(MARKDOWN_NAME).replace("http", "http\u2060?") + re.escape(" (50.0 %)") + "$")
        expect(page.get_by_text(as_typed).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "draw-names-as-text.png"), full_page=True)
    finally:
        context.close()


def box_of(page, locator) -> dict:
    locator.first.wait_for()
    return locator.first.bounding_box()


@pytest.mark.browser
@pytest.mark.parametrize("width, height", [(1280, 720), (390, 844)], ids=["laptop", "phone"])
def test_the_guess_is_beside_the_canvas_or_right_after_it(app_server, browser, width, height):
    install_untrained_run(RunStore(), "tiny net")
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_draw_in_browser(page, app_server)
        canvas = box_of(page, page.locator("canvas").last)
        draw_on_canvas(page, CANVAS_DIGITS["7"])
        guess_locator = page.locator("[data-testid='draw-guess']")
        expect(guess_locator).to_have_count(1, timeout=60_000)
        wait_idle(page)
        page.evaluate("() => window.scrollTo(0, 0)")
        canvas = box_of(page, page.locator("canvas").last)
        guess = box_of(page, guess_locator)
        clear = box_of(page, page.get_by_role("button", name="Clear", exact=True))
        slider = box_of(page, page.get_by_role("slider"))
        page.screenshot(path=str(ARTIFACTS / f"draw-layout-{width}x{height}.png"))
        if width >= 1000:
            assert guess["x"] >= canvas["x"] + canvas["width"], (guess, canvas)  # beside the canvas
            assert guess["y"] + guess["height"] <= height and canvas["y"] + canvas["height"] <= height
            assert clear["y"] + clear["height"] <= height, clear  # in view without scrolling
        else:
            gap = guess["y"] - (canvas["y"] + canvas["height"])
            assert 0 <= gap <= 320, (guess, canvas)  # right after the canvas and its controls
        # Nothing covers the pen-width slider, nor what is above the canvas, even while the pointer is on the canvas.
        page.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
        for x, y in [(slider["x"] + slider["width"] / 2, slider["y"] + slider["height"] / 2),
                     (canvas["x"] + canvas["width"] - 30, canvas["y"] - 20)]:
            covered = page.evaluate("([x, y]) => { const hit = document.elementFromPoint(x, y);"
                                    " return !!hit && !!hit.closest(\"[class*='st-key-draw_canvas_']\")"
                                    " && !hit.closest('canvas'); }", [x, y])
            assert not covered, (x, y)
        # Every preprocessing switch's label reads in full, at either width.
        labels = page.get_by_test_id("stCheckbox").filter(has=page.get_by_role("switch"))
        expect(labels).to_have_count(6)
        cut = labels.evaluate_all("elements => elements.flatMap(element => [...element.querySelectorAll('p')])"
                                  ".filter(text => text.scrollWidth > text.clientWidth + 1).map(text => text.textContent)")
        assert cut == [], cut
    finally:
        context.close()


def test_a_blot_is_said_not_to_look_like_a_digit():
    blot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(blot).ellipse([80, 80, 200, 200], fill=255)
    at = upload(open_draw(), "blot.png", png(np.asarray(blot)))
    assert any("This does not look like a digit" in warning.value and "blot or a scribble" in warning.value
               for warning in at.warning)


# --- a classroom: each learner's own handwriting, the teacher's pins, whose run is whose ----------------

def keep_upload(at: AppTest, image: np.ndarray, label: int) -> AppTest:
    upload(at, "mine.png", png(image, size=140))
    at.pills(key="draw_sample_label").set_value(label).run()
    next(button for button in at.button if button.label == "Keep it in my set").click().run()
    assert not at.exception and f"Kept as a {label}" in texts(at)
    return at


def test_a_learner_never_sees_another_learners_handwriting():
    from mnist_lab.classroom import learners

    ada_key, ben_key = "a" * 24, "b" * 24
    blob = np.zeros((28, 28), np.uint8)
    blob[4:24, 12:16] = 255
    ada = keep_upload(open_draw(learner_key=ada_key), blob, 1)
    ben = open_draw(learner_key=ben_key)
    assert "Your set is empty" in texts(ben) and not [widget for widget in ben.multiselect
                                                       if widget.key == "draw_delete_ids"]
    assert len(HandwritingSet(owner=learners.learner_id(ada_key))) == 1
    assert len(HandwritingSet(owner=learners.learner_id(ben_key))) == 0 and len(HandwritingSet()) == 0
    keep_upload(ben, blob, 7)  # Ben's sample goes to Ben's set; Ada still sees only her own
    ada.run()
    assert ada.multiselect(key="draw_delete_ids").options == ["1: a 1"]
    assert [sample.label for sample in HandwritingSet(owner=learners.learner_id(ada_key)).samples()] == [1]


def test_the_picker_opens_with_the_pinned_model_else_the_most_accurate_and_says_whose_each_is(monkeypatch):
    from mnist_lab.classroom import classroom

    store = RunStore()
    weak = install_untrained_run(store, "weak", test_accuracy=0.5)
    best = install_untrained_run(store, "best", test_accuracy=0.979)
    install_untrained_run(store, "middle", test_accuracy=0.7)
    ada = store.update(best["id"], owner="a" * 16, owner_name="Ada", name="Ada · seed-3layer · 1 epoch")
    ben = store.update(weak["id"], owner="b" * 16, owner_name="Ben", name="seed-3layer · 1 epoch")
    at = open_draw()
    picker = at.multiselect(key="draw_run_ids")
    assert picker.value[0] == best["id"] and len(picker.value) == 2 and weak["id"] not in picker.value  # not the newest
    shown = {option for option in picker.options}
    assert "Ada · seed-3layer · 1 epoch (97.9 %)" in shown  # the owner's name is not repeated
    assert "Ben · seed-3layer · 1 epoch (50.0 %)" in shown  # the same settings, told apart by owner and accuracy
    assert ada["owner_name"] == "Ada" and ben["owner_name"] == "Ben"
    classroom.Room(store).pin(weak["id"])
    at = open_draw()
    assert at.multiselect(key="draw_run_ids").value[0] == weak["id"]


# --- the epoch slider, Grad-CAM ------------------------------------------------------------------------

@pytest.fixture
def two_epoch_run(trained_folder, tmp_path_factory):
    return install_run(two_epoch_folder(tmp_path_factory, data.load_mnist(), trained_folder), RunStore(),
                       owner="a" * 16, owner_name="Ada")


def uncaptioned(at) -> list:
    """The page's images without a caption: the saliency and Grad-CAM maps (every other picture has one)."""
    return [image for image in at.image if not any(image.captions)]


def epoch_line(at) -> str:
    lines = [markdown.value for markdown in at.markdown if "draw-epoch-guess" in markdown.value]
    assert len(lines) == 1, lines
    return lines[0].split(">", 1)[1].rsplit("<", 1)[0]


def shown_probabilities(at) -> list[list[float]]:
    """The probabilities of every bar chart on the page, in page order (charts carry their data as Arrow)."""
    import pyarrow

    found = []
    for chart in at.get("vega_lite_chart"):
        for dataset in chart.proto.datasets:
            table = pyarrow.ipc.open_stream(dataset.data.data).read_pandas()
            if "probability" in table.columns:
                found.append(list(table["probability"]))
    return found


@pytest.mark.slow
def test_the_epoch_slider_shows_the_guess_of_each_kept_epoch(two_epoch_run, real_mnist):
    from mnist_lab.evaluation import inference
    from mnist_lab.images import preprocessing, uploads

    digit = real_mnist.x_test[0]
    content = png(digit, size=300, dark_on_light=True)
    at = upload(open_draw(), "photo.png", content)
    slider = at.select_slider(key=f"draw_epoch_{two_epoch_run['id']}")
    assert slider.options == ["epoch 1", "epoch 2"] and slider.value == 2
    assert "Slide back to see this net as it was after each epoch" in texts(at)
    assert epoch_line(at).startswith("Epoch 2: ")
    last_charts = shown_probabilities(at)
    slider.set_value(1).run()
    assert not at.exception
    line = epoch_line(at)
    store = RunStore()
    ink, dark = uploads.read_ink(content)
    image = uploads.preprocess_found_ink(ink, dark, preprocessing.Options()).image
    first = inference.predict(inference.epoch_model(store, two_epoch_run["id"], 1), image)
    last = inference.predict(inference.epoch_model(store, two_epoch_run["id"], 2), image)
    assert not np.allclose(first, last, atol=0.01)  # the net learned between the two
    epoch_one, epoch_two = line.split(" · ")
    assert epoch_one.startswith("Epoch 1: ") and str(int(first.argmax())) in epoch_one
    assert epoch_two.startswith("Epoch 2: ") and str(int(last.argmax())) in epoch_two
    charts = shown_probabilities(at)
    assert charts[0] == pytest.approx(last_charts[0])  # the guess at the top stays the run's own
    assert charts[1] == pytest.approx(list(first), abs=1e-6)  # the slider's chart is epoch 1's
    assert f"for the guess {int(first.argmax())} after epoch 1" in texts(at)


@pytest.mark.slow
def test_a_run_of_one_kept_epoch_has_no_slider_and_says_why(trained_run, real_mnist):
    RunStore().save_epoch_weights(trained_run["id"], 1, RunStore().load_model(trained_run["id"]))
    at = upload(open_draw(), "digit.png", png(real_mnist.x_test[3]))
    assert not at.select_slider and "kept its weights after one epoch only" in texts(at)


@pytest.mark.slow
def test_grad_cam_sits_beside_the_saliency_map_and_says_what_each_shows(trained_run, real_mnist):
    at = upload(open_draw(), "digit.png", png(real_mnist.x_test[4]))
    shown = texts(at)
    guess = guesses(at)[0]
    assert f"**SmoothGrad saliency** for the guess {guess}" in shown
    assert f"**Grad-CAM** for the guess {guess}" in shown and "3x3 grid, so it is coarse" in shown
    assert "**Why the two maps differ.**" in shown and "*which input pixels*" in shown
    assert "kept no weights of earlier epochs" in shown  # an older run: no slider, a caption why
    assert len(uncaptioned(at)) == 2  # the two maps' images


def test_an_empty_grad_cam_is_said_in_words(monkeypatch):
    from mnist_lab.evaluation import explanation

    install_untrained_run(RunStore(), "tiny net")
    monkeypatch.setattr(explanation, "grad_cam", lambda model, image, class_index: np.zeros((28, 28), "float32"))
    blob = np.zeros((200, 200), np.uint8)
    blob[40:160, 90:110] = 255
    at = upload(open_draw(), "bar.png", png(blob))
    assert any("Grad-CAM is empty" in info.value for info in at.info)
    assert len(uncaptioned(at)) == 1  # the saliency map's image alone, no blank Grad-CAM image


@pytest.mark.browser
@pytest.mark.slow
def test_moving_the_epoch_slider_shows_that_epochs_guess_in_the_browser(two_epoch_run, app_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_draw_in_browser(page, app_server)
        draw_on_canvas(page, CANVAS_DIGITS["7"])
        guess = page.locator("[data-testid='draw-guess']")
        expect(guess).to_have_count(1, timeout=60_000)
        epoch_guess = page.locator("[data-testid='draw-epoch-guess']")
        expect(epoch_guess).to_contain_text("Epoch 2: ", timeout=60_000)
        wait_idle(page)
        page.evaluate("() => window.scrollTo(0, 0)")
        canvas, shown = box_of(page, page.locator("canvas").last), box_of(page, guess)
        assert shown["x"] >= canvas["x"] + canvas["width"] and shown["y"] + shown["height"] <= 720  # beside it
        page.screenshot(path=str(ARTIFACTS / "draw-epochs-1280x720-top.png"))
        last_epoch = epoch_guess.inner_text()
        slider = page.get_by_test_id("stSlider").filter(has_text="Epoch").get_by_role("slider")
        slider.scroll_into_view_if_needed()
        slider.focus()
        slider.press("Home")
        expect(epoch_guess).to_contain_text("Epoch 1: ", timeout=60_000)
        expect(epoch_guess).to_contain_text(" · Epoch 2: ")
        wait_idle(page)
        assert epoch_guess.inner_text() != last_epoch
        expect(page.get_by_text(re.compile(r"SmoothGrad saliency for the guess \d after epoch 1"))).to_be_visible(timeout=60_000)
        expect(guess.first).to_have_text(re.compile(r"^7 "))  # the guess at the top is still the run's own
        page.get_by_role("heading", name="Why").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "draw-epochs-1280x720-slider.png"))
    finally:
        context.close()
