"""What deskewing and augmentation are worth on digits drawn the way the Draw page's canvas draws them.

A labelled set of drawn digits is made from strokes, in several writers' styles per digit (slanted left
or right, big or small loops: 6s whose loop fills most of the digit, 9s, open and closed 4s, 7s with and
without a bar, 1s with and without a flag), pen widths of 12 to 30 pixels on the 280-pixel canvas, written
large or small and off-centre. Each drawing goes through the Draw page's path (the canvas' RGBA pixels,
`canvas.preprocess_canvas`) with the default steps and with deskewing on, into two seed-3layer
nets trained the same way (the app's training path, on the same MNIST slice), one with augmentation and
one without. Reported: accuracy on the drawn set for the four combinations, per digit, and MNIST's test
accuracy of both nets, so that what a step buys on drawings can be set against what it costs on MNIST.

    python benchmarks/drawn_digits.py [--quick] [--per-digit N] [--train-size N] [--epochs E] [--json out.json]

Needs MNIST (MNIST_LAB_DATA or Keras' download).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from draw_support import SHAPES, canvas_pixels, draw_strokes  # noqa: E402

from mnist_lab import system, training  # noqa: E402
from mnist_lab.architecture.sources import preset_architecture  # noqa: E402
from mnist_lab.evaluation import inference
from mnist_lab.images import canvas, preprocessing
from mnist_lab.runs import RunStore  # noqa: E402

CANVAS = 280  # the Draw page's canvas, in pixels
PEN_WIDTHS = (12, 30)  # pixels, the range of the canvas' pen a learner picks from
PIPELINES = {"default": preprocessing.Options(), "deskew": preprocessing.Options(deskew=True)}


@dataclass(frozen=True)
class Drawing:
    label: int
    shape: str
    slant: float  # columns per row the writer leans by (> 0: to the right)
    height: int  # pixels the digit spans on the canvas
    pen: int  # pixels
    left: int
    top: int


def styles(per_digit: int, seed: int = 0) -> list[Drawing]:
    """`per_digit` drawings of each digit: its shapes in turn, each with a writer's slant, size, pen and
    place drawn at random (seeded)."""
    rng = np.random.default_rng(seed)
    drawings = []
    for label, shapes in SHAPES.items():
        names = list(shapes)
        for index in range(per_digit):
            slant = float(rng.choice([-0.3, -0.15, 0.0, 0.15, 0.3, 0.45]) + rng.uniform(-0.05, 0.05))
            height = int(rng.integers(90, 250))
            pen = int(rng.integers(PEN_WIDTHS[0], PEN_WIDTHS[1] + 1))
            width = int(height * 0.65 + abs(slant) * height)
            left = int(rng.integers(0, max(1, CANVAS - width - pen)))
            top = int(rng.integers(0, max(1, CANVAS - height - pen)))
            drawings.append(Drawing(label, names[index % len(names)], slant, height, pen, left + pen // 2,
                                    top + pen // 2))
    return drawings


def render(drawing: Drawing) -> np.ndarray:
    """The canvas' RGBA pixels of one drawing: the shape sheared by the slant, fitted to its place."""
    strokes = [[(x + drawing.slant * (1.0 - y), y) for x, y in stroke] for stroke in SHAPES[drawing.label][drawing.shape]]
    xs = [x for stroke in strokes for x, _ in stroke]
    shift, wide = min(xs), max(max(xs) - min(xs), 1e-6)
    side = drawing.height / CANVAS
    width = wide * side
    box = (drawing.left / CANVAS, drawing.top / CANVAS, drawing.left / CANVAS + max(width, side),
           drawing.top / CANVAS + side)
    scale_x = width / max(width, side)  # the box is square in draw_strokes' terms: keep the shape's aspect
    fitted = [[((x - shift) / wide * scale_x, y) for x, y in stroke] for stroke in strokes]
    pen_share = drawing.pen / (max(width, side) * CANVAS)
    return canvas_pixels(draw_strokes(fitted, side=CANVAS, box=box, width=pen_share))


def drawn_set(per_digit: int) -> tuple[list[Drawing], dict[str, np.ndarray]]:
    """The drawings, and their 28x28 images through the Draw page's path for each pipeline."""
    drawings = styles(per_digit)
    images = {name: [] for name in PIPELINES}
    for drawing in drawings:
        pixels = render(drawing)
        for name, options in PIPELINES.items():
            result = canvas.preprocess_canvas(pixels, options)
            if result.empty:
                raise RuntimeError(f"A drawn {drawing.label} ({drawing.shape}) came out empty: {result.message}")
            images[name].append(result.image)
    return drawings, {name: np.stack(values) for name, values in images.items()}


