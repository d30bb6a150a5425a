"""From ink to the 28x28 image a model sees, made the way MNIST was made; the ink comes from a drawing
(canvas.py) or from an uploaded file or photo (uploads.py).

MNIST's digits were written on paper, scanned, cropped to their ink, scaled so that the longest side
is 20 pixels (keeping the aspect ratio, with anti-aliasing), and placed in a 28x28 field with their
centre of mass at the centre. A model trained on them expects exactly that: a plain resize of a
whole canvas gives it a small, off-centre, thin digit it has never seen. Every step here can be
switched off (`Options`) so that a learner can watch what each one is worth; deskewing, which MNIST
did not do, is one more switch, off by default.

Images are float32 arrays of ink in [0, 1] (1 = full ink). Connected components, centres of mass
and shears come from scipy.ndimage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

FIELD = 28
BOX = 20
CENTRE = 14.0  # MNIST's mean centre of mass, in pixel-index coordinates of the 28x28 field

COMPONENT_GRID = 64  # speck search runs on a grid about this size
COMPONENT_THRESHOLD = 0.2  # ink above this joins a connected component
BIG_STROKE = 0.25  # a component with this share of the largest one's ink is part of the digit
SMALL_STROKE = 0.03  # below this share a component is a speck wherever it is
NEAR = 0.25  # a middle-sized component is kept when this close (share of the digit's size)
MIN_EXTENT = 0.08  # ink whose longest side is below this share of the image is not a digit
DOUBT_EXTENT = 0.2  # ink spanning less of the drawing area than this is too small to read well
BLOT_FILL = 0.7  # a 20x20 box this full of ink is a blot: 99.99 % of MNIST's digits fill less
MAX_SKEW = 1.0  # deskewing never shears by more than 45 degrees
EIGHT_CONNECTED = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    help: str


STEPS = (
    Step("remove_specks", "Remove specks",
         "Ignore small blobs far from the digit, such as a stray dot; otherwise the crop and the centre "
         "of mass take them in."),
    Step("crop", "Crop to ink",
         "Cut the image down to the box around the ink. Off: the whole canvas is scaled, so the digit "
         "ends up small."),
    Step("deskew", "Deskew",
         "Shear the digit upright, by the slant its image moments give (as on LeCun's MNIST page, where "
         "it halved a k-NN's error). MNIST's own digits were not deskewed, so it is off by default. "
         "Measured with a 3-layer net: +2.5 points on slanted MNIST digits written large on the canvas, "
         "+3.3 on 240 drawn digits (6s: from 50 % to 63 %), -0.2 on MNIST's test digits."),
    Step("keep_aspect", "Keep aspect ratio",
         "Scale the longest side to 20 pixels and the other in proportion. Off: squash into 20x20, "
         "so a 1 becomes a thick bar."),
    Step("anti_alias", "Anti-aliasing",
         "Average the pixels while shrinking, which gives MNIST's soft grey edges. Off: pick single "
         "pixels, which gives thin, broken strokes."),
    Step("centre_of_mass", "Centre of mass",
         "Move the digit so that its centre of mass (the average position of its ink) is at the "
         "centre of the 28x28 field, as in MNIST. Off: centre its box instead."),
)


@dataclass(frozen=True)
class Options:
    """Which of MNIST's preprocessing steps to apply; all on reproduces MNIST."""

    remove_specks: bool = True
    crop: bool = True
    deskew: bool = False
    keep_aspect: bool = True
    anti_alias: bool = True
    centre_of_mass: bool = True


@dataclass
class Result:
    """Every intermediate image, for showing the steps, and the final 28x28 input."""

    ink: np.ndarray  # the ink as found, full size
    cleaned: np.ndarray  # the ink with specks removed
    specks: np.ndarray  # bool mask of the ink removed as specks
    box: tuple[int, int, int, int] | None  # (top, left, bottom, right) of the ink, bottom/right exclusive
    cropped: np.ndarray
    scaled: np.ndarray  # longest side 20 pixels
    image: np.ndarray  # 28x28 float32 in [0, 1]: what the model sees
    offset: tuple[int, int] = (0, 0)  # where the scaled image was placed in the 28x28 field
    centre_of_mass: tuple[float, float] | None = None  # of the final image, (row, column)
    message: str = ""  # why there is nothing to predict; empty when there is
    options: Options = field(default_factory=Options)
    dark_on_light: bool = False  # an upload that was inverted (dark ink on light paper)
    deskewed: np.ndarray | None = None  # the crop sheared upright, when the step is on
    skew: float = 0.0  # the slant removed by deskewing (`skew`), 0 when the step is off
    doubt: str = ""  # why the ink does not look like a digit, though there is something to predict

    @property
    def empty(self) -> bool:
        return bool(self.message)


