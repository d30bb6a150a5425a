"""Preprocessing: ink becomes an MNIST-like 28x28 image whatever its size, place or specks; each step can
be switched off; thick, slanted, tiny or blotted ink."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from draw_support import (SEVEN, canvas_pixels, draw_strokes, mnist_on_canvas, png_bytes, seven, similarity,
                          trained_model_folder)
from mnist_lab import data
from mnist_lab.evaluation import inference
from mnist_lab.images import canvas, preprocessing
from mnist_lab.images.preprocessing import Options, preprocess
from mnist_lab.images.canvas import preprocess_canvas
from mnist_lab.images.uploads import preprocess_upload
from mnist_lab.runs import RunStore


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """seed-3layer trained on all of MNIST for one epoch (trained once per session)."""
    if not os.environ.get("MNIST_LAB_DATA"):
        pytest.skip("MNIST_LAB_DATA is not set")
    folder = trained_model_folder(tmp_path_factory, data.load_mnist())
    return RunStore(folder.parent).load_model(folder.name)


# --- the MNIST steps ------------------------------------------------------------------------------

def test_result_has_mnist_geometry():
    result = preprocess_canvas(canvas_pixels(seven()))
    assert not result.empty
    assert result.image.shape == (28, 28) and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert max(result.scaled.shape) == preprocessing.BOX
    rows, columns = np.nonzero(result.image > 0.05)
    assert rows.max() - rows.min() + 1 <= 21 and columns.max() - columns.min() + 1 <= 21
    row, column = result.centre_of_mass
    assert abs(row - preprocessing.CENTRE) <= 0.5 and abs(column - preprocessing.CENTRE) <= 0.5


def test_small_digit_in_a_corner_and_large_digit_in_the_centre_give_nearly_the_same_input():
    small = preprocess_canvas(canvas_pixels(seven(box=(0.02, 0.03, 0.22, 0.255))))
    large = preprocess_canvas(canvas_pixels(seven(box=(0.1, 0.05, 0.9, 0.95))))
    assert small.box[0] < 15 and small.box[1] < 15  # it really was in the corner
    assert similarity(small.image, large.image) > 0.9
    assert np.abs(small.image - large.image).mean() < 0.05
    # A plain resize of the whole canvas, what the steps replace, does not get there.
    naive = [np.asarray(Image.fromarray((canvas.ink_from_canvas(canvas_pixels(picture)) * 255)
                                        .astype(np.uint8)).resize((28, 28), Image.Resampling.LANCZOS)) / 255.0
             for picture in (seven(box=(0.02, 0.03, 0.22, 0.255)), seven(box=(0.1, 0.05, 0.9, 0.95)))]
    assert similarity(*naive) < 0.5


def test_mnist_digits_come_through_unchanged(real_mnist):
    """The steps reproduce MNIST's own: a test digit comes out as it went in."""
    images = real_mnist.x_test[:500].astype("float32") / 255.0
    results = np.array([preprocess(image).image for image in images])
    assert np.abs(results - images).max() < 1e-3


@pytest.mark.slow
def test_mnist_accuracy_through_the_preprocessing_stays_within_half_a_point(real_mnist, trained_model):
    raw = inference.accuracy(trained_model, real_mnist.x_test, real_mnist.y_test)
    prepared = np.array([preprocess(image / 255.0).image for image in real_mnist.x_test])
    through = inference.accuracy(trained_model, prepared, real_mnist.y_test)
    assert raw > 0.9
    assert abs(through - raw) <= 0.005, (raw, through)


@pytest.mark.slow
def test_mnist_digits_drawn_anywhere_at_any_size_are_recognised(real_mnist, trained_model):
    """Digits enlarged to 60..250 pixels and put anywhere on a 280-pixel canvas: the steps undo that."""
    rng = np.random.default_rng(1)
    images, labels = real_mnist.x_test[:400], real_mnist.y_test[:400]
    canvases, naive = [], []
    for digit in images:
        size = int(rng.integers(60, 250))
        left, top = (int(value) for value in rng.integers(0, 280 - size, size=2))
        canvas = mnist_on_canvas(digit, 280, left, top, size)
        canvases.append(preprocess(canvas).image)
        naive.append(np.asarray(Image.fromarray(canvas).resize((28, 28), Image.Resampling.BOX)))
    raw = inference.accuracy(trained_model, images, labels)
    through = inference.accuracy(trained_model, np.array(canvases), labels)
    plain_resize = inference.accuracy(trained_model, np.array(naive), labels)
    assert through >= raw - 0.03, (raw, through)
    assert plain_resize < through - 0.2, (plain_resize, through)


