"""Latency of one Draw-page prediction: canvas pixels to ten probabilities, on this machine.

Target: preprocessing plus prediction under 20 ms for the 5-layer preset on a CPU. Measured as the
median over many calls of the page's path (`preprocess_canvas`, then `model(x, training=False)`),
against the same preprocessing followed by `model.predict` in the same run: the ratio says what
calling the model directly saves. Weights do not change the time, so an untrained model is used
unless --run names a trained run.

    python benchmarks/draw_latency.py [--preset seed-5layer] [--calls 200] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import report  # noqa: E402


def sample_canvas(side: int = 280) -> np.ndarray:
    """A 7 written with a thick white stroke on a black RGBA canvas, as the page receives it."""
    picture = Image.new("RGBA", (side, side), (0, 0, 0, 255))
    draw = ImageDraw.Draw(picture)
    points = [(0.3, 0.25), (0.72, 0.25), (0.55, 0.5), (0.45, 0.8)]
    draw.line([(x * side, y * side) for x, y in points], fill=(255, 255, 255, 255), width=side // 14,
              joint="curve")
    draw.ellipse([side * 0.9, side * 0.9, side * 0.93, side * 0.93], fill=(255, 255, 255, 255))  # a speck
    return np.asarray(picture)


def _median_ms(function, calls: int) -> float:
    function()  # the first call builds and traces: not what a learner waits for on every stroke
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run(preset: str = "seed-5layer", calls: int = 200, run_id: str | None = None) -> dict:
    import keras

    from mnist_lab import system
    from mnist_lab.architecture.building import build_model
    from mnist_lab.architecture.presets import preset_layers
    from mnist_lab.evaluation import inference
    from mnist_lab.images import canvas
    from mnist_lab.runs import RunStore

    if run_id:
        model = inference.load_model(RunStore(), run_id)
        label = run_id
    else:
        model = build_model(preset_layers(preset), preset)
        label = preset
    pixels = sample_canvas()

    def preprocess_only():
        return canvas.preprocess_canvas(pixels)

    def direct():
        return inference.predict(model, canvas.preprocess_canvas(pixels).image)

    def with_predict():
        return model.predict(inference.model_input(canvas.preprocess_canvas(pixels).image), verbose=0)[0]

    if not np.allclose(direct(), with_predict(), atol=1e-5):
        raise RuntimeError("model(x) and model.predict disagree: the comparison would be meaningless")
    result = {
        "model": label,
        "calls": calls,
        "backend": keras.backend.backend(),
        "device": system.device_info().description,
        "preprocessing_ms": _median_ms(preprocess_only, calls),
        "direct_call_ms": _median_ms(direct, calls),
        "model_predict_ms": _median_ms(with_predict, max(10, calls // 4)),
        "target_ms": 20.0,
    }
    result["predict_over_direct"] = result["model_predict_ms"] / result["direct_call_ms"]
    result["meets_target"] = result["direct_call_ms"] < result["target_ms"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-5layer", help="preset to build (default seed-5layer)")
    parser.add_argument("--run", help="time a trained run's model instead of a fresh preset")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per path (default 200)")
    parser.add_argument("--quick", action="store_true", help="20 calls: a smoke test for CI")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    arguments = parser.parse_args(argv)
    result = run(arguments.preset, 20 if arguments.quick else arguments.calls, arguments.run)
    report([f"{result['model']} on {result['backend']} ({result['device']}), median of {result['calls']} calls:",
            f"  preprocessing only                 {result['preprocessing_ms']:7.2f} ms",
            f"  preprocessing + model(x)           {result['direct_call_ms']:7.2f} ms"
            f"   (target < {result['target_ms']:.0f} ms: {'met' if result['meets_target'] else 'NOT met'})",
            f"  preprocessing + model.predict(x)   {result['model_predict_ms']:7.2f} ms",
            f"  model.predict / model(x)           {result['predict_over_direct']:7.1f}x"], result, arguments.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
