"""What Home shows of the data: a labelled grid of sample digits and the class counts as a Vega-Lite chart.
Plain numpy, Pillow and a spec dict: no Altair, pandas or Arrow to import before the page's first render."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_lab.images.gallery import digit_grid

SAMPLES_PER_DIGIT = 3
LABEL_FONT_SIZE = 34  # grid pixels: about 20 px on screen once the grid is scaled to its column
LABEL_COLOUR = (31, 36, 48)  # the theme's text colour, on white


def labelled_digit_grid(images: np.ndarray, labels: np.ndarray) -> Image.Image:
    """One column per digit with its label under it, drawn large: the grid is scaled down to fit its
    column, and the gallery's own captions (10 px) become unreadable there."""
    by_column = np.concatenate([images[labels == digit][:SAMPLES_PER_DIGIT] for digit in range(10)])
    order = np.arange(len(by_column)).reshape(10, SAMPLES_PER_DIGIT).T.ravel()
    tiles = digit_grid(by_column[order], None, columns=10, scale=3)
    cell = (tiles.width - 4) // 10
    font = ImageFont.load_default(size=LABEL_FONT_SIZE)
    strip = LABEL_FONT_SIZE + 12
    grid = Image.new("RGB", (tiles.width, tiles.height + strip), "white")
    grid.paste(tiles, (0, 0))
    draw = ImageDraw.Draw(grid)
    for digit in range(10):
        draw.text((4 + digit * cell + (cell - 4) / 2, tiles.height + strip / 2), str(digit),
                  fill=LABEL_COLOUR, font=font, anchor="mm")
    return grid


def class_count_chart(counts: dict[str, list[int]]) -> dict:
    """Bars of images per digit, training and test side by side; `counts` maps a split to ten counts.

    The values sit inside the chart's one layer, not at its top: Streamlit 1.67 converts top-level data to
    Arrow through pandas (0.3-0.45 s of imports on a fresh server, before Home's first render), and
    passes a layer's data to the browser as it is."""
    values = [{"digit": str(digit), "split": split, "images": int(count)}
              for split, split_counts in counts.items() for digit, count in enumerate(split_counts)]
    return {
        "height": 260,
        "layer": [{
            "data": {"values": values},
            "mark": {"type": "bar"},
            "encoding": {
                "x": {"field": "digit", "type": "nominal", "title": "digit", "axis": {"labelAngle": 0}},
                "xOffset": {"field": "split", "type": "nominal"},
                "y": {"field": "images", "type": "quantitative", "title": "images"},
                "color": {"field": "split", "type": "nominal", "title": "split"},
                "tooltip": [{"field": "split"}, {"field": "digit"}, {"field": "images"}],
            },
        }],
    }
