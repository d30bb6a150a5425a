"""Every speed measurement of MNIST Lab in one run, on the machine it runs on: a table and a JSON file.

1. seconds per epoch of each preset through the app's training path and through a bare model.fit;
2. single-drawing latency (preprocessing + prediction) through the Draw page's path and model.predict;
3. the home page's time to first render in headless Chromium, from the start of `streamlit run`;
4. quick-cnn: training seconds and the test accuracy reached (its preset settings, all 60,000 images);
   fast-cnn over three seeds against one quick-cnn run: accuracy, training seconds and their ratio;
5. an epoch in a worker process with a page watching, against a bare model.fit, and the seconds from
   pressing Train to the first batch; 6. the same through Ray on a local instance (when Ray is installed);
7. the Train page's estimate of each preset's quick demo against the run as it trained;
8. one move of the Draw page's epoch slider against a plain model.predict;
9. a class's runs submitted at once, one and two at a time, against the compute floor (bare fits in one process);
10. thirty learners joining a class experiment from its banner: the projector's refresh, the server's health,
    and the last result on the projector against the compute floor.

Each part runs in its own process (so one part's threads and caches cannot slow another) and is itself
a comparison against a baseline measured in the same run. `--quick` runs every part at a tiny size:
it checks that the benchmarks still work, not how fast anything is.

    python benchmarks/run_all.py [--quick] [--json benchmarks/results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fast_cnn  # noqa: E402


def _run_part(arguments: list[str], folder: Path, name: str, env: dict) -> dict:
    output = folder / f"{name}.json"
    command = [sys.executable, *arguments, "--json", str(output)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(output.read_text())


def _quick_cnn(quick: bool, folder: Path, env: dict) -> dict:
    """Train quick-cnn with its own settings through the command line, as a teacher would."""
    command = [sys.executable, "-m", "mnist_lab", "train", "--arch", "quick-cnn", "--name", "benchmark quick-cnn"]
    if quick:
        command += ["--train-size", "600", "--epochs", "1"]
    completed = subprocess.run(command, cwd=ROOT, env={**env, "MNIST_LAB_RUNS": str(folder / "runs")},
                               capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    meta = json.loads((folder / "runs" / result["run_id"] / "run.json").read_text())
    return {
        "epochs": result["epochs"],
        "training_seconds": round(sum(meta["epoch_seconds"]), 2),
        "seconds_per_epoch": result["seconds_per_epoch"],
        "test_accuracy": result["test_accuracy"],
        "device": result["device"],
        "settings": meta["settings"],
    }


def run(quick: bool = False) -> dict:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        training_args = [str(HERE / "training_overhead.py")] + (["--quick"] if quick else [])
        draw_args = [str(HERE / "draw_latency.py")] + (["--quick"] if quick else [])
        render_args = [str(HERE / "first_render.py"), "--repeats", "1" if quick else "3"]
        executor_args = [str(HERE / "executor_overhead.py")] + (["--quick"] if quick else [])
        fast_args = [str(HERE / "fast_cnn.py")] + (["--quick", "--seeds", "1"] if quick else [])
        scrubber_args = [str(HERE / "epoch_scrubber.py")] + (["--quick"] if quick else [])
        class_args = [str(HERE / "class_throughput.py")] + (["--quick"] if quick else [])
        experiment_args = [str(HERE / "class_experiment.py")] + (["--quick"] if quick else [])
        results = {
            "machine": {"platform": platform.platform(), "processor": platform.machine(),
                        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count(), "python": platform.python_version()},
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quick": quick,
            "training": _run_part(training_args, folder, "training", env),
            "draw_latency": _run_part(draw_args, folder, "draw", env),
            "first_render": _run_part(render_args, folder, "render", env),
            "quick_cnn": _quick_cnn(quick, folder, env),
            "fast_cnn": _run_part(fast_args, folder, "fast_cnn", env),
            "process_executor": _run_part(executor_args + ["--executor", "process"], folder, "process", env),
            "estimates": _run_part([str(HERE / "training_overhead.py"), "--estimates"]  # Train page's estimate / quick demos
                                   + (["--quick", "--presets", "quick-cnn"] if quick else []), folder, "estimates", env),
            "ray_executor": (_run_part(executor_args + ["--executor", "ray"], folder, "ray", env)
                             if importlib.util.find_spec("ray") else {"error": ["Ray is not installed"]}),
            "epoch_scrubber": _run_part(scrubber_args, folder, "scrubber", env),
            "class_throughput": _run_part(class_args, folder, "class", env),
            "class_experiment": _run_part(experiment_args, folder, "experiment", env),
        }
    return results


def _per_result(line):
    """A part's lines: one, indented, per entry of its results (a preset, a net, a concurrency), as
    `line(part, key, result)` writes it."""
    return lambda part: [f"   {line(part, key, result)}" for key, result in part["results"].items()]


def _one_line(line):
    """A part's line: `line(part)`, indented."""
    return lambda part: [f"   {line(part)}"]


