"""Shared by the Draw-page tests: a seed-3layer model trained once per test session on real MNIST (and a run
that kept two epochs of it), copied into each test's run store; digits drawn the way a learner draws them, as
pictures and with the mouse on the page's canvas in a browser."""

from __future__ import annotations

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

    from mnist_lab import architectures, data

    store = RunStore(tmp_path_factory.mktemp("draw-training"))
    layers = architectures.preset_layers("seed-3layer")
    settings = {"epochs": 1, "batch_size": 128, "optimizer": "adam", "learning_rate": 0.001, "train_size": 60000,
                "validation": "test", "validation_size": 0, "seed": 0, "augment": False}
    meta = store.create("seed-3layer, 1 epoch", {"name": "seed-3layer", "source": "preset", "layers": layers},
                        settings)
    keras.utils.set_random_seed(0)
    model = architectures.build_model(layers, "seed-3layer")
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

    from mnist_lab import architectures, data

    trained = read_json(trained_folder / "run.json")
    store = RunStore(tmp_path_factory.mktemp("draw-epochs"))
    meta = store.create("seed-3layer, 2 epochs", trained["architecture"], {**trained["settings"], "epochs": 2})
    keras.utils.set_random_seed(1)
    early = architectures.build_model(trained["architecture"]["layers"], "seed-3layer")
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
    from mnist_lab import architectures

    meta = store.create(name, {"name": "custom", "source": "custom", "layers": TINY_LAYERS}, {"epochs": 1})
    architectures.build_model(TINY_LAYERS, "tiny").save(store.model_path(meta["id"]))
    return store.update(meta["id"], status="completed", test_accuracy=test_accuracy)


# --- the page's canvas, in a browser ---------------------------------------------------------------

CANVAS_DIGITS = {  # strokes in canvas pixels (the canvas is 280x280)
    "1": [[(150, 45), (138, 235)]],
    "0": [[(140 + 58 * math.sin(step / 24 * 2 * math.pi), 140 - 90 * math.cos(step / 24 * 2 * math.pi))
           for step in range(25)]],
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
