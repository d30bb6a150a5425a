"""What the live charts cost: an epoch through the app's training path against a bare `model.fit`.

For each preset, one model is trained epoch after epoch, alternating between
- bare:     model.fit(x, y, batch_size, validation_data, verbose=0): the baseline;
- app:      training.fit_epochs, the path every run takes: the live-metrics callback
            (async_safe = True), the live.json publisher thread, and after the epoch the model
            saved atomically and the history appended;
- app-sync: the same with a callback that does not declare async_safe (Keras then runs the batch
            hooks on the training thread where the backend could have dispatched them).
Same model, data, batch size and validation images; the order of the variants rotates every
repeat, and each ratio is taken between neighbouring epochs, so slow drifts of a shared machine
cancel out. The median ratio over the repeats is reported (target: at most 1.03), in wall time and
in this process's CPU time (the work done, which other programs on a shared machine do not inflate).

    python benchmarks/training_overhead.py [--quick] [--train-size N] [--repeats R] [--json out.json]

With --estimates it measures instead what the Train page promises: each preset's quick demo trained as the
app trains it (a worker process, timed from pressing Train to the test score), against the page's estimate
from a calibration of this machine measured just before that run; the ratio estimate / measured should stay
within 0.7 .. 1.3. --learner-nets adds nets a learner might build; --train-size and --validation-size
shrink the runs (the test images are always all 10,000).

    python benchmarks/training_overhead.py --estimates [--train-size N] [--validation-size N]
        [--presets P ...] [--learner-nets N ...] [--json out.json]

Without MNIST_LAB_DATA (and without Keras' download) random images stand in for MNIST: speed does
not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_lab import system, training  # noqa: E402
from mnist_lab.architecture.presets import PRESETS, preset_layers  # noqa: E402
from mnist_lab.architecture.report import analyze  # noqa: E402
from mnist_lab.architecture.sources import custom_architecture, preset_architecture  # noqa: E402
from mnist_lab.runs import RunStore  # noqa: E402
from common import load_images  # noqa: E402

VARIANTS = ("bare", "app", "app-sync")
TARGET = 1.03


def sync_callback_class():
    """The live-metrics callback without async_safe: what the app would do without that attribute."""
    class SyncLiveMetrics(training.live_metrics_class()):
        async_safe = False

    return SyncLiveMetrics


def time_epoch(variant, model, fit_model, arrays, settings, store) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one epoch of one variant, the app's per-epoch
    saving included. CPU time counts the work done, whatever else the machine runs meanwhile."""
    if variant == "bare":
        start, cpu = time.perf_counter(), time.process_time()
        fit_model.fit(arrays["x_train"], arrays["y_train"], batch_size=settings.batch_size, epochs=1,
                      validation_data=(arrays["x_validation"], arrays["y_validation"]), verbose=0, shuffle=True)
        return time.perf_counter() - start, time.process_time() - cpu
    run_id = store.create("benchmark", preset_architecture("seed-3layer"), settings.as_dict())["id"]
    live = training.LiveState(run_id, settings)
    live.start()
    callback_class = sync_callback_class() if variant == "app-sync" else None
    start, cpu = time.perf_counter(), time.process_time()
    publisher = training.LivePublisher(store, run_id, live)
    outcome = training.fit_epochs(store, run_id, live, model, fit_model, arrays, settings, callback_class)
    publisher.close()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    if outcome.status != "completed" or len(store.history(run_id)) != 1:
        raise RuntimeError(f"The app's path did not finish its epoch: {outcome.status} {outcome.message}")
    return seconds, cpu_seconds