# --- specks ---------------------------------------------------------------------------------------

def _block_reduce(array: np.ndarray, factor: int, how) -> np.ndarray:
    height, width = array.shape
    padded = np.pad(array, ((0, -height % factor), (0, -width % factor)))
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return how(blocks, axis=(1, 3))


def remove_specks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop blobs that are tiny against the main strokes: (cleaned ink, mask of the ink removed).

    Components with a quarter of the largest one's ink are strokes of the digit; so are smaller ones
    close to those (the bar of a 7 drawn apart); anything else, and anything below 3 %, is a speck.
    Faint ink away from every stroke (paper texture in a photo) goes too.
    """
    mask = ink > COMPONENT_THRESHOLD
    if not mask.any():
        return ink, np.zeros(ink.shape, bool)
    factor = max(1, math.ceil(max(ink.shape) / COMPONENT_GRID))
    labels, count = ndimage.label(_block_reduce(mask, factor, np.max), structure=EIGHT_CONNECTED)
    mass = np.bincount(labels.ravel(), weights=_block_reduce(ink, factor, np.sum).ravel(), minlength=count + 1)[1:]
    boxes = [(rows.start, columns.start, rows.stop, columns.stop) for rows, columns in ndimage.find_objects(labels)]
    keep = mass >= BIG_STROKE * mass.max()
    changed = True
    while changed:
        changed = False
        top, left, bottom, right = _union_box([box for box, kept in zip(boxes, keep) if kept])
        margin = NEAR * max(bottom - top, right - left) + 1
        for number in np.flatnonzero(~keep & (mass >= SMALL_STROKE * mass.max())):
            other = boxes[number]
            if (other[0] < bottom + margin and other[2] > top - margin
                    and other[1] < right + margin and other[3] > left - margin):
                keep[number] = changed = True
    kept_small = np.isin(labels, np.flatnonzero(keep) + 1)
    dropped_small = (labels > 0) & ~kept_small
    # Faint anti-aliased edges may fall in the blocks around a stroke: keep those, not the specks' blocks.
    keep_small = ndimage.binary_dilation(kept_small, structure=EIGHT_CONNECTED) & ~dropped_small
    keep_full = np.repeat(np.repeat(keep_small, factor, axis=0), factor, axis=1)[:ink.shape[0], :ink.shape[1]]
    cleaned = np.where(keep_full, ink, 0.0).astype(ink.dtype)
    return cleaned, (ink > COMPONENT_THRESHOLD / 2) & ~keep_full


def _union_box(boxes):
    return (min(box[0] for box in boxes), min(box[1] for box in boxes),
            max(box[2] for box in boxes), max(box[3] for box in boxes))


# --- the MNIST steps ------------------------------------------------------------------------------

def ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the ink, bottom and right exclusive; None when there is none."""
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    if rows.size == 0:
        return None
    columns = np.flatnonzero(ink.max(axis=0) > 0)
    return int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float] | None:
    """(row, column) of the ink's centre of mass; None when there is no ink."""
    if float(image.sum()) <= 0:
        return None
    row, column = ndimage.center_of_mass(image)
    return float(row), float(column)


def skew(image: np.ndarray) -> float:
    """How many columns the ink moves per row down, from its second moments (cov(x, y) / var(y));
    < 0 for a digit that leans right. 0 when there is no ink or a single row of it."""
    total = float(image.sum())
    if total <= 0:
        return 0.0
    rows, columns = np.indices(image.shape, dtype="float64")
    row_mean, column_mean = (rows * image).sum() / total, (columns * image).sum() / total
    row_variance = float(((rows - row_mean) ** 2 * image).sum() / total)
    if row_variance < 1e-6:
        return 0.0
    covariance = float(((rows - row_mean) * (columns - column_mean) * image).sum() / total)
    return float(np.clip(covariance / row_variance, -MAX_SKEW, MAX_SKEW))


