"""Upload fuzzing: small valid images in every format Pillow both writes and reads, with bytes flipped,
cut, repeated or spliced by a seeded generator, must each give a Result or an ImageError, never any
other exception. A few hundred cases by default, thousands in the slow run."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from draw_support import SEVEN, draw_strokes
from mnist_lab.images import uploads
from mnist_lab.images.uploads import ImageError

MAX_PIXELS = 2_000_000  # a mutated header may claim a big image: keep each case fast


def _picture(mode: str) -> Image.Image:
    grey = draw_strokes(SEVEN, side=40, box=(0.2, 0.1, 0.8, 0.9), width=0.15, ink=0, paper=255)
    if mode == "RGBA":
        picture = grey.convert("RGBA")
        picture.putalpha(Image.eval(grey, lambda value: 255 - value))
        return picture
    return grey.convert(mode)


def valid_files() -> list[tuple[str, bytes]]:
    """(name, bytes) of one small 7 per format and mode that this Pillow can save and open again."""
    Image.init()
    found = []
    for fmt in sorted(set(Image.SAVE) & set(Image.OPEN)):
        for mode in ("L", "RGB", "RGBA", "1", "P", "LAB", "CMYK", "I", "F"):
            buffer = io.BytesIO()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _picture(mode).save(buffer, format=fmt)
                    Image.open(io.BytesIO(buffer.getvalue())).load()
            except Exception:  # this format cannot hold this mode, or needs a program that is not installed
                continue
            found.append((f"{fmt}-{mode}", buffer.getvalue()))
    return found


FILES = valid_files()


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random damage of the kinds that happen to files: flipped bytes, a cut, a repeat, a splice."""
    array = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:  # a few bytes overwritten, most often in the header where the decoder's choices are made
        for _ in range(int(rng.integers(1, 6))):
            limit = min(len(array), 64) if rng.random() < 0.6 else len(array)
            array[int(rng.integers(limit))] = int(rng.integers(256))
    elif kind == 1:  # single bits flipped anywhere
        for _ in range(int(rng.integers(1, 20))):
            array[int(rng.integers(len(array)))] ^= 1 << int(rng.integers(8))
    elif kind == 2:  # cut short
        array = array[:int(rng.integers(1, len(array)))]
    elif kind == 3:  # a stretch repeated
        start = int(rng.integers(len(array)))
        array[start:start] = array[start:start + int(rng.integers(1, 200))]
    else:  # a header field set to an extreme value
        start = int(rng.integers(min(len(array), 48)))
        array[start:start + 4] = bytes(rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                                   b"\x00\x00\x01\x00"]))
    return bytes(array)


def check(name: str, data: bytes):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd metadata; only exceptions matter here
            ink, dark_on_light = uploads.read_ink(data, max_pixels=MAX_PIXELS)
    except ImageError as error:
        assert str(error) and "Traceback" not in str(error), name
        return
    assert ink.ndim == 2 and np.isfinite(ink).all() and 0 <= ink.min() and ink.max() <= 1, name
    result = uploads.preprocess_found_ink(ink, dark_on_light)
    assert np.isfinite(result.image).all() and result.image.shape == (28, 28), name


def test_many_formats_are_covered():
    formats = {name.split("-")[0] for name, _ in FILES}
    assert {"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "DDS", "SPIDER"} <= formats, formats
    assert "TIFF-LAB" in {name for name, _ in FILES}


@pytest.mark.parametrize("name, data", FILES, ids=[name for name, _ in FILES])
def test_every_valid_file_is_read(name, data):
    ink, _ = uploads.read_ink(data)
    assert ink.max() > 0.5, name  # the 7 is found, whatever the format or colour mode


def _cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for number in range(count):
        name, data = FILES[number % len(FILES)]
        yield f"{name} #{number}", mutate(data, rng)


def test_mutated_files_give_a_result_or_an_image_error():
    for name, data in _cases(400, seed=0):
        check(name, data)


@pytest.mark.long
@pytest.mark.slow
def test_many_more_mutated_files_give_a_result_or_an_image_error():
    for name, data in _cases(6000, seed=1):
        check(name, data)
