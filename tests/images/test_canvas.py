"""The Draw page's canvas: its pixels become ink, and an empty or nearly empty canvas asks for a digit."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from draw_support import canvas_pixels
from mnist_lab.images import canvas
from mnist_lab.images.canvas import preprocess_canvas
from mnist_lab.images.preprocessing import preprocess


def test_empty_and_nearly_empty_canvases_ask_for_a_digit():
    for pixels in (None, np.zeros((280, 280, 4), np.uint8)):
        result = preprocess_canvas(pixels)
        assert result.empty and "Draw a digit" in result.message
        assert not result.image.any()
    dot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(dot).ellipse([130, 130, 141, 141], fill=255)
    result = preprocess_canvas(canvas_pixels(dot))
    assert result.empty and "Draw a digit" in result.message
    faint = np.full((280, 280), 0.05, "float32")
    assert preprocess(faint).empty


def test_transparent_canvas_background_counts_as_no_ink():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, but transparent except the stroke
    rgba[20:80, 45:55, 3] = 255
    ink = canvas.ink_from_canvas(rgba)
    assert ink[50, 50] == 1.0 and ink[5, 5] == 0.0