def test_each_step_can_be_switched_off():
    picture = canvas_pixels(draw_strokes([[(0.5, 0.05), (0.5, 0.95)]], box=(0.05, 0.05, 0.5, 0.6)))  # a 1, top left
    full = preprocess_canvas(picture)
    no_crop = preprocess_canvas(picture, Options(crop=False))
    assert no_crop.box == (0, 0, 280, 280)
    assert no_crop.image.sum() < full.image.sum() / 2  # the whole canvas was scaled: a small digit
    squashed = preprocess_canvas(picture, Options(keep_aspect=False))
    assert squashed.scaled.shape == (20, 20) and full.scaled.shape[1] < 8
    jagged = preprocess_canvas(picture, Options(anti_alias=False))
    assert len(np.unique(jagged.scaled)) < len(np.unique(full.scaled))
    seven_pixels = canvas_pixels(seven())
    centred = preprocess_canvas(seven_pixels)
    box_centred = preprocess_canvas(seven_pixels, Options(centre_of_mass=False))
    assert box_centred.offset == ((28 - box_centred.scaled.shape[0]) // 2, (28 - box_centred.scaled.shape[1]) // 2)
    assert box_centred.offset != centred.offset  # a 7's ink is heavier at the top: the centre of mass is not the box's
    assert abs(box_centred.centre_of_mass[0] - preprocessing.CENTRE) > abs(centred.centre_of_mass[0] - preprocessing.CENTRE)


def test_step_pictures_show_every_stage():
    result = preprocess_canvas(canvas_pixels(seven()))
    pictures = preprocessing.step_pictures(result, size=120)
    assert len(pictures) == 4
    assert all(picture.size == (120, 120) for _, picture in pictures)
    assert len(preprocessing.step_pictures(preprocess_canvas(None))) == 1


# --- specks and empty input -----------------------------------------------------------------------

def test_a_stray_dot_far_from_the_digit_does_not_move_it():
    clean = seven(box=(0.3, 0.2, 0.7, 0.8))
    dotted = clean.copy()
    ImageDraw.Draw(dotted).ellipse([250, 255, 266, 271], fill=255)  # the pen touched down in the corner
    with_speck = preprocess_canvas(canvas_pixels(dotted))
    assert with_speck.specks.any()
    assert np.abs(with_speck.image - preprocess_canvas(canvas_pixels(clean)).image).max() < 1e-6
    kept = preprocess_canvas(canvas_pixels(dotted), Options(remove_specks=False))
    assert kept.box[2] > 250  # without the step the crop reaches the dot and the digit shrinks
    assert similarity(kept.image, with_speck.image) < 0.8


def test_separate_strokes_of_one_digit_are_not_specks():
    # A 7 whose middle bar was drawn apart, and a 4 written in two strokes.
    seven_with_bar = draw_strokes(SEVEN + [[(0.35, 0.55), (0.75, 0.55)]], box=(0.2, 0.1, 0.8, 0.9))
    four = draw_strokes([[(0.5, 0.05), (0.15, 0.6), (0.9, 0.6)], [(0.7, 0.3), (0.7, 0.98)]], box=(0.2, 0.1, 0.8, 0.9))
    for picture in (seven_with_bar, four):
        cleaned, specks = preprocessing.remove_specks(canvas.ink_from_canvas(canvas_pixels(picture)))
        assert not specks.any()


# --- thick strokes, deskewing, doubts -------------------------------------------------------------

def lit_unevenly(picture: Image.Image) -> Image.Image:
    """Dark ink on white paper under a light that falls off from right to left and top to bottom."""
    side = picture.width
    light = np.linspace(0.6, 1.0, side)[None, :] * np.linspace(1.0, 0.85, side)[:, None]
    return Image.fromarray((np.asarray(picture, dtype="float64") * light).astype(np.uint8))


@pytest.mark.parametrize("width", [0.2, 0.3])
def test_a_thick_digit_on_paper_keeps_its_strokes(width):
    """A marker's strokes, a fifth to a third of the digit's size: the paper's lighting is not fooled by them."""
    canvas = preprocess_canvas(canvas_pixels(draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9), width=width)))
    paper = draw_strokes(SEVEN, side=800, box=(0.2, 0.1, 0.8, 0.9), width=width, ink=0, paper=255)
    for picture in (paper, lit_unevenly(paper)):
        upload = preprocess_upload(png_bytes(picture))
        assert similarity(upload.image, canvas.image) > 0.97
        assert upload.image.sum() == pytest.approx(canvas.image.sum(), rel=0.1)  # not hollow