def train(store: RunStore, augment: bool, train_size: int, epochs: int, seed: int) -> tuple[object, dict]:
    """seed-3layer through the app's training path (train_run: held-out validation, BatchNormalization
    re-estimated after a short run); returns (model, run.json)."""
    architecture = preset_architecture("seed-3layer")
    settings = training.TrainSettings(epochs=epochs, batch_size=128, train_size=train_size, seed=seed,
                                      augment=augment).resolve(60_000)
    run_id = store.create(f"seed-3layer{' augmented' if augment else ''}", architecture, settings.as_dict())["id"]
    live = training.LiveState(run_id, settings)
    status, message = training.train_run(store, run_id, architecture, settings, live)
    if status != "completed":
        raise RuntimeError(f"Training did not complete: {status} {message}")
    return store.load_model(run_id), store.get(run_id)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny check: 3 drawings a digit, 2,000 images, 1 epoch")
    parser.add_argument("--per-digit", type=int, help="drawings of each digit (default 24)")
    parser.add_argument("--train-size", type=int, help="MNIST training images (default 20,000)")
    parser.add_argument("--epochs", type=int, help="epochs (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args(argv)
    per_digit = arguments.per_digit or (3 if arguments.quick else 24)
    train_size = arguments.train_size or (2_000 if arguments.quick else 20_000)
    epochs = arguments.epochs or (1 if arguments.quick else 2)
    system.configure_gpu_memory()
    drawings, images = drawn_set(per_digit)
    labels = np.array([drawing.label for drawing in drawings])
    print(f"{len(drawings)} drawn digits; seed-3layer, {train_size:,} MNIST images, {epochs} epoch(s), batch 128",
          file=sys.stderr, flush=True)
    store = RunStore(tempfile.mkdtemp(prefix="mnist-lab-drawn-"))
    results = {"drawn": len(drawings), "train_size": train_size, "epochs": epochs, "seed": arguments.seed,
               "models": {}}
    for augment in (False, True):
        start = time.perf_counter()
        model, meta = train(store, augment, train_size, epochs, arguments.seed)
        name = "augmented" if augment else "plain"
        model_result = {"mnist_test_accuracy": meta["test_accuracy"], "training_seconds": time.perf_counter() - start,
                        "pipelines": {}}
        for pipeline, pictures in images.items():
            guesses = inference.predict_batch(model, pictures).argmax(axis=1)
            right = guesses == labels
            per_shape = {}
            for drawing, correct, guess in zip(drawings, right, guesses):
                entry = per_shape.setdefault(f"{drawing.label} {drawing.shape}", {"right": 0, "count": 0, "read_as": {}})
                entry["right"] += int(correct)
                entry["count"] += 1
                if not correct:
                    entry["read_as"][str(int(guess))] = entry["read_as"].get(str(int(guess)), 0) + 1
            model_result["pipelines"][pipeline] = {
                "accuracy": float(right.mean()),
                "per_digit": {str(digit): float(right[labels == digit].mean()) for digit in range(10)},
                "per_shape": per_shape,
            }
        results["models"][name] = model_result
        print(f"  {name}: MNIST test {meta['test_accuracy']:.4f}", file=sys.stderr, flush=True)
    print(f"\n{'model':10s} {'MNIST test':>10s} {'drawn, default':>15s} {'drawn, deskew':>14s} "
          f"{'6s default':>10s} {'6s deskew':>10s}")
    for name, model_result in results["models"].items():
        pipelines = model_result["pipelines"]
        print(f"{name:10s} {model_result['mnist_test_accuracy']:10.2%} {pipelines['default']['accuracy']:15.2%} "
              f"{pipelines['deskew']['accuracy']:14.2%} {pipelines['default']['per_digit']['6']:10.2%} "
              f"{pipelines['deskew']['per_digit']['6']:10.2%}")
    print(f"\nPer digit ({'plain default / plain deskew / augmented default / augmented deskew'}):")
    for digit in range(10):
        cells = [results["models"][m]["pipelines"][p]["per_digit"][str(digit)]
                 for m in ("plain", "augmented") for p in ("default", "deskew")]
        print(f"  {digit}: " + "  ".join(f"{cell:6.1%}" for cell in cells))
    results.update(device=system.device_info().description, load_average=os.getloadavg())
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
