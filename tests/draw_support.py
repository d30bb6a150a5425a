"""Shared by the Draw-page tests: a seed-3layer model trained once per test session on real MNIST (and a run
that kept two epochs of it), copied into each test's run store; digits drawn the way a learner draws them, as
pictures and with the mouse on the page's canvas in a browser."""

from __future__ import annotations

import io

import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnist_lab.runs import RunStore, read_json, write_json

TRAINED_FOLDER = "draw-seed-3layer-full"
EPOCHS_FOLDER = "draw-seed-3layer-two-epochs"
SLICE = 512  # training images behind the two-epoch run's first epoch


def trained_model_folder(tmp_path_factory, mnist) -> Path:
    """A run folder (run.json + model.keras) of seed-3layer trained for 1 epoch on all 60,000 images.

    Kept in the session's base temporary folder, so that every test file of the session shares it.
    """
    folder = tmp_path_factory.getbasetemp() / TRAINED_FOLDER
    if (folder / "run.json").is_file():
        return folder
    import keras

    from mnist_lab import data
    from mnist_lab.architecture.building import build_model
    from mnist_lab.architecture.presets import preset_layers

    store = RunStore(tmp_path_factory.mktemp("draw-training"))
    layers = preset_layers("seed-3layer")
    settings = {"epochs": 1, "batch_size": 128, "optimizer": "adam", "learning_rate": 0.001, "train_size": 60000,
                "validation": "test", "validation_size": 0, "seed": 0, "augment": False}
    meta = store.create("seed-3layer, 1 epoch", {"name": "seed-3layer", "source": "preset", "layers": layers},
                        settings)
    keras.utils.set_random_seed(0)
    model = build_model(layers, "seed-3layer")
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.to_model_input(mnist.x_train), mnist.y_train, epochs=1, batch_size=128, verbose=0)
    loss, accuracy = model.evaluate(data.to_model_input(mnist.x_test), mnist.y_test, verbose=0)
    model.save(store.model_path(meta["id"]))
    store.update(meta["id"], status="completed", epochs_done=1, test_loss=float(loss), test_accuracy=float(accuracy))
    shutil.copytree(store.path(meta["id"]), folder)
    return folder


def two_epoch_folder(tmp_path_factory, mnist, trained_folder: Path) -> Path:
    """A run folder of seed-3layer that kept two epochs: epoch 1 is the net after one pass over a slice of
    SLICE images (few batches: unsure of most digits), epoch 2 the session's trained model (its model file).
    Made once per session, beside the trained folder; its run id is its own, so both install in one store."""
    folder = tmp_path_factory.getbasetemp() / EPOCHS_FOLDER
    if (folder / "run.json").is_file():
        return folder
    import keras

    from mnist_lab import data
    from mnist_lab.architecture.building import build_model

    trained = read_json(trained_folder / "run.json")
    store = RunStore(tmp_path_factory.mktemp("draw-epochs"))
    meta = store.create("seed-3layer, 2 epochs", trained["architecture"], {**trained["settings"], "epochs": 2})
    keras.utils.set_random_seed(1)
    early = build_model(trained["architecture"]["layers"], "seed-3layer")
    early.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    early.fit(data.to_model_input(mnist.x_train[:SLICE]), mnist.y_train[:SLICE], epochs=1, batch_size=64, verbose=0)
    store.save_epoch_weights(meta["id"], 1, early)
    shutil.copy(trained_folder / "model.keras", store.model_path(meta["id"]))
    store.save_epoch_weights(meta["id"], 2, store.load_model(meta["id"]))
    store.update(meta["id"], status="completed", epochs_done=2, test_loss=trained["test_loss"],
                 test_accuracy=trained["test_accuracy"])
    shutil.copytree(store.path(meta["id"]), folder)
    return folder


def install_run(folder: Path, store: RunStore | None = None, name: str | None = None, **fields) -> dict:
    """Copy a trained run into a store (by default the test's own), with another name or other fields (an
    owner); returns its metadata."""
    store = store or RunStore()
    meta = read_json(folder / "run.json")
    target = store.path(meta["id"])
    shutil.copytree(folder, target)
    if name or fields:
        meta.update(fields, **({"name": name} if name else {}))
        write_json(target / "run.json", meta)
    return store.get(meta["id"])


SEVEN = [[(0.15, 0.1), (0.85, 0.1), (0.4, 0.95)]]


