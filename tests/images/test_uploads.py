"""Uploads and photos: image files and photos of digits on paper become MNIST-like 28x28 images; files
that are not images, damaged or too big get a message that says what to change."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from draw_support import SEVEN, canvas_pixels, draw_strokes, png_bytes, seven, similarity
from mnist_lab.images import uploads
from mnist_lab.images.canvas import preprocess_canvas
from mnist_lab.images.preprocessing import preprocess
from mnist_lab.images.uploads import ImageError, preprocess_upload


def test_dark_ink_on_light_paper_is_inverted():
    light_on_dark = seven()
    dark_on_light = draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9), ink=0, paper=255)
    first = preprocess_upload(png_bytes(light_on_dark))
    second = preprocess_upload(png_bytes(dark_on_light))
    assert not first.dark_on_light and second.dark_on_light
    assert similarity(first.image, second.image) > 0.98


def test_a_photo_of_a_digit_on_paper_matches_the_drawing():
    """Blue ink on off-white paper, lit unevenly, with sensor noise, saved as a JPEG."""
    side = 600
    rng = np.random.default_rng(0)
    stroke = np.asarray(draw_strokes(SEVEN, side=side, box=(0.3, 0.25, 0.7, 0.75), width=0.06)) / 255.0
    light = np.linspace(0.55, 0.95, side)[None, :] * np.linspace(0.85, 1.0, side)[:, None]  # a shadow on the left
    paper = np.stack([light * 0.97, light * 0.95, light * 0.9], axis=-1)
    ink_colour = np.array([0.15, 0.2, 0.45])
    photo = paper * (1 - stroke[..., None]) + ink_colour * stroke[..., None]
    photo = np.clip(photo + rng.normal(0, 0.03, photo.shape), 0, 1)
    jpeg = png_bytes(Image.fromarray((photo * 255).astype(np.uint8)), "JPEG", quality=80)
    result = preprocess_upload(jpeg)
    assert result.dark_on_light
    assert not result.specks.sum() > 0.01 * result.specks.size  # the shadow and the noise are not ink
    assert similarity(result.image, preprocess_canvas(canvas_pixels(seven())).image) > 0.9


def test_transparent_png_with_black_ink_uses_the_alpha():
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    stroke = draw_strokes(SEVEN, side=200, box=(0.2, 0.1, 0.8, 0.9))
    rgba.putalpha(stroke)
    result = preprocess_upload(png_bytes(rgba))
    assert not result.empty
    assert similarity(result.image, preprocess_canvas(canvas_pixels(seven(side=200))).image) > 0.95


def test_an_upload_of_an_mnist_digit_comes_back_almost_unchanged():
    mnist_like = draw_strokes(SEVEN, side=28, box=(0.25, 0.15, 0.75, 0.85), width=0.12)
    prepared = preprocess(np.asarray(mnist_like) / 255.0)
    uploaded = preprocess_upload(png_bytes(mnist_like))
    assert similarity(prepared.image, uploaded.image) > 0.97


def test_a_blank_upload_finds_no_digit():
    result = preprocess_upload(png_bytes(Image.new("L", (300, 200), 240)))
    assert result.empty and "No digit" in result.message


def test_files_that_are_not_images_get_a_message(tmp_path):
    with pytest.raises(ImageError, match="not an image"):
        uploads.read_image(b"hello, this is text and not a picture")
    with pytest.raises(ImageError, match="empty"):
        uploads.read_image(b"")
    with pytest.raises(ImageError, match="Cannot read"):
        uploads.read_image(tmp_path / "missing.png")


def test_a_corrupt_image_gets_a_message():
    whole = png_bytes(seven())
    with pytest.raises(ImageError, match="damaged"):
        uploads.read_image(whole[: len(whole) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims to be width x height (a decompression bomb's header) with almost no data."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [9_000, 40_000])  # over this lab's limit; over Pillow's own
def test_a_decompression_bomb_is_refused_before_it_is_unpacked(side):
    with pytest.raises(ImageError, match="too large"):
        uploads.read_image(_png_header_only(side, side))


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    with pytest.raises(ImageError, match="limit"):
        uploads.read_image(b"\x89PNG" + b"\x00" * 2000, max_bytes=1000)
    path = tmp_path / "big.png"
    path.write_bytes(b"\x00" * 2000)
    with pytest.raises(ImageError, match="limit"):
        uploads.read_image(path, max_bytes=1000)


def test_a_sideways_phone_photo_is_turned_upright():
    upright = draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9), ink=0, paper=255).convert("RGB")
    stored = upright.rotate(90, expand=True)  # the sensor's orientation; EXIF says how to turn it back
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to view
    result = preprocess_upload(png_bytes(stored, "JPEG", quality=90, exif=exif.tobytes()))
    assert similarity(result.image, preprocess_upload(png_bytes(upright, "JPEG", quality=90)).image) > 0.95


def test_a_file_over_the_limit_states_both_sizes_in_one_unit():
    limit = 20 * 2**20
    with pytest.raises(ImageError, match=r"The file is 21\.0 MB; the limit is 20\.0 MB\."):
        uploads.read_image(b"\x00" * (21 * 2**20), max_bytes=limit)


def test_a_lab_tiff_is_read_by_its_lightness():
    grey = draw_strokes(SEVEN, side=120, box=(0.2, 0.1, 0.8, 0.9), ink=0, paper=255)
    lab = preprocess_upload(png_bytes(grey.convert("RGB").convert("LAB"), "TIFF"))
    assert lab.dark_on_light and similarity(lab.image, preprocess_upload(png_bytes(grey)).image) > 0.98


def test_any_decoding_failure_is_an_image_error(monkeypatch):
    """Whatever a decoder raises on a damaged file (here NotImplementedError, as DDS's does), the learner
    gets an ImageError that says what to do."""
    from PIL import ImageFile

    def broken_load(self):
        raise NotImplementedError("Unimplemented pixel format 'x'")

    data = png_bytes(seven())
    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(ImageError, match="damaged.*Unimplemented pixel format.*PNG or JPEG"):
        uploads.read_image(data)
