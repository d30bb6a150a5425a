"""Opening a run in depth on the Compare page: predicting the 10,000 test images, cold and cached.

Baselines, measured in the same run:
- cached vs cold: reading runs/<id>/evaluation.npz against loading the model and predicting
  (what reopening a run saves);
- `model.predict` with batches of 1,000 (what evaluation.py uses) against eager `model(x)` calls on
  chunks of 1,000.
The weights do not matter for speed, so the net is built untrained (no training time here).

    python benchmarks/evaluation.py [--preset seed-3layer] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mnist_lab import data, system  # noqa: E402
from mnist_lab.evaluation import evaluation
from mnist_lab.architecture.building import build_model  # noqa: E402
from mnist_lab.architecture.presets import preset_layers  # noqa: E402
from mnist_lab.runs import RunStore  # noqa: E402


def timed(function, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-3layer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    options = parser.parse_args()

    system.configure_gpu_memory()
    import keras

    mnist = data.load_mnist()
    images, labels = mnist.x_test, mnist.y_test
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "runs")
        run_id = store.create("benchmark", {"name": options.preset, "layers": preset_layers(options.preset)},
                              {})["id"]
        model = build_model(preset_layers(options.preset))
        model.save(store.model_path(run_id))

        def cold():
            evaluation.cache_path(store, run_id).unlink(missing_ok=True)
            evaluation.evaluate_run(store, run_id, images, labels)

        cold()  # first call traces the graph: not what a learner waits for twice
        cold_seconds = timed(cold, options.repeats)
        cached_seconds = timed(lambda: evaluation.evaluate_run(store, run_id, images, labels), options.repeats)

        loaded = store.load_model(run_id)
        inputs = data.to_model_input(images)

        def eager():
            return np.concatenate([keras.ops.convert_to_numpy(loaded(inputs[start:start + 1000], training=False))
                                   for start in range(0, len(inputs), 1000)])

        evaluation.predict_probabilities(loaded, images)
        eager()
        predict_seconds = timed(lambda: evaluation.predict_probabilities(loaded, images), options.repeats)
        eager_seconds = timed(eager, options.repeats)

    results = {
        "preset": options.preset, "images": int(len(images)), "device": system.device_info().description,
        "backend": keras.backend.backend(),
        "cold_seconds": round(cold_seconds, 3), "cached_seconds": round(cached_seconds, 4),
        "cold_over_cached": round(cold_seconds / cached_seconds, 1),
        "predict_seconds": round(predict_seconds, 3), "eager_chunks_seconds": round(eager_seconds, 3),
        "eager_over_predict": round(eager_seconds / predict_seconds, 2),
    }
    print(json.dumps(results, indent=1))
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
