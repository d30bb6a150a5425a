"""A drawing on the Draw page's canvas (white ink on black, RGBA) to ink, and through MNIST's steps."""

from __future__ import annotations

import numpy as np

from mnist_lab.images.preprocessing import FIELD, Options, Result, preprocess


def ink_from_canvas(pixels: np.ndarray) -> np.ndarray:
    """Canvas pixels (RGBA, RGB or grey, white ink) to ink in [0, 1].

    A transparent background counts as no ink: the colour is weighted by its alpha.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        gray = pixels.astype("float32")
        alpha = None
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb = pixels[..., :3].astype("float32")
        gray = rgb @ np.array([0.299, 0.587, 0.114], "float32")
        alpha = pixels[..., 3].astype("float32") / 255.0 if pixels.shape[2] == 4 else None
    else:
        raise ValueError(f"Expected an image array of shape (h, w), (h, w, 3) or (h, w, 4), got {pixels.shape}.")
    if np.issubdtype(pixels.dtype, np.integer):
        gray /= 255.0
    if alpha is not None:
        gray *= alpha
    return np.clip(gray, 0.0, 1.0)


def preprocess_canvas(pixels: np.ndarray | None, options: Options = Options()) -> Result:
    """A canvas's RGBA pixels (white ink on black) through the MNIST steps."""
    if pixels is None:
        return preprocess(np.zeros((FIELD, FIELD), "float32"), options)
    return preprocess(ink_from_canvas(pixels), options)