def measure(presets, train_size, validation_size, repeats, batch_size, estimate):
    mnist, source = load_images(train_size, validation_size)
    settings = training.TrainSettings(epochs=1, batch_size=batch_size, train_size=train_size,
                                      validation_size=validation_size).resolve(len(mnist.x_train), len(mnist.x_test))
    arrays = training.prepare_arrays(mnist, settings)
    calibration = training.calibrate() if estimate else None
    store = RunStore(tempfile.mkdtemp(prefix="mnist-lab-benchmark-"))
    models = {}
    for preset in presets:
        models[preset] = training.build_for_training(preset_layers(preset), settings, preset)
        # A full batch and a last batch as short as the epoch's: every shape gets traced here, not timed.
        warm_up = {key: value[:batch_size + len(value) % batch_size] for key, value in arrays.items()}
        time_epoch("bare", *models[preset], warm_up, settings, store)
        for variant in VARIANTS[1:]:
            time_epoch(variant, *models[preset], warm_up, settings, store)
    seconds = {preset: {variant: [] for variant in VARIANTS} for preset in presets}
    cpu_seconds = {preset: {variant: [] for variant in VARIANTS} for preset in presets}
    for repeat in range(repeats):
        for preset in presets:
            order = VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]
            for variant in order:
                wall, cpu = time_epoch(variant, *models[preset], arrays, settings, store)
                seconds[preset][variant].append(wall)
                cpu_seconds[preset][variant].append(cpu)
                print(f"  repeat {repeat + 1}/{repeats} {preset:12s} {variant:9s} {wall:8.2f} s  (CPU {cpu:8.2f} s)",
                      file=sys.stderr, flush=True)
    results = {}
    for preset in presets:
        times, cpu_times = seconds[preset], cpu_seconds[preset]
        multiply_adds = analyze(preset_layers(preset)).multiply_adds
        result = {
            "multiply_adds": multiply_adds,
            "seconds": times,
            "cpu_seconds": cpu_times,
            "median_seconds": {variant: statistics.median(values) for variant, values in times.items()},
            "images_per_second_bare": train_size / statistics.median(times["bare"]),
        }
        for variant in VARIANTS[1:]:
            ratios = [app / bare for app, bare in zip(times[variant], times["bare"])]
            result[f"ratios_{variant}"] = ratios
            result[f"median_ratio_{variant}"] = statistics.median(ratios)
            cpu_ratios = [app / bare for app, bare in zip(cpu_times[variant], cpu_times["bare"])]
            result[f"cpu_ratios_{variant}"] = cpu_ratios
            result[f"median_cpu_ratio_{variant}"] = statistics.median(cpu_ratios)
        if calibration is not None:
            result["estimated_seconds"] = training.estimate_epoch(calibration, multiply_adds, settings).epoch_seconds
        results[preset] = result
    return {"data": source, "settings": settings.as_dict(), "repeats": repeats, "results": results,
            "calibration": None if calibration is None else calibration.__dict__}


# Nets a learner might build, unlike the presets and the calibration's reference nets: the estimate must
# hold for them too.
LEARNER_NETS = {
    "learner-3x3": [{"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "activation": "relu"},
                    {"type": "Conv2D", "filters": 64, "kernel_size": [3, 3], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]}, {"type": "Dropout", "rate": 0.25},
                    {"type": "Flatten"}, {"type": "Dense", "units": 128, "activation": "relu"},
                    {"type": "Dropout", "rate": 0.5}],
    "learner-5x5-bn": [{"type": "Conv2D", "filters": 16, "kernel_size": [5, 5], "padding": "same", "activation": "relu"},
                       {"type": "BatchNormalization", "axis": -1}, {"type": "MaxPooling2D", "pool_size": [2, 2]},
                       {"type": "Conv2D", "filters": 32, "kernel_size": [5, 5], "padding": "same",
                        "activation": "relu"},
                       {"type": "BatchNormalization", "axis": -1}, {"type": "MaxPooling2D", "pool_size": [2, 2]},
                       {"type": "Flatten"}, {"type": "Dense", "units": 256, "activation": "relu"}],
}