def thickened_on_paper(digit: np.ndarray, size: int, grow: int) -> bytes:
    """An MNIST digit thickened by `grow` pixels, enlarged to `size` and saved dark on white, as a PNG."""
    from scipy import ndimage

    thick = ndimage.grey_dilation(digit, size=(grow + 1, grow + 1)) if grow else digit
    picture = Image.fromarray(255 - thick).resize((size, size), Image.Resampling.BICUBIC)
    return png_bytes(picture)


def thickened_on_canvas(digit: np.ndarray, size: int, grow: int) -> np.ndarray:
    from scipy import ndimage

    thick = ndimage.grey_dilation(digit, size=(grow + 1, grow + 1)) if grow else digit
    return np.asarray(Image.fromarray(thick).resize((size, size), Image.Resampling.BICUBIC)) / 255.0


@pytest.mark.slow
def test_thick_enlarged_mnist_digits_read_the_same_uploaded_as_drawn(real_mnist, trained_model):
    """Test digits thickened by 1 to 3 pixels and enlarged to 300 px: through the upload path (dark on
    white, as a PNG) at most 1 point below the same digits through the canvas path (600 digits: with fewer, the
    two paths' own disagreements on a model trained for one epoch moved the gap by more than a point)."""
    rng = np.random.default_rng(2)
    indices = rng.choice(len(real_mnist.x_test), size=600, replace=False)
    uploads, canvases = [], []
    for index in indices:
        grow = int(rng.integers(1, 4))
        uploads.append(preprocess_upload(thickened_on_paper(real_mnist.x_test[index], 300, grow)).image)
        canvases.append(preprocess(thickened_on_canvas(real_mnist.x_test[index], 300, grow)).image)
    labels = real_mnist.y_test[indices]
    through_upload = inference.accuracy(trained_model, np.array(uploads), labels)
    through_canvas = inference.accuracy(trained_model, np.array(canvases), labels)
    assert through_canvas > 0.85
    assert through_upload >= through_canvas - 0.01, (through_upload, through_canvas)


def test_deskewing_shears_a_slanted_stroke_upright():
    slanted = draw_strokes([[(0.8, 0.05), (0.2, 0.95)]], box=(0.2, 0.1, 0.8, 0.9), width=0.1)  # leans right
    ink = canvas.ink_from_canvas(canvas_pixels(slanted))
    assert preprocessing.skew(ink) < -0.4
    upright, removed = preprocessing.deskew(ink)
    assert removed < -0.4 and abs(preprocessing.skew(upright)) < 0.05
    off = preprocess(ink)
    on = preprocess(ink, Options(deskew=True))
    assert off.deskewed is None and off.skew == 0.0 and not Options().deskew  # off by default
    assert on.deskewed is not None and on.skew == pytest.approx(removed)
    assert on.scaled.shape[1] < off.scaled.shape[1] / 2  # an upright bar is narrow
    captions = [caption for caption, _ in preprocessing.step_pictures(on)]
    assert any(caption.startswith("Deskewed") for caption in captions) and len(captions) == 5
    straight = canvas.ink_from_canvas(canvas_pixels(draw_strokes([[(0.5, 0.05), (0.5, 0.95)]])))
    assert preprocessing.deskew(straight)[1] == pytest.approx(0.0, abs=0.01)


def test_mnist_digits_change_little_when_deskewed_and_never_break(real_mnist):
    images = real_mnist.x_test[:300].astype("float32") / 255.0
    for image in images:
        result = preprocess(image, Options(deskew=True))
        assert not result.empty and max(result.scaled.shape) == preprocessing.BOX
        assert np.isfinite(result.image).all() and abs(result.skew) <= preprocessing.MAX_SKEW


def test_ink_that_is_too_small_or_a_blot_is_doubted():
    assert preprocess_canvas(canvas_pixels(seven())).doubt == ""
    small = preprocess_canvas(canvas_pixels(seven(box=(0.05, 0.05, 0.17, 0.19))))
    assert not small.empty and re.search(r"spans only 1\d ?% of the drawing area: write the digit bigger", small.doubt)
    blot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(blot).ellipse([90, 90, 190, 190], fill=255)
    result = preprocess_canvas(canvas_pixels(blot))
    assert not result.empty and "looks like a blot or a scribble" in result.doubt


def test_mnist_digits_are_not_doubted(real_mnist):
    doubted = [preprocess(image / 255.0).doubt for image in real_mnist.x_test[:2000]]
    assert sum(bool(doubt) for doubt in doubted) <= 2