def _class_line(part: dict, concurrency: str, result: dict) -> str:
    floor = statistics.mean(part["floor_seconds"].values())
    return (f"{part['learners']} runs of {part['train_size']:,} images ({part['preset']}), {concurrency} at a time: "
            f"last model {result['last_model_seconds']:.1f} s, floor {floor:.1f} s, ratio {result['ratio']:.2f}; "
            f"first batch {max(result['first_batch_of_first_runs']):.1f} s after Train")


_EXECUTOR_LINES = _per_result(lambda part, preset, result: (
    f"{preset:<12} {part['executor']} {statistics.median(result['executor_seconds'][1:]):8.2f} s   "
    f"bare {statistics.median(result['bare_seconds']):8.2f} s   ratio {result['ratio']:.3f}   "
    f"first batch {result['seconds_to_first_batch']:.2f} s after Train"))

# Each part's key in the results, its heading in the table, and what it says under it.
PARTS = (
    ("training", "1. Seconds per epoch: app's training path against bare model.fit", _per_result(
        lambda part, preset, result: f"{preset:<12} app {result['median_seconds']['app']:8.2f} s   "
                                     f"bare {result['median_seconds']['bare']:8.2f} s   "
                                     f"ratio {result['median_ratio_app']:.3f}")),
    ("draw_latency", "2. One drawing: preprocessing + prediction", _one_line(
        lambda draw: f"{draw['model']}: Draw page path (model(x)) {draw['direct_call_ms']:.2f} ms   "
                     f"model.predict path {draw['model_predict_ms']:.2f} ms   "
                     f"ratio {draw['direct_call_ms'] / draw['model_predict_ms']:.3f}")),
    ("first_render", "3. Home page, from `streamlit run` to first render in Chromium", _one_line(
        lambda render: f"home {render['home_first_render_s']:.2f} s (device details at "
                       f"{render['home_device_details_s']:.2f} s)   bare Streamlit page "
                       f"{render['baseline_first_render_s']:.2f} s   ratio {render['ratio']:.2f}")),
    ("quick_cnn", "4. quick-cnn with its own settings", _one_line(
        lambda quick_cnn: f"{quick_cnn['epochs']} epoch(s), {quick_cnn['training_seconds']:.1f} s of training, "
                          f"test accuracy {quick_cnn['test_accuracy'] * 100:.2f} % on {quick_cnn['device']}")),
    ("fast_cnn", "4b. fast-cnn (two epochs, three seeds) against quick-cnn, each with its own settings",
     fast_cnn.lines),
    ("process_executor", "5. An epoch in a worker process, watched, against bare model.fit", _EXECUTOR_LINES),
    ("ray_executor", "6. The same as a Ray task on a local instance", _EXECUTOR_LINES),
    ("estimates", "7. The Train page's estimate of each quick demo against the run (target: ratio 0.7 to 1.3)",
     _per_result(lambda part, name, result: (
         f"{name:<12} estimate {result['estimated']['run']:7.1f} s   measured {result['measured']['run']:7.1f} s   "
         f"ratio {result['ratio_run']:.2f} (epoch {result['ratio_epoch']:.2f})"))),
    ("epoch_scrubber", "8. One move of the Draw page's epoch slider (target: p95 under 100 ms)", _one_line(
        lambda part: f"{part['model']}: slider move {part['slider_move']['median_ms']:.1f} ms (p95 "
                     f"{part['slider_move']['p95_ms']:.1f} ms), with saliency and Grad-CAM "
                     f"{part['slider_move_with_maps']['median_ms']:.1f} ms   "
                     f"model.predict {part['model_predict']['median_ms']:.1f} ms   "
                     f"ratio {part['move_over_predict']:.2f}")),
    ("class_throughput", "9. A class's runs at once against the compute floor (target: ratio 1.3 or less)",
     _per_result(_class_line)),
    ("class_experiment", "10. A class experiment: the last result on the projector against the compute floor", _one_line(
        lambda part: f"{part['learners']} learners, {part['preset']} by {part['variable']}: last result "
                     f"{part['last_result_on_projector_s']:.1f} s, floor {statistics.mean(part['floor_s'].values()):.1f} s, "
                     f"ratio {part['ratio']:.2f}; projector refresh p95 {part['projector_refresh_s']['p95']:.2f} s, "
                     f"health p95 {part['health_s']['p95']:.2f} s")),
)


def _table(results: dict) -> str:
    lines = [f"MNIST Lab benchmarks on {results['machine']['platform']} "
             f"({results['machine']['cpu_cores']} cores){' [quick mode]' if results['quick'] else ''}", ""]
    for key, title, describe in PARTS:
        part = results[key]
        lines.append(title)
        lines.extend([f"   failed: {part['error']}"] if "error" in part else describe(part))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks still run")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where to write the results")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(_table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.json}")
    failed = [key for key, _, _ in PARTS if "error" in results[key] and not (
        key == "ray_executor" and results[key]["error"] == ["Ray is not installed"])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
