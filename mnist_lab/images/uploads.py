"""An uploaded image file or a photo of a digit on paper to ink, and through MNIST's steps.

Files are decoded by Pillow and refused, with a message that says what to change, when they are not images,
damaged or too big. A photo's paper is told from its ink by the paper's lighting, fitted as a smooth surface.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_lab.errors import LabError
from mnist_lab.images.preprocessing import Options, Result, preprocess

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 60_000_000  # a 48-megapixel phone photo fits; a decompression bomb does not
WORKING_SIDE = 512  # uploads are shrunk to this before the search for ink: the digit ends up 20 px
PHOTO_NOISE_FLOOR = 0.15  # after contrast stretching, fainter "ink" in a photo is paper texture, at most this
NOISE_SIGMAS = 4  # ink within this many standard deviations of the paper's noise is noise
PAPER_GRID = 64  # the paper's lighting is fitted on a grid about this size
PAPER_WEIGHT = 0.98  # in the lighting's first fit, the weight of pixels brighter than the fit


class ImageError(LabError):
    """An upload or file that cannot be used; the message says what to change."""


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _too_big_file(size: int, max_bytes: int) -> ImageError:
    return ImageError(f"The file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}. Use a smaller image.")


def read_image(source: bytes | str | os.PathLike, max_bytes: int = MAX_FILE_BYTES,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and decode an image from bytes or a path: grey ("L"), or "RGBA" when it has transparency.

    Refuses what is not an image, is damaged or too big with an ImageError, the only error it raises:
    Pillow's decoders raise many kinds (OSError, ValueError, NotImplementedError, TypeError,
    AttributeError… on mutated files), and to a learner they all mean "this file cannot be used".
    Only the header is read before the size checks, so a decompression bomb (a small file that
    unpacks to billions of pixels) is refused before it takes any memory.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ImageError(f"{path} is not a file.")
            if size > max_bytes:
                raise _too_big_file(size, max_bytes)
            data = path.read_bytes()
        except OSError as error:
            raise ImageError(f"Cannot read {path}: {error.strerror or error}.") from None
    else:
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_big_file(len(data), max_bytes)
    if not data:
        raise ImageError("The file is empty.")
    too_big = ImageError("The image is too large to open safely (it unpacks to more than "
                         f"{max_pixels / 1e6:.0f} million pixels). Use a smaller image.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise too_big
            if width == 0 or height == 0:
                raise ImageError("The image has no pixels.")
            if image.format == "JPEG":
                image.draft("L", (2 * WORKING_SIDE, 2 * WORKING_SIDE))
            return _decoded(image)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_big from None
        except UnidentifiedImageError:
            raise ImageError("This is not an image Pillow can read. Use a PNG or JPEG file.") from None
        except Exception as error:  # a damaged file can make any decoder fail in any way: see the docstring
            detail = str(error) or type(error).__name__
            raise ImageError(f"The image file is damaged or cut short, or in a form this lab cannot read "
                             f"({detail[:80]}). Save it again as PNG or JPEG.") from None


def _decoded(image: Image.Image) -> Image.Image:
    """The first frame, upright, fully decoded, in a mode the ink search reads: "L" or "RGBA"."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image.load()
    image = ImageOps.exif_transpose(image)  # a phone photo held sideways is stored sideways
    if image.mode == "La":  # premultiplied alpha, which Pillow converts only to "LA"
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    if image.mode == "LAB":
        return image.getchannel("L")  # its lightness channel is the grey image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.nan_to_num(np.asarray(image, dtype="float64"), nan=0.0, posinf=0.0, neginf=0.0)
        low, span = float(array.min()), float(array.max() - array.min()) or 1.0
        return Image.fromarray(((array - low) / span * 255).astype(np.uint8))
    try:
        return image.convert("L")
    except ValueError:
        raise ImageError(f"This image's colour mode ({image.mode}) cannot be read here. "
                         "Save it as PNG or JPEG.") from None


def read_ink(source: bytes | str | os.PathLike, max_bytes: int = MAX_FILE_BYTES,
             max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, bool]:
    """An image file's ink: `ink_from_image(read_image(source))`. Raises only ImageError."""
    return ink_from_image(read_image(source, max_bytes, max_pixels))