def deskew(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Shear the ink horizontally about its centre of mass so that its slant (`skew`) becomes 0:
    (the sheared image, wider by the shear and cropped to its ink; the skew that was removed)."""
    slant = skew(image)
    if slant == 0.0:
        return image, 0.0
    height, width = image.shape
    margin = math.ceil(abs(slant) * height)
    centre_row = centre_of_mass(image)[0]
    # Output (row, column) reads the input at (row, column - margin + slant * (row - centre_row)).
    sheared = ndimage.affine_transform(image, np.array([[1.0, 0.0], [slant, 1.0]]),
                                       offset=(0.0, -margin - slant * centre_row),
                                       output_shape=(height, width + 2 * margin), order=1)
    sheared = np.clip(sheared, 0.0, 1.0).astype("float32")
    box = ink_box(sheared > 1e-3)
    if box is not None:
        sheared = sheared[:, box[1]:box[3]]
    return sheared, slant


def ink_doubt(cleaned: np.ndarray, box: tuple[int, int, int, int], image: np.ndarray) -> str:
    """Why this ink does not look like a digit (too small, or a blot); "" when it may be one."""
    top, left, bottom, right = box
    extent = max(bottom - top, right - left) / max(cleaned.shape)
    if extent < DOUBT_EXTENT:
        return f"The ink spans only {extent:.0%} of the drawing area: write the digit bigger."
    fill = float((image > 0.5).sum()) / BOX ** 2
    if fill > BLOT_FILL:
        return (f"The ink fills {fill:.0%} of its 20x20 box, where a digit's strokes fill at most about "
                f"{BLOT_FILL:.0%}: this looks like a blot or a scribble.")
    return ""


def scale_to_box(crop: np.ndarray, keep_aspect: bool = True, anti_alias: bool = True) -> np.ndarray:
    """Scale so that the longest side is 20 pixels (or squash into 20x20 when keep_aspect is off)."""
    height, width = crop.shape
    if keep_aspect:
        longest = max(height, width)
        size = (max(1, round(BOX * width / longest)), max(1, round(BOX * height / longest)))
    else:
        size = (BOX, BOX)
    resample = Image.Resampling.LANCZOS if anti_alias else Image.Resampling.NEAREST
    scaled = Image.fromarray(crop.astype("float32")).resize(size, resample)
    return np.clip(np.asarray(scaled, dtype="float32"), 0.0, 1.0)


def place_in_field(scaled: np.ndarray, by_centre_of_mass: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """Put the scaled digit in a 28x28 field, its centre of mass (or its box) at the centre."""
    height, width = scaled.shape
    centre = centre_of_mass(scaled) if by_centre_of_mass else None
    if centre is None:
        top, left = (FIELD - height) // 2, (FIELD - width) // 2
    else:
        top = int(np.clip(round(CENTRE - centre[0]), 0, FIELD - height))
        left = int(np.clip(round(CENTRE - centre[1]), 0, FIELD - width))
    field_image = np.zeros((FIELD, FIELD), "float32")
    field_image[top:top + height, left:left + width] = scaled
    return field_image, (top, left)


def preprocess(ink: np.ndarray, options: Options = Options()) -> Result:
    """Apply MNIST's steps to ink in [0, 1]; the Result says "draw a digit" when there is none."""
    ink = np.clip(np.asarray(ink, dtype="float32"), 0.0, 1.0)
    if ink.ndim != 2 or ink.size == 0:
        raise ValueError(f"Expected a 2-D ink image, got shape {ink.shape}.")
    if options.remove_specks:
        cleaned, specks = remove_specks(ink)
    else:
        cleaned, specks = ink, np.zeros(ink.shape, bool)
    box = ink_box(cleaned)
    blank = np.zeros((FIELD, FIELD), "float32")
    empty = Result(ink, cleaned, specks, box, np.zeros((0, 0), "float32"), np.zeros((0, 0), "float32"), blank,
                   options=options)
    if box is None or float(cleaned.max()) < COMPONENT_THRESHOLD:
        empty.message = "Draw a digit: there is no ink yet."
        return empty
    top, left, bottom, right = box
    if max(bottom - top, right - left) < MIN_EXTENT * max(ink.shape):
        empty.message = "Draw a digit: this is only a dot. Write a digit that fills a good part of the box."
        return empty
    if not options.crop:
        box = (0, 0, ink.shape[0], ink.shape[1])
        top, left, bottom, right = box
    cropped = cleaned[top:bottom, left:right]
    deskewed, slant = deskew(cropped) if options.deskew else (None, 0.0)
    scaled = scale_to_box(cropped if deskewed is None else deskewed, options.keep_aspect, options.anti_alias)
    image, offset = place_in_field(scaled, options.centre_of_mass)
    doubt = ink_doubt(cleaned, ink_box(cleaned), image)
    return Result(ink, cleaned, specks, box, cropped, scaled, image, offset, centre_of_mass(image),
                  options=options, deskewed=deskewed, skew=slant, doubt=doubt)


# --- pictures of the steps ------------------------------------------------------------------------

def to_picture(array: np.ndarray, size: int, frame: tuple[int, int] | None = None) -> Image.Image:
    """Ink in [0, 1] as a white-on-black picture whose longest side is `size`, pixels kept sharp.

    `frame` (height, width) pads the array into a black frame first, so that a 20x6 digit keeps
    its true shape.
    """
    array = np.asarray(array, dtype="float32")
    if frame is not None:
        framed = np.zeros(frame, "float32")
        top, left = (frame[0] - array.shape[0]) // 2, (frame[1] - array.shape[1]) // 2
        framed[top:top + array.shape[0], left:left + array.shape[1]] = array
        array = framed
    if array.size == 0:
        array = np.zeros((1, 1), "float32")
    picture = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    scale = size / max(array.shape)
    target = (max(1, round(array.shape[1] * scale)), max(1, round(array.shape[0] * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    return picture.resize(target, resample)


def step_pictures(result: Result, size: int = 140) -> list[tuple[str, Image.Image]]:
    """(caption, picture) for each stage, drawn at the same size, for the page to show in a row."""
    ink = to_picture(result.ink, size)
    scale = ink.width / result.ink.shape[1]
    if result.specks.any():
        red = Image.new("RGB", ink.size, (230, 40, 40))
        speck_mask = Image.fromarray(result.specks.astype(np.uint8) * 255).resize(ink.size, Image.Resampling.BOX)
        ink = Image.composite(red, ink, speck_mask.point(lambda value: 255 if value > 20 else 0))
    if result.box is not None:
        top, left, bottom, right = result.box
        ImageDraw.Draw(ink).rectangle([left * scale, top * scale, right * scale - 1, bottom * scale - 1],
                                      outline=(60, 200, 90), width=2)
    pictures = [("Ink found" + (" (specks in red)" if result.specks.any() else ""), ink)]
    if result.empty:
        return pictures
    side = max(result.cropped.shape)
    pictures.append((f"Cropped to {result.cropped.shape[1]}x{result.cropped.shape[0]}",
                     to_picture(result.cropped, size, frame=(side, side))))
    if result.deskewed is not None:
        side = max(result.deskewed.shape)
        pictures.append((f"Deskewed (slant {-result.skew:+.2f})", to_picture(result.deskewed, size, frame=(side, side))))
    pictures.append((f"Scaled to {result.scaled.shape[1]}x{result.scaled.shape[0]}",
                     to_picture(result.scaled, size, frame=(BOX, BOX))))
    final = to_picture(result.image, size)
    draw = ImageDraw.Draw(final)
    unit = size / FIELD
    middle = (CENTRE + 0.5) * unit
    draw.line([middle - 6, middle, middle + 6, middle], fill=(80, 160, 255), width=1)
    draw.line([middle, middle - 6, middle, middle + 6], fill=(80, 160, 255), width=1)
    if result.centre_of_mass is not None:
        row, column = ((value + 0.5) * unit for value in result.centre_of_mass)
        draw.ellipse([column - 3, row - 3, column + 3, row + 3], outline=(255, 170, 0), width=2)
    pictures.append(("In the 28x28 field", final))
    return pictures
