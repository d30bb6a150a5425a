"""The command line: train's JSON line, runs, predict's wiring, one-line errors, a killed run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from mnist_lab import cli
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.report import analyze
from mnist_lab.runs import RunNotFound, RunStore
from mnist_lab.training import phases

from helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_json(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(to_json(TINY, "tiny"))
    return path


def run_cli(*arguments, env=None, **options):
    return subprocess.run([sys.executable, "-m", "mnist_lab", *arguments], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, **options)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def test_train_ends_with_one_json_line_and_stores_the_run(synthetic_data, tiny_json, isolated_storage):
    result = run_cli("train", "--arch", str(tiny_json), "--epochs", "2", "--batch-size", "64", "--seed", "3",
                     "--name", "from the shell")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert {"run_id", "test_accuracy", "test_loss", "epochs", "seconds_per_epoch", "device"} <= set(summary)
    assert summary["epochs"] == 2 and summary["status"] == "completed" and 0 <= summary["test_accuracy"] <= 1
    assert summary["seconds_per_epoch"] > 0 and summary["device"].startswith(("CPU only", "GPU:"))
    assert "Epoch 1/2" in result.stderr and "Epoch 2/2" in result.stderr
    meta = RunStore(isolated_storage / "runs").get(summary["run_id"])
    assert meta["name"] == "from the shell" and meta["settings"]["seed"] == 3 and meta["settings"]["batch_size"] == 64
    assert meta["architecture"]["label"] == "tiny" and meta["status"] == "completed"


def test_runs_lists_the_stored_runs(synthetic_data, tiny_json, isolated_storage, capsys):
    assert cli.main(["train", "--arch", str(tiny_json), "--epochs", "1", "--name", "listed"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert cli.main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "name", "architecture", "status", "epochs", "test", "accuracy"]
    assert run_id in table[1] and "listed" in table[1] and "completed" in table[1] and "%" in table[1]
    assert cli.main(["runs", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (row["id"], row["status"], row["epochs_done"]) == (run_id, "completed", 1)


def test_runs_says_how_to_start_when_there_are_none(capsys):
    assert cli.main(["runs"]) == 0
    assert "No runs" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, code, words", [
    (["train", "--arch", "nope"], 1, "Unknown architecture 'nope'"),
    (["train", "--arch", "seed-3layer", "--epochs", "0"], 2, "--epochs: 0 must be at least 1"),
    (["train", "--arch", "seed-3layer", "--learning-rate", "fast"], 2, "'fast' is not a number"),
    (["train", "--arch", "seed-3layer", "--optimizer", "rmsprop"], 2, "invalid choice: 'rmsprop'"),
    (["train", "--arch", "seed-3layer", "--train-size", "590"], 1, "train on at most 500"),
    (["train"], 2, "the following arguments are required: --arch"),
    (["fly"], 2, "invalid choice: 'fly'"),
])
def test_bad_arguments_get_one_line_and_a_non_zero_exit(synthetic_data, capsys, arguments, code, words):
    assert cli.main(arguments) == code
    captured = capsys.readouterr()
    assert words in one_line_error(captured.err) and captured.out == ""


def test_a_broken_architecture_file_is_one_line(synthetic_data, tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text('{"layers": [{"type": "Dense", "units": 4}]}')
    assert cli.main(["train", "--arch", str(path)]) == 1
    assert "Layer 1" in one_line_error(capsys.readouterr().err)


def test_missing_mnist_is_one_line_without_traceback():
    result = run_cli("train", "--arch", "seed-3layer", env={"MNIST_LAB_DATA": "/nowhere/mnist.npz"})
    assert result.returncode == 1
    assert "MNIST_LAB_DATA is set to '/nowhere/mnist.npz'" in one_line_error(result.stderr)


def test_predict_prints_one_json_line_per_image_and_fails_if_any_failed(monkeypatch, capsys):
    calls = []

    def predict_files(store, run_id, paths):
        calls.append((store.root, run_id, list(paths)))
        if paths[0] == "notes.txt":
            return [{"image": paths[0], "error": "not an image"}]
        return [{"image": paths[0], "digit": 7, "probabilities": [0.0] * 7 + [1.0, 0.0, 0.0]}]

    monkeypatch.setitem(sys.modules, "mnist_lab.evaluation.inference", types.SimpleNamespace(predict_files=predict_files))
    assert cli.main(["predict", "--run", "abc", "seven.png", "notes.txt"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["digit"] == 7 and lines[1] == {"image": "notes.txt", "error": "not an image"}
    assert [call[1:] for call in calls] == [("abc", ["seven.png"]), ("abc", ["notes.txt"])]  # each as it goes
    assert calls[0][0] == RunStore().root


def test_predict_turns_an_unknown_run_into_one_line(monkeypatch, capsys):
    def predict_files(store, run_id, paths):
        raise RunNotFound(run_id)

    monkeypatch.setitem(sys.modules, "mnist_lab.evaluation.inference", types.SimpleNamespace(predict_files=predict_files))
    assert cli.main(["predict", "--run", "missing", "a.png"]) == 1
    assert "No run with id 'missing'" in one_line_error(capsys.readouterr().err)


def start_held_training(tmp_path: Path, tiny_json: Path, point: str = "epoch-start:2") -> subprocess.Popen:
    """`train` for 200 epochs in the thread executor, held at `point` (by default: epoch 1 saved, epoch 2 not
    begun), so a signal lands at that moment however fast or loaded the machine is."""
    return subprocess.Popen([sys.executable, "-m", "mnist_lab", "train", "--arch", str(tiny_json), "--epochs", "200",
                             "--batch-size", "16", "--executor", "thread"], cwd=ROOT,
                            stdout=(tmp_path / "stdout").open("w"), stderr=(tmp_path / "stderr").open("w"),
                            env={**os.environ, phases.HOLD_VARIABLE: point})


def wait_held(process: subprocess.Popen, runs: Path, point: str, timeout: float = 300) -> Path:
    """Wait for the run's HELD marker. The training process writes it; polling for another process' file is
    how these tests wait on it. Between looks the wait is on the process, so one that ends fails at once."""
    deadline = time.monotonic() + timeout
    while not (markers := [phases.held_marker(folder, point) for folder in runs.glob("*")
                           if phases.held_marker(folder, point).exists()]):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)
        assert process.returncode is None, f"train ended (exit {process.returncode}) before holding at {point}"
        assert time.monotonic() < deadline, f"train did not reach {point} in {timeout} s"
    return markers[0]


def signal_held_training(tmp_path: Path, tiny_json: Path, runs: Path, signal_number: int,
                         timeout: float) -> subprocess.Popen:
    """Start a training held at its first epoch's start, send it `signal_number` there and wait for it to end
    (killed if it does not within `timeout`)."""
    process = start_held_training(tmp_path, tiny_json)
    try:
        wait_held(process, runs, "epoch-start")
        process.send_signal(signal_number)
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process


def test_a_killed_training_process_leaves_an_interrupted_run_with_its_epochs(synthetic_data, tiny_json,
                                                                             isolated_storage, tmp_path):
    signal_held_training(tmp_path, tiny_json, isolated_storage / "runs", signal.SIGKILL, timeout=60)
    store = RunStore(isolated_storage / "runs")  # a restarted server opens the store again
    [meta] = store.list()
    assert meta["status"] == "running"
    assert store.recover_interrupted() == [meta["id"]]
    meta = store.get(meta["id"])
    history = store.history(meta["id"])
    assert meta["status"] == "interrupted" and meta["epochs_done"] == len(history) == 1
    assert "1 finished epoch(s) kept" in meta["message"]
    assert store.load_model(meta["id"]).count_params() == analyze(TINY).total_parameters


def test_ctrl_c_stops_the_run_and_keeps_it(synthetic_data, tiny_json, isolated_storage, tmp_path):
    process = signal_held_training(tmp_path, tiny_json, isolated_storage / "runs", signal.SIGINT, timeout=120)
    errors = (tmp_path / "stderr").read_text()
    assert process.returncode == cli.EXIT_INTERRUPTED, errors
    assert "Traceback" not in errors and "Stopping before the next batch" in errors
    summary = json.loads((tmp_path / "stdout").read_text().strip().splitlines()[-1])
    assert summary["status"] == "stopped" and summary["epochs"] == 1 and summary["test_accuracy"] is not None
    store = RunStore(isolated_storage / "runs")
    assert store.get(summary["run_id"])["status"] == "stopped" and len(store.history(summary["run_id"])) == 1
    assert store.load_model(summary["run_id"]).count_params() == analyze(TINY).total_parameters


def test_code_prints_a_script_of_a_preset_or_of_a_run(capsys, isolated_storage):
    assert cli.main(["code", "--arch", "seed-3layer"]) == 0
    script = capsys.readouterr().out
    compile(script, "net.py", "exec")  # valid Python, whatever it is run with
    assert "keras.Sequential([" in script and "EPOCHS = 12" in script and "mnist_lab" not in script.split('"""')[2]
    store = RunStore()
    run_id = store.create("mine", {"name": "custom", "source": "edited", "label": "mine",
                                   "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 16}]},
                          {"epochs": 3, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.05})["id"]
    assert cli.main(["code", "--run", run_id]) == 0
    script = capsys.readouterr().out
    assert "EPOCHS = 3" in script and "BATCH_SIZE = 64" in script and "layers.Dense(16" in script
    assert cli.main(["code", "--run", "nope"]) == 1
