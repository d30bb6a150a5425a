"""Latency of one move of the Draw page's epoch slider, on this machine.

Target: under 100 ms for seed-3layer on a 2-core CPU. A move does, for the learner's current drawing and
the epoch's model (already built, as `inference.prepare_epochs` leaves them): the prediction, the
probabilities, and the feature maps of every convolution layer with their pictures. That is timed over
many moves through the run's stored epochs, against one plain `model.predict` on the same input in the
same run; the ratio is the figure to compare between machines. The page also redraws the saliency map
and Grad-CAM for the epoch: timed as well ("with maps"). Weights do not change the time, so the run's
epochs hold copies of one untrained net's weights.

    python benchmarks/epoch_scrubber.py [--preset seed-3layer] [--epochs 6] [--calls 200] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import report  # noqa: E402
from draw_latency import sample_canvas  # noqa: E402

TARGET_MS = 100.0


def _times_ms(function, calls: int) -> list[float]:
    function()  # the first call traces: not what a learner waits for on every move
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float]) -> dict:
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


def run(preset: str = "seed-3layer", epochs: int = 6, calls: int = 200) -> dict:
    import keras

    from mnist_lab import system
    from mnist_lab.architecture.building import build_model
    from mnist_lab.architecture.presets import preset_layers
    from mnist_lab.evaluation import explanation, inference
    from mnist_lab.images import canvas
    from mnist_lab.runs import RunStore

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        layers = preset_layers(preset)
        meta = store.create(f"benchmark {preset}", {"name": preset, "source": "preset", "layers": layers},
                            {"epochs": epochs})
        model = build_model(layers, preset)
        model.save(store.model_path(meta["id"]))
        for epoch in range(1, epochs + 1):
            store.save_epoch_weights(meta["id"], epoch, model)
        store.update(meta["id"], status="completed", epochs_done=epochs)
        stored = inference.stored_epochs(store, meta["id"])
        for epoch in stored:  # prepared, as the page's background thread leaves them
            inference.epoch_model(store, meta["id"], epoch)
        image = canvas.preprocess_canvas(sample_canvas()).image
        moves = iter(range(10**9))

        def slider_move():
            epoch_model = inference.epoch_model(store, meta["id"], stored[next(moves) % len(stored)])
            probabilities = inference.predict(epoch_model, image)
            pictures = [explanation.feature_grid(layer.maps)
                        for layer in explanation.conv_feature_maps(epoch_model, image)]
            return epoch_model, probabilities, pictures

        def slider_move_with_maps():
            epoch_model, probabilities, _ = slider_move()
            guess = int(probabilities.argmax())
            explanation.saliency_overlay(image, explanation.saliency(epoch_model, image, guess))
            explanation.grad_cam_overlay(image, explanation.grad_cam(epoch_model, image, guess))

        def baseline():
            return model.predict(inference.model_input(image), verbose=0)

        base = _summary(_times_ms(baseline, max(10, calls // 4)))
        move = _summary(_times_ms(slider_move, calls))
        with_maps = _summary(_times_ms(slider_move_with_maps, max(10, calls // 4)))
    result = {
        "model": preset, "stored_epochs": len(stored), "calls": calls, "backend": keras.backend.backend(),
        "device": system.device_info().description, "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
        "model_predict": base, "slider_move": move, "slider_move_with_maps": with_maps, "target_ms": TARGET_MS,
    }
    result["move_over_predict"] = move["median_ms"] / base["median_ms"]
    result["move_with_maps_over_predict"] = with_maps["median_ms"] / base["median_ms"]
    result["meets_target"] = move["p95_ms"] < TARGET_MS
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-3layer", help="preset to build (default seed-3layer)")
    parser.add_argument("--epochs", type=int, default=6, help="stored epochs to slide through (default 6)")
    parser.add_argument("--calls", type=int, default=200, help="timed slider moves (default 200)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 20 moves: a smoke test for CI")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    arguments = parser.parse_args(argv)
    if arguments.epochs < 2 or arguments.calls < 1:
        parser.error("--epochs needs at least 2 (a slider needs two epochs) and --calls at least 1")
    epochs, calls = (2, 20) if arguments.quick else (arguments.epochs, arguments.calls)
    result = run(arguments.preset, epochs, calls)
    timings = [f"  {label:36s} median {result[key]['median_ms']:7.2f} ms   p95 {result[key]['p95_ms']:7.2f} ms"
               for label, key in (("model.predict (baseline)", "model_predict"), ("slider move", "slider_move"),
                                  ("slider move + saliency + Grad-CAM", "slider_move_with_maps"))]
    report([f"{result['model']} on {result['backend']} ({result['device']}, {result['cpus']} CPUs, load "
            f"{result['load_average']}), {result['stored_epochs']} stored epochs, {result['calls']} moves:", *timings,
            f"  slider move / model.predict          {result['move_over_predict']:7.2f}x",
            f"  with maps / model.predict            {result['move_with_maps_over_predict']:7.2f}x",
            f"  target: p95 of a move < {result['target_ms']:.0f} ms: "
            f"{'met' if result['meets_target'] else 'NOT met'}"], result, arguments.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
