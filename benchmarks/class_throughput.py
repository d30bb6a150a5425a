"""How soon a class has its models: N learners' runs submitted at once through the app's training manager,
against the compute floor measured in the same run (the same N runs as bare `model.fit` calls in this
process: build the net, fit its epochs with the same data, batch size and validation, one test pass).

The floor is timed before and after the class (its mean is the baseline, so a drift of the machine's load
weighs on both sides alike). For each concurrency asked for, a fresh manager is made and its executor is
let warm up first, as on a server that has been up a while; then the N runs are submitted at once.
Reported per concurrency: seconds to the last model and its ratio to the floor (target: at most 1.3 for
ten 1,000-image runs), the median and worst wait from pressing Train to the first finished batch
(target: at most 3 s for a run that does not queue), and how many worker processes were started.

Each concurrency is measured at each pack size asked for (1: runs never pack; see training/packed_runs.py).

    python benchmarks/class_throughput.py [--learners 10] [--train-size 1000] [--preset seed-3layer]
        [--concurrency 1 2] [--pack-sizes 1 4] [--executor process] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_lab import system, training  # noqa: E402
from mnist_lab.architecture.presets import PRESETS, preset_layers  # noqa: E402
from mnist_lab.architecture.sources import preset_architecture  # noqa: E402
from mnist_lab.runs import RunStatus, RunStore  # noqa: E402
from mnist_lab.training.packed_runs import DEFAULT_PACK_SIZE, PACK_SIZE_VARIABLE  # noqa: E402
from common import images_for_workers  # noqa: E402

LAST_MODEL_TARGET = 1.3
FIRST_BATCH_TARGET_SECONDS = 3.0


def floor_seconds(layers: list, arrays: dict, settings, learners: int) -> float:
    """Seconds of `learners` bare runs of the net `layers` one after another: build, fit, one test pass each."""
    start = time.perf_counter()
    for _ in range(learners):
        _, fit_model = training.build_for_training(layers, settings, "floor")
        fit_model.fit(arrays["x_train"], arrays["y_train"], batch_size=settings.batch_size, epochs=settings.epochs,
                      validation_data=(arrays["x_validation"], arrays["y_validation"]), verbose=0, shuffle=True)
        fit_model.evaluate(arrays["x_test"], arrays["y_test"], batch_size=256, verbose=0)
    return time.perf_counter() - start


def class_seconds(folder: Path, executor: str, concurrency: int, preset: str, settings, learners: int,
                  pack_size: int = 1) -> dict:
    """Submit `learners` runs at once to a warm manager; when each run's first batch and end came."""
    os.environ[PACK_SIZE_VARIABLE] = str(pack_size)
    manager = training.TrainingManager(RunStore(folder / f"runs-{executor}-{concurrency}-{pack_size}"),
                                       max_concurrent=concurrency, max_queued=learners, executor=executor)
    if hasattr(manager.executor, "wait_until_warm"):
        manager.executor.wait_until_warm()
    architecture = preset_architecture(preset)
    first_batch: dict[str, float] = {}
    started = time.perf_counter()
    run_ids = [manager.submit(architecture, dict(settings.as_dict(), seed=seed), name=f"learner {seed}")
               for seed in range(learners)]
    accepted = time.perf_counter() - started

    def watch(run_id: str) -> None:
        progress, version = manager.live_state(run_id), -1
        while not manager.wait(run_id, 0):
            if (progress.snapshot().get("batches_done") or 0) >= 1:
                first_batch[run_id] = time.perf_counter() - started
                return
            version = progress.wait_for_change(version, 0.05)
            progress = manager.live_state(run_id)  # a queued run's progress is replaced when it starts

    watchers = [threading.Thread(target=watch, args=(run_id,), daemon=True) for run_id in run_ids]
    for watcher in watchers:
        watcher.start()
    for run_id in run_ids:
        manager.wait(run_id)
    last = time.perf_counter() - started
    for watcher in watchers:
        watcher.join()
    statuses = [manager.store.get(run_id)["status"] for run_id in run_ids]
    packed = sum(1 for run_id in run_ids if manager.store.get(run_id).get("packed_with"))
    workers = getattr(manager.executor, "workers_started", None)
    manager.shut_down()
    if statuses != [RunStatus.COMPLETED] * learners:
        raise RuntimeError(f"Not every run completed: {statuses}")
    waits = sorted(first_batch.values())
    return {"last_model_seconds": last, "accepted_seconds": accepted, "first_batch_seconds": waits,
            "first_batch_of_first_runs": waits[:concurrency], "workers_started": workers, "runs_packed": packed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--preset", default="seed-3layer", choices=list(PRESETS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pack-sizes", type=int, nargs="+", default=[1, DEFAULT_PACK_SIZE])
    parser.add_argument("--executor", default="process", choices=list(training.EXECUTOR_NAMES))
    parser.add_argument("--quick", action="store_true", help="a small check that it works: 3 learners, 200 images")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    learners = 3 if arguments.quick else arguments.learners
    train_size = 200 if arguments.quick else arguments.train_size
    with images_for_workers(train_size) as (mnist, source, validation_size, folder):
        settings = training.TrainSettings(epochs=arguments.epochs, batch_size=arguments.batch_size,
                                          train_size=train_size, validation_size=validation_size
                                          ).resolve(len(mnist.x_train), len(mnist.x_test))
        arrays = training.prepare_arrays(mnist, settings)
        system.configure_gpu_memory()
        info = system.device_info()
        layers = preset_layers(arguments.preset)
        floor_seconds(layers, arrays, settings, 1)  # the backend's one-time start, outside the floor
        before = floor_seconds(layers, arrays, settings, learners)
        results = {}
        for concurrency in arguments.concurrency:
            for pack_size in arguments.pack_sizes:
                result = class_seconds(folder, arguments.executor, concurrency, arguments.preset, settings,
                                       learners, pack_size)
                results[(concurrency, pack_size)] = result
                print(f"  concurrency {concurrency}, packs of up to {pack_size}: last model "
                      f"{result['last_model_seconds']:.1f} s", file=sys.stderr, flush=True)
        after = floor_seconds(layers, arrays, settings, learners)
    floor = (before + after) / 2
    print(f"\n{learners} learners, {arguments.preset}, {train_size:,} {source} images, {arguments.epochs} epoch(s), "
          f"batch {arguments.batch_size}, {arguments.executor} executor on {info.description} ({info.backend})")
    print(f"Compute floor: {floor:.1f} s ({before:.1f} s before, {after:.1f} s after)")
    print(f"{'concurrency':>11s} {'pack':>5s} {'packed':>7s} {'last model s':>13s} {'ratio':>6s} "
          f"{'first batch s (median / worst of first)':>40s} {'workers':>8s}")
    for (concurrency, pack_size), result in results.items():
        result["ratio"] = result["last_model_seconds"] / floor
        first = result["first_batch_of_first_runs"]
        print(f"{concurrency:11d} {pack_size:5d} {result['runs_packed']:7d} {result['last_model_seconds']:13.1f} "
              f"{result['ratio']:6.2f} {statistics.median(result['first_batch_seconds']):>25.2f} / {max(first):5.2f}"
              f"{str(result['workers_started']):>17s}")
    print(f"Targets: last model ≤ {LAST_MODEL_TARGET}× the floor, first batch ≤ {FIRST_BATCH_TARGET_SECONDS:.0f} s "
          f"after Train for a run that does not queue; load average {os.getloadavg()[0]:.2f} on "
          f"{system.cpu_cores()} cores.")
    if arguments.json:
        arguments.json.write_text(json.dumps({
            "learners": learners, "preset": arguments.preset, "train_size": train_size, "epochs": arguments.epochs,
            "batch_size": arguments.batch_size, "executor": arguments.executor, "device": info.description,
            "backend": info.backend, "data": source, "floor_seconds": {"before": before, "after": after},
            "results": {f"{concurrency}x{pack}": value for (concurrency, pack), value in results.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
