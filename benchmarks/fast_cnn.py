"""fast-cnn against quick-cnn: each trained with its own preset settings through the command line, as a teacher
would, in one run on the machine it runs on. fast-cnn trains over three seeds, quick-cnn once; the report gives
the test accuracy and the training seconds (the run's recorded epoch seconds) of each run, and the ratio of
fast-cnn's median training time to quick-cnn's (the aim: at least 99.0 % on every seed within 15 s of training
on a quiet 2-core CPU, where quick-cnn's two epochs take 11 s, so a ratio of at most 1.35; fast-cnn's two epochs
cost 3/5 of quick-cnn's multiply-adds).

    python benchmarks/fast_cnn.py [--quick] [--seeds 1 2 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_TRAIN_SIZE = 600


def train(preset: str, seed: int, runs: Path, quick: bool) -> dict:
    """One run of `preset` with its own settings (and `seed`) through `python -m mnist_lab train`."""
    command = [sys.executable, "-m", "mnist_lab", "train", "--arch", preset, "--seed", str(seed),
               "--name", f"benchmark {preset} seed {seed}"]
    if quick:
        command += ["--train-size", str(QUICK_TRAIN_SIZE), "--epochs", "1"]
    completed = subprocess.run(command, cwd=ROOT, env={**os.environ, "MNIST_LAB_RUNS": str(runs)},
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError((completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["failed"])
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    meta = json.loads((runs / result["run_id"] / "run.json").read_text())
    return {"seed": seed, "epochs": result["epochs"], "training_seconds": round(sum(meta["epoch_seconds"]), 2),
            "test_accuracy": result["test_accuracy"], "device": result["device"], "settings": meta["settings"]}


def run(seeds: list[int], quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as temporary:
        runs = Path(temporary)
        fast = [train("fast-cnn", seed, runs, quick) for seed in seeds]
        quick_cnn = train("quick-cnn", seeds[0], runs, quick)
    fast_seconds = statistics.median(result["training_seconds"] for result in fast)
    return {
        "quick": quick,
        "fast_cnn": fast,
        "quick_cnn": quick_cnn,
        "fast_cnn_median_seconds": fast_seconds,
        "fast_cnn_min_accuracy": min(result["test_accuracy"] for result in fast),
        "ratio_fast_to_quick_seconds": round(fast_seconds / quick_cnn["training_seconds"], 3),
    }


def lines(report: dict) -> list[str]:
    rows = [f"   fast-cnn  seed {result['seed']}: {result['training_seconds']:6.1f} s of training, "
            f"test accuracy {100 * result['test_accuracy']:.2f} %" for result in report["fast_cnn"]]
    quick = report["quick_cnn"]
    rows.append(f"   quick-cnn seed {quick['seed']}: {quick['training_seconds']:6.1f} s of training "
                f"({quick['epochs']} epochs), test accuracy {100 * quick['test_accuracy']:.2f} %")
    rows.append(f"   fast-cnn median {report['fast_cnn_median_seconds']:.1f} s, lowest accuracy "
                f"{100 * report['fast_cnn_min_accuracy']:.2f} %; time ratio fast/quick "
                f"{report['ratio_fast_to_quick_seconds']:.3f} on {quick['device']}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRAIN_SIZE} images, one epoch: checks it runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="fast-cnn's seeds")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args(argv)
    report = run(arguments.seeds, arguments.quick)
    print("\n".join(lines(report)))
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
