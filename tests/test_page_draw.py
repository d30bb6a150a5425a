"""Draw page: headless (AppTest) without runs, with a trained run through the upload path, bad uploads,
undo/clear state, the handwriting set; and in Chromium, digits drawn with the mouse."""

from __future__ import annotations

import io
import math
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

from conftest import ARTIFACTS, open_app_page, open_page, page_texts, wait_idle
from draw_support import install_run, install_untrained_run, trained_model_folder
from mnist_lab import data
from mnist_lab.handwriting import HandwritingSet
from mnist_lab.runs import RunStore
from mnist_lab.teaching import markdown_text


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
    assert f"**Saliency** for the guess {label}" in texts(at)
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
    assert at.segmented_control(key="draw_explained").value == second["id"]
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
    digit, label = real_mnist.x_test[2], int(real_mnist.y_test[2])
    upload(at, "mine.png", png(digit, size=140))
    keep = next(button for button in at.button if button.label == "Keep it in my set")
    keep.click().run()
    assert "Choose which digit you drew" in texts(at) and len(HandwritingSet()) == 0
    at.pills(key="draw_sample_label").set_value(label).run()
    next(button for button in at.button if button.label == "Keep it in my set").click().run()
    samples = HandwritingSet().samples()
    assert [sample.label for sample in samples] == [label] and samples[0].raw_path is not None
    assert f"Kept as a {label}" in texts(at)
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert row["run"] == trained_run["name"] and row["my handwriting"] == 1.0
    assert row["gap (points)"] == pytest.approx((trained_run["test_accuracy"] - 1.0) * 100)
    at.multiselect(key="draw_delete_ids").set_value([samples[0].id]).run()
    next(button for button in at.button if button.label == "Delete").click().run()
    assert len(HandwritingSet()) == 0 and "Your set is empty" in texts(at)


# --- in Chromium ----------------------------------------------------------------------------------

DIGITS = {
    "1": [[(150, 45), (138, 235)]],
    "0": [[(140 + 58 * math.sin(step / 24 * 2 * math.pi), 140 - 90 * math.cos(step / 24 * 2 * math.pi))
           for step in range(25)]],
    "7": [[(75, 55), (205, 55), (115, 238)]],
}


def wait_canvas_ready(page):
    """A new canvas takes strokes once it has loaded its (empty) drawing, which paints its background black."""
    lower = page.locator("canvas.lower-canvas").last.element_handle()
    page.wait_for_function("canvas => { const pixel = canvas.getContext('2d').getImageData(2, 2, 1, 1).data;"
                           " return pixel[3] === 255 && pixel[0] === 0; }", arg=lower)


def draw(page, strokes):
    canvas = page.locator("canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()


@pytest.mark.browser
@pytest.mark.slow
def test_drawn_digits_are_predicted_in_the_browser(trained_run, app_server, page):
    open_page(page, app_server)  # the home page first: it installs the app's navigation
    page.get_by_role("link", name="Draw").first.click()
    wait_idle(page)
    page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
    wait_canvas_ready(page)
    guess = page.locator("[data-testid='draw-guess']")
    for digit, strokes in DIGITS.items():
        draw(page, strokes)
        expect(guess).to_have_count(1, timeout=60_000)
        expect(guess.first).to_contain_text(f"{digit} ", timeout=60_000)
        wait_idle(page)
        if digit != "7":
            old_canvas = page.locator("canvas").last.element_handle()
            page.get_by_role("button", name="Clear", exact=True).click()
            page.wait_for_function("canvas => !canvas.isConnected", arg=old_canvas)  # a new canvas replaced it
            wait_idle(page)
            page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
            wait_canvas_ready(page)
    # Two more strokes, then undo them one by one: the crop (its caption) follows each step back to the 7.
    crop = page.get_by_text(re.compile(r"^Cropped to \d+x\d+$"))
    seven_crop = crop.inner_text()
    draw(page, [[(30, 150), (250, 150)]])
    expect(crop).not_to_have_text(seven_crop)
    wider_crop = crop.inner_text()
    draw(page, [[(110, 15), (170, 15)]])
    expect(crop).not_to_have_text(wider_crop)
    undo = page.get_by_role("button", name="Undo stroke", exact=True)
    undo.click()
    expect(crop).to_have_text(wider_crop)
    undo.click()
    expect(crop).to_have_text(seven_crop)
    expect(guess.first).to_contain_text("7 ")
    page.get_by_text("Saliency").first.wait_for()
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
    assert {text.value for text in at.text} >= {COVERING_NAME, MARKDOWN_NAME}  # st.text: shown as typed
    explained = at.segmented_control(key="draw_explained")
    assert {option.content for option in explained.proto.options} == {markdown_text(COVERING_NAME),
                                                                       markdown_text(MARKDOWN_NAME)}


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
        draw(page, DIGITS["7"])
        expect(page.locator("[data-testid='draw-guess']")).to_have_count(2, timeout=60_000)
        wait_idle(page)
        assert page.evaluate("() => [...document.querySelectorAll('div')].filter(element =>"
                             " getComputedStyle(element).position === 'fixed'"
                             " && getComputedStyle(element).backgroundColor === 'rgb(255, 0, 0)').length") == 0
        live = page.locator("a[href*='example.invalid'], img[src*='example.invalid']")
        assert live.count() == 0, live.evaluate_all("elements => elements.map(element => element.parentElement.outerHTML)")
        expect(page.get_by_text(COVERING_NAME, exact=True).first).to_be_visible()
        # As typed; an invisible word joiner after "http" keeps the address from becoming a link.
        as_typed = re.compile("^" + re.escape(MARKDOWN_NAME).replace("http", "http\u2060?") + "$")
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
        draw(page, DIGITS["7"])
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
    finally:
        context.close()


def test_a_blot_is_said_not_to_look_like_a_digit():
    blot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(blot).ellipse([80, 80, 200, 200], fill=255)
    at = upload(open_draw(), "blot.png", png(np.asarray(blot)))
    assert any("This does not look like a digit" in warning.value and "blot or a scribble" in warning.value
               for warning in at.warning)