def estimates_against_runs(presets, quick: bool, learner_nets=(), train_size: int | None = None,
                           validation_size: int | None = None) -> dict:
    """Each net's quick demo trained as the app trains it (a worker process, from pressing Train), against
    the Train page's estimate from a calibration of this machine measured just before that run, in this
    process, so that a shared machine's load weighs on both alike: start-up, the epoch, the whole run.
    Measured: the run's recorded seconds (run.json's epoch_seconds, live.json's startup_seconds, and the
    time from submit to its end)."""
    mnist, source = load_images(10_000, 5_000)
    manager = training.TrainingManager(RunStore(tempfile.mkdtemp(prefix="mnist-lab-estimates-")), executor="process")
    nets = [(preset, preset_architecture(preset), preset) for preset in presets]
    nets += [(name, custom_architecture(LEARNER_NETS[name], name), None) for name in learner_nets]
    results = {}
    try:
        for name, architecture, preset in nets:
            plan = training.plans.PLANS["quick"]
            values = {**(training.plans.recipe("preset", preset) if preset else {}),
                      **plan.values(len(mnist.x_train), preset)}
            if quick:
                values.update(train_size=512, validation_size=128)
            if train_size:
                values["train_size"] = train_size
            if validation_size:
                values["validation_size"] = validation_size
            architecture, report, settings, _ = manager.prepare(architecture, values)
            if hasattr(manager.executor, "wait_until_warm"):  # as on a server that has been up a while
                manager.executor.wait_until_warm()
            calibration = training.calibrate()
            estimate = training.estimate_epoch(calibration, report, settings)
            submitted = time.perf_counter()
            run_id = manager.submit(architecture, settings, name=f"estimate {name}")
            manager.wait(run_id)
            run_seconds = time.perf_counter() - submitted
            meta = manager.store.get(run_id)
            if meta["status"] != "completed":
                raise RuntimeError(f"{name}: the run did not complete: {meta['status']} {meta['message']}")
            live = manager.store.live(run_id)
            startup = live.get("startup_seconds")
            epoch = meta["epoch_seconds"][0]
            results[name] = {
                "settings": settings.as_dict(),
                "multiply_adds": report.multiply_adds,
                "calibration": calibration.__dict__,
                "estimated": {"startup": estimate.startup_seconds, "epoch": estimate.epoch_seconds,
                              "finish": estimate.finish_seconds, "run": estimate.run_seconds},
                "measured": {"startup": startup, "epoch": epoch, "run": run_seconds},
                "ratio_epoch": estimate.epoch_seconds / epoch,
                "ratio_run": estimate.run_seconds / run_seconds,
                "load_average": os.getloadavg()[0],
            }
            print(f"  {name:14s} estimate {estimate.run_seconds:7.1f} s  measured {run_seconds:7.1f} s  "
                  f"ratio {estimate.run_seconds / run_seconds:5.2f}  (epoch {estimate.epoch_seconds:6.1f} / "
                  f"{epoch:6.1f} s, start-up {estimate.startup_seconds:5.1f} / {startup or 0:5.1f} s, "
                  f"end {estimate.finish_seconds:5.1f} s)", file=sys.stderr, flush=True)
    finally:
        manager.shut_down()
    return {"data": source, "results": results, "target": "estimate / measured within 0.7 .. 1.3"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small check for CI: 1,024 images, 3 repeats")
    parser.add_argument("--train-size", type=int,
                        help="training images per epoch (default 10,000; with --estimates, the quick demo's)")
    parser.add_argument("--repeats", type=int, help="timed epochs per variant (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS),
                        choices=list(PRESETS))
    parser.add_argument("--no-estimate", action="store_true", help="skip comparing the epoch-time estimate")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--estimates", action="store_true",
                        help="instead: each preset's quick demo as the app trains it, against the Train page's estimate")
    parser.add_argument("--learner-nets", nargs="*", default=[], choices=list(LEARNER_NETS),
                        help="with --estimates: nets a learner might build, as well as the presets")
    parser.add_argument("--validation-size", type=int, help="with --estimates: validation images (default 5,000)")
    arguments = parser.parse_args(argv)
    if arguments.estimates:
        system.configure_gpu_memory()
        report = estimates_against_runs(arguments.presets, arguments.quick, arguments.learner_nets,
                                        arguments.train_size, arguments.validation_size)
        print(f"\n{'net':14s} {'estimate s':>11s} {'measured s':>11s} {'run ratio':>10s} {'epoch ratio':>12s}")
        for name, result in report["results"].items():
            print(f"{name:14s} {result['estimated']['run']:11.1f} {result['measured']['run']:11.1f} "
                  f"{result['ratio_run']:10.2f} {result['ratio_epoch']:12.2f}")
        report.update(device=system.device_info().description, load_average=os.getloadavg())
        if arguments.json:
            arguments.json.write_text(json.dumps(report, indent=1))
        return 0
    train_size = arguments.train_size or (1024 if arguments.quick else 10_000)
    repeats = arguments.repeats or 3
    validation_size = max(128, train_size // 5)
    system.configure_gpu_memory()
    info = system.device_info()
    print(f"Device: {info.description}; Keras {info.keras_version}, {info.backend} {info.framework_version}; "
          f"{train_size:,} training and {validation_size:,} validation images per epoch, batch "
          f"{arguments.batch_size}, {repeats} repeats", file=sys.stderr)
    report = measure(arguments.presets, train_size, validation_size, repeats, arguments.batch_size,
                     estimate=not (arguments.no_estimate or arguments.quick))
    report.update(device=info.description, backend=f"{info.backend} {info.framework_version}",
                  keras=info.keras_version, python=platform.python_version(), target=TARGET,
                  cpu_cores=system.cpu_cores(), load_average=os.getloadavg())
    print(f"\n{'preset':12s} {'bare s':>8s} {'app s':>8s} {'ratio':>7s} {'CPU ratio':>10s} {'sync ratio':>11s} "
          f"{'sync CPU':>9s} {'images/s':>9s} {'estimate s':>11s}")
    for preset, result in report["results"].items():
        median = result["median_seconds"]
        estimate = result.get("estimated_seconds")
        print(f"{preset:12s} {median['bare']:8.2f} {median['app']:8.2f} {result['median_ratio_app']:7.3f} "
              f"{result['median_cpu_ratio_app']:10.3f} {result['median_ratio_app-sync']:11.3f} "
              f"{result['median_cpu_ratio_app-sync']:9.3f} {result['images_per_second_bare']:9.0f} "
              + (f"{estimate:11.2f}" if estimate is not None else f"{'–':>11s}"))
    worst = max(result["median_ratio_app"] for result in report["results"].values())
    worst_cpu = max(result["median_cpu_ratio_app"] for result in report["results"].values())
    print(f"\nWorst median ratio (app / bare): {worst:.3f} in time, {worst_cpu:.3f} in CPU time (target ≤ {TARGET}); "
          f"machine load average {report['load_average'][0]:.2f} on {report['cpu_cores']} cores.")
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