def draw_strokes(strokes, side: int = 280, box=(0.0, 0.0, 1.0, 1.0), width: float = 0.08,
                 ink=255, paper=0, mode: str = "L") -> Image.Image:
    """Strokes given in [0, 1] coordinates of `box` (left, top, right, bottom, as shares of the side);
    the pen width is a share of the box's size, so the same digit looks the same at any size."""
    left, top, right, bottom = (value * side for value in box)
    picture = Image.new(mode, (side, side), paper)
    draw = ImageDraw.Draw(picture)
    pen = max(1, round(width * max(right - left, bottom - top)))
    for stroke in strokes:
        points = [(left + x * (right - left), top + y * (bottom - top)) for x, y in stroke]
        draw.line(points, fill=ink, width=pen, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=ink)
    return picture


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.ravel(), second.ravel())[0, 1])


def png_bytes(picture: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def seven(box=(0.2, 0.1, 0.8, 0.9), side: int = 280) -> Image.Image:
    return draw_strokes(SEVEN, side=side, box=box)


def canvas_pixels(picture: Image.Image) -> np.ndarray:
    """A white-on-black picture as the canvas returns it: RGBA uint8."""
    return np.asarray(picture.convert("RGBA"))


def mnist_on_canvas(digit: np.ndarray, side: int, left: int, top: int, size: int) -> np.ndarray:
    """An MNIST digit's ink (its 20-pixel box) enlarged to `size` pixels and put on a black canvas."""
    rows = np.flatnonzero(digit.max(axis=1))
    columns = np.flatnonzero(digit.max(axis=0))
    crop = digit[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    scale = size / max(crop.shape)
    enlarged = Image.fromarray(crop).resize((max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                                            Image.Resampling.BICUBIC)
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(enlarged, (left, top))
    return np.asarray(canvas).astype("float32") / 255.0


TINY_LAYERS = [{"type": "Conv2D", "filters": 2, "kernel_size": [3, 3], "activation": "relu"}, {"type": "Flatten"}]


def install_untrained_run(store: RunStore, name: str, test_accuracy: float = 0.5) -> dict:
    """A completed run with a tiny untrained model: for pages whose layout, not whose guesses, is tested."""
    from mnist_lab.architecture.building import build_model

    meta = store.create(name, {"name": "custom", "source": "custom", "layers": TINY_LAYERS}, {"epochs": 1})
    build_model(TINY_LAYERS, "tiny").save(store.model_path(meta["id"]))
    return store.update(meta["id"], status="completed", test_accuracy=test_accuracy)


def arc(centre_x, centre_y, radius_x, radius_y, start, end, points=24):
    """Points along an ellipse from angle `start` to `end` (degrees; y grows downwards, so 90 is the
    bottom and 270 the top)."""
    angles = np.radians(np.linspace(start, end, points))
    return [(centre_x + radius_x * math.cos(a), centre_y + radius_y * math.sin(a)) for a in angles]


# Drawn digits: each digit in a few shapes, as strokes in a box 1 high (x from 0, about 0.6 wide; y downwards).
SHAPES: dict[int, dict[str, list]] = {
    0: {"round": [arc(0.3, 0.5, 0.3, 0.5, 270, -90)],
        "narrow": [arc(0.22, 0.5, 0.2, 0.5, 260, -100)]},
    1: {"stick": [[(0.3, 0.0), (0.3, 1.0)]],
        "flag": [[(0.05, 0.22), (0.3, 0.0), (0.3, 1.0)]],
        "flag and base": [[(0.05, 0.22), (0.3, 0.0), (0.3, 1.0)], [(0.05, 1.0), (0.55, 1.0)]]},
    2: {"curved": [arc(0.3, 0.27, 0.27, 0.25, 190, 390) + [(0.0, 1.0), (0.62, 1.0)]],
        "looped": [arc(0.3, 0.27, 0.27, 0.25, 190, 400) + [(0.12, 0.88)] + arc(0.12, 0.92, 0.08, 0.08, 270, 30)
                   + [(0.62, 0.98)]]},
    3: {"round": [arc(0.28, 0.25, 0.25, 0.24, 200, 450), arc(0.28, 0.73, 0.3, 0.27, 270, 520)],
        "flat top": [[(0.03, 0.0), (0.58, 0.0), (0.25, 0.4)] + arc(0.3, 0.7, 0.3, 0.3, 270, 520)]},
    4: {"closed": [[(0.47, 1.0), (0.47, 0.0), (0.0, 0.66), (0.66, 0.66)]],
        "open": [[(0.08, 0.0), (0.02, 0.6), (0.66, 0.6)], [(0.48, 0.22), (0.48, 1.0)]]},
    5: {"one stroke": [[(0.58, 0.0), (0.1, 0.0), (0.06, 0.44)] + arc(0.3, 0.69, 0.3, 0.3, 220, 510)],
        "two strokes": [[(0.1, 0.0), (0.06, 0.44)] + arc(0.3, 0.69, 0.3, 0.3, 220, 510), [(0.1, 0.0), (0.6, 0.0)]]},
    6: {"small loop": [arc(0.55, 0.62, 0.5, 0.62, 280, 170, 16) + arc(0.32, 0.76, 0.24, 0.24, 180, -180)],
        "big loop": [arc(0.5, 0.5, 0.42, 0.5, 290, 175, 10) + arc(0.36, 0.63, 0.34, 0.37, 180, -180)],
        "round": [[(0.5, 0.0), (0.15, 0.35)] + arc(0.32, 0.68, 0.3, 0.32, 200, -160)]},
    7: {"plain": [[(0.0, 0.0), (0.6, 0.0), (0.22, 1.0)]],
        "bar": [[(0.0, 0.0), (0.6, 0.0), (0.22, 1.0)], [(0.12, 0.52), (0.6, 0.52)]],
        "hooked": [[(0.0, 0.16), (0.02, 0.0), (0.6, 0.0), (0.3, 1.0)]]},
    8: {"two loops": [arc(0.3, 0.24, 0.22, 0.24, 0, 360), arc(0.3, 0.74, 0.28, 0.26, 270, 630)],
        "figure": [[(0.3 + (0.22 if math.cos(t) > 0 else 0.3) * math.sin(2 * t), 0.5 - 0.5 * math.cos(t))
                    for t in np.linspace(0.0, 2 * math.pi, 48)]]},
    9: {"small loop": [arc(0.3, 0.26, 0.27, 0.26, 0, -360) + [(0.57, 0.3), (0.5, 1.0)]],
        "big loop": [arc(0.3, 0.36, 0.3, 0.36, 0, -360) + [(0.6, 0.4), (0.55, 1.0)]],
        "curved stem": [arc(0.3, 0.26, 0.27, 0.26, 0, -360) + arc(0.2, 0.3, 0.37, 0.7, 0, 80, 10)]},
}



# --- the page's canvas, in a browser ---------------------------------------------------------------

def on_canvas(strokes, left: int = 85, top: int = 45, height: int = 190):
    """Strokes of SHAPES (a box 1 high) in canvas pixels, the digit `height` pixels tall."""
    return [[(left + x * height, top + y * height) for x, y in stroke] for stroke in strokes]


CANVAS_DIGITS = {  # strokes in canvas pixels (the canvas is 280x280)
    "1": [[(150, 45), (138, 235)]],
    "0": [[(140 + 58 * math.sin(step / 24 * 2 * math.pi), 140 - 90 * math.cos(step / 24 * 2 * math.pi))
           for step in range(25)]],
    "3": on_canvas(SHAPES[3]["round"]),
    "4": on_canvas(SHAPES[4]["closed"]),
    "7": [[(75, 55), (205, 55), (115, 238)]],
}


def wait_canvas_ready(page):
    """A new canvas takes strokes once it has loaded its (empty) drawing, which paints its background black."""
    lower = page.locator("canvas.lower-canvas").last.element_handle()
    page.wait_for_function("canvas => { const pixel = canvas.getContext('2d').getImageData(2, 2, 1, 1).data;"
                           " return pixel[3] === 255 && pixel[0] === 0; }", arg=lower)


def draw_on_canvas(page, strokes):
    """Draw strokes (lists of canvas-pixel points) on the page's canvas with the mouse, as a learner does."""
    canvas = page.locator("canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()


def clear_canvas(page):
    """Press Clear and wait for the new, empty canvas to take strokes."""
    from helpers import wait_idle

    old_canvas = page.locator("canvas").last.element_handle()
    page.get_by_role("button", name="Clear", exact=True).click()
    page.wait_for_function("canvas => !canvas.isConnected", arg=old_canvas)  # a new canvas replaced it
    wait_idle(page)
    page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
    wait_canvas_ready(page)
