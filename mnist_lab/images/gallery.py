"""Digit images laid out as one picture: a grid is one image to send, not dozens of widgets."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def digit_grid(images, labels=None, columns: int = 10, scale: int = 3, padding: int = 4,
               caption_height: int = 14) -> Image.Image:
    """Tile uint8 or [0, 1] float 28x28 images (white ink on black) with an optional caption under each."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    if images.dtype != np.uint8:
        images = (np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    count = len(images)
    rows = max(1, -(-count // columns))
    side = images.shape[1] * scale if count else 28 * scale
    caption = caption_height if labels is not None else 0
    cell_w, cell_h = side + padding, side + padding + caption
    canvas = Image.new("RGB", (columns * cell_w + padding, rows * cell_h + padding), "white")
    draw = ImageDraw.Draw(canvas)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        x, y = padding + column * cell_w, padding + row * cell_h
        tile = Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST)
        canvas.paste(tile.convert("RGB"), (x, y))
        if labels is not None:
            draw.text((x + 2, y + side + 1), str(labels[index]), fill=(40, 40, 40))
    return canvas
