"""What training in an executor costs: an epoch in a worker process (or a Ray task) with a page watching,
against a bare `model.fit(verbose=0)` of the same net and data in this process; and the time from
pressing Train to the first finished batch, with the server warm.

For each preset: two bare epochs (the first traces, the second is timed), then one run of 1 + R epochs
through the executor while a thread polls its progress once a second as a watching page does, then
two bare epochs again. The ratio is the median of the executor's epochs 2.. over the median of the
timed bare epochs before and after it (target: at most 1.03 on a quiet machine). The executor's first
epoch includes building and tracing the net, so it counts in the start-up figure instead.

    python benchmarks/executor_overhead.py [--quick] [--executor process|ray|thread] [--json out.json]
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
from mnist_lab.runs import RunStore  # noqa: E402
from common import images_for_workers  # noqa: E402

TARGET = 1.03
START_TARGET_SECONDS = 5.0


def bare_epochs(preset, arrays, settings, count):
    """Seconds of `count` epochs of a bare fit, after one untimed epoch that traces the net."""
    model, fit_model = training.build_for_training(preset_layers(preset), settings, preset)
    times = []
    for index in range(count + 1):
        start = time.perf_counter()
        fit_model.fit(arrays["x_train"], arrays["y_train"], batch_size=settings.batch_size, epochs=1,
                      validation_data=(arrays["x_validation"], arrays["y_validation"]), verbose=0, shuffle=True)
        if index:
            times.append(time.perf_counter() - start)
    return times


def executor_run(manager, preset, settings):
    """(epoch seconds, seconds from submit to the first finished batch) of one run with a page watching."""
    stop_watching = threading.Event()
    submitted = time.perf_counter()
    run_id = manager.submit(preset_architecture(preset), settings, name=f"benchmark {preset}")
    first_batch = []

    def watch():
        progress = manager.live_state(run_id)
        version = -1
        while not stop_watching.is_set():
            version = progress.wait_for_change(version, 0.05)
            if not first_batch and (progress.snapshot().get("batches_done") or 0) >= 1:
                first_batch.append(time.perf_counter() - submitted)
            manager.live(run_id)  # what each watching page reads once a second

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    manager.wait(run_id)
    stop_watching.set()
    watcher.join()
    meta = manager.store.get(run_id)
    if meta["status"] != "completed":
        raise RuntimeError(f"The run did not complete: {meta['status']} {meta['message']}")
    return [row["seconds"] for row in manager.store.history(run_id)], first_batch[0] if first_batch else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small check for CI: 512 images, quick-cnn only")
    parser.add_argument("--executor", default="process", choices=list(training.EXECUTOR_NAMES))
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--repeats", type=int, help="timed epochs per side (default 3)")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS))
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    train_size = arguments.train_size or (512 if arguments.quick else 10_000)
    repeats = arguments.repeats or (1 if arguments.quick else 3)
    presets = arguments.presets or (["quick-cnn"] if arguments.quick else list(PRESETS))
    with images_for_workers(train_size) as (mnist, source, validation_size, folder):
        settings = training.TrainSettings(epochs=1 + repeats, batch_size=128, train_size=train_size,
                                          validation_size=validation_size).resolve(len(mnist.x_train),
                                                                                   len(mnist.x_test))
        arrays = training.prepare_arrays(mnist, settings)
        system.configure_gpu_memory()
        info = system.device_info()
        manager = training.TrainingManager(RunStore(folder / "runs"), executor=arguments.executor)
        if hasattr(manager.executor, "wait_until_warm"):
            manager.executor.wait_until_warm()
        results = {}
        for preset in presets:
            before = bare_epochs(preset, arrays, settings, repeats)
            epochs, start = executor_run(manager, preset, settings)
            after = bare_epochs(preset, arrays, settings, repeats)
            bare = statistics.median(before + after)
            results[preset] = {"bare_seconds": before + after, "executor_seconds": epochs,
                               "ratio": statistics.median(epochs[1:]) / bare, "seconds_to_first_batch": start}
            print(f"  {preset:12s} bare {bare:7.2f} s  {arguments.executor} {statistics.median(epochs[1:]):7.2f} s  "
                  f"first batch after {start:5.2f} s", file=sys.stderr, flush=True)
        manager.shut_down()
    print(f"\n{arguments.executor} executor on {info.description} ({info.backend}), {source}, {train_size:,} images, "
          f"{repeats} timed epoch(s):")
    print(f"{'preset':12s} {'bare s':>8s} {'executor s':>11s} {'ratio':>7s} {'first batch s':>14s}")
    for preset, result in results.items():
        print(f"{preset:12s} {statistics.median(result['bare_seconds']):8.2f} "
              f"{statistics.median(result['executor_seconds'][1:]):11.2f} {result['ratio']:7.3f} "
              f"{result['seconds_to_first_batch']:14.2f}")
    print(f"Targets: ratio ≤ {TARGET}, first batch ≤ {START_TARGET_SECONDS:.0f} s after pressing Train; "
          f"load average {os.getloadavg()[0]:.2f} on {system.cpu_cores()} cores.")
    if arguments.json:
        arguments.json.write_text(json.dumps({"executor": arguments.executor, "device": info.description,
                                              "backend": info.backend, "data": source, "train_size": train_size,
                                              "repeats": repeats, "results": results, "target": TARGET}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
