"""What Home shows of the data, made without Streamlit, Altair or pandas."""

import numpy as np

from mnist_lab.views import home


def test_the_class_count_chart_has_a_bar_per_digit_and_split():
    counts = {"train": list(range(100, 110)), "test": list(range(10, 20))}
    spec = home.class_count_chart(counts)
    [layer] = spec["layer"]
    values = layer["data"]["values"]
    assert len(values) == 20
    assert {"digit": "7", "split": "train", "images": 107} in values
    assert {"digit": "0", "split": "test", "images": 10} in values
    assert layer["encoding"]["xOffset"]["field"] == "split"


def test_the_digit_grid_has_a_column_per_digit_and_a_label_strip():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), home.SAMPLES_PER_DIGIT)
    images = rng.integers(0, 255, size=(len(labels), 28, 28), dtype=np.uint8)
    grid = np.asarray(home.labelled_digit_grid(images, labels).convert("L"))
    strip = grid[-(home.LABEL_FONT_SIZE + 12):]
    ink_columns = (strip < 128).any(axis=0).astype(int)
    assert int(np.sum(np.diff(np.concatenate([[0], ink_columns])) == 1)) >= 10  # ten labels (a 4 may split)
    assert grid.shape[0] > grid.shape[1] * home.SAMPLES_PER_DIGIT / 10  # three tiles high, ten wide