def ink_from_image(image: Image.Image) -> tuple[np.ndarray, bool]:
    """The ink of an image from `read_image`: (ink in [0, 1], whether it was dark ink on light paper).

    Dark-on-light input (pen on paper) is detected from the border, which is mostly background,
    and inverted. Uneven lighting in a photo is removed by dividing by the paper's brightness,
    a smooth surface fitted to the paper alone, so that strokes of any width stay ink.
    """
    image = image.copy()
    image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    if image.mode == "RGBA":
        alpha = np.asarray(image)[..., 3]
        if alpha.min() < 128 <= alpha.max():  # drawn on a transparent background: the alpha is the ink
            return alpha.astype("float32") / 255.0, False
        image = image.convert("L")
    gray = np.asarray(image, dtype="float32") / 255.0
    dark_on_light = bool(np.median(_border(gray)) > 0.5)
    paper = gray if dark_on_light else 1.0 - gray  # from here on: dark ink on light paper
    contrast = 1.0 - paper / _paper_brightness(paper)  # > 0: darker than the paper there
    ink = np.clip(contrast, 0.0, 1.0)
    strong = ink[ink > 0.1]
    if strong.size == 0:
        return np.zeros_like(ink), dark_on_light
    scale = max(float(np.percentile(strong, 95)), 0.1)
    ink = np.clip(ink / scale, 0.0, 1.0)
    # Differences as faint as the paper's own noise (texture, a photo's sensor) are not ink; a clean
    # drawing has no noise, and keeps its grey edges.
    background = contrast[contrast < 0.1]
    noise = 1.4826 * float(np.median(np.abs(background - np.median(background)))) if background.size else 0.0
    floor = min(PHOTO_NOISE_FLOOR, NOISE_SIGMAS * noise / scale)
    if floor > 0:
        ink = np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0)
    return ink.astype("float32"), dark_on_light


def _border(array: np.ndarray) -> np.ndarray:
    width = max(1, min(array.shape) // 20)
    return np.concatenate([array[:width].ravel(), array[-width:].ravel(),
                           array[:, :width].ravel(), array[:, -width:].ravel()])


def _lighting_basis(height: int, width: int, factor: int, full: tuple[int, int]) -> np.ndarray:
    """Quadratic terms in x and y at the centres of `factor`-pixel blocks, in [-1, 1] of the full image."""
    def centres(count, size):
        return (np.arange(count) * factor + (factor - 1) / 2) / max(size - 1, 1) * 2 - 1

    rows, columns = np.meshgrid(centres(height, full[0]), centres(width, full[1]), indexing="ij")
    return np.stack([np.ones_like(rows), columns, rows, columns ** 2, columns * rows, rows ** 2],
                    axis=-1).reshape(-1, 6)


def _paper_brightness(paper: np.ndarray) -> np.ndarray:
    """The paper's brightness at every pixel, as if there were no ink.

    Light falls smoothly across a sheet, so a quadratic surface in x and y is fitted to it on a
    small grid: first to the upper envelope (blocks above the fit weigh 98 %, those below 2 %, so
    ink, which is only ever darker, hardly pulls it down), then again to the blocks whose every
    pixel is within the paper's own noise of that, so that no block with ink in it counts. A closing (a filter that erases strokes narrower than its window)
    did this before, and kept strokes wider than its window as paper: a thick digit came out hollow.
    """
    factor = max(1, math.ceil(max(paper.shape) / PAPER_GRID))
    height, width = paper.shape[0] // factor, paper.shape[1] // factor
    if height == 0 or width == 0:
        factor, height, width = 1, *paper.shape
    blocks = paper[:height * factor, :width * factor].reshape(height, factor, width, factor)
    small, darkest = blocks.mean(axis=(1, 3)), blocks.min(axis=(1, 3)).ravel()
    basis = _lighting_basis(height, width, factor, paper.shape)
    values = small.ravel().astype("float64")
    weights = np.ones(values.shape)
    for _ in range(12):
        root = np.sqrt(weights)
        surface = basis @ np.linalg.lstsq(basis * root[:, None], values * root, rcond=None)[0]
        weights = np.where(values >= surface, PAPER_WEIGHT, 1.0 - PAPER_WEIGHT)
    pixel_noise = 1.4826 * float(np.median(np.abs(np.diff(paper, axis=1)))) / math.sqrt(2)
    keep = darkest - surface > -max(0.02, 5.0 * pixel_noise)
    if keep.sum() < basis.shape[1]:
        keep = values >= surface
    coefficients = np.linalg.lstsq(basis[keep], values[keep], rcond=None)[0]
    surface = (_lighting_basis(*paper.shape, 1, paper.shape) @ coefficients).reshape(paper.shape)
    return np.clip(surface, 0.05, None).astype("float32")


def preprocess_upload(source: bytes | str | os.PathLike, options: Options = Options()) -> Result:
    """An image file (bytes or path) through the MNIST steps. Raises ImageError, and only that, for a bad file."""
    ink, dark_on_light = read_ink(source)
    return preprocess_found_ink(ink, dark_on_light, options)


def preprocess_found_ink(ink: np.ndarray, dark_on_light: bool, options: Options = Options()) -> Result:
    """The ink found in an uploaded image (`ink_from_image`) through the MNIST steps."""
    result = preprocess(ink, options)
    result.dark_on_light = dark_on_light
    if result.empty:
        result.message = "No digit found in this image: use a picture of one digit that fills most of it."
    return result
