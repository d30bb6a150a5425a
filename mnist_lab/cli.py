"""Command line: train a net, list the stored runs, predict the digits in image files, run class experiments.

    python -m mnist_lab train --arch seed-3layer --epochs 1 --train-size 10000
    python -m mnist_lab runs
    python -m mnist_lab code --arch seed-3layer > net.py
    python -m mnist_lab predict --run RUN_ID digit.png
    python -m mnist_lab experiment create --question "Does batch size matter?" --arch quick-cnn \
        --vary batch_size=32,128,512        (and experiment list / close ID / results ID [--csv])

Runs land in the same run store as the app's (MNIST_LAB_RUNS, default runs/). `train` shows its
progress on stderr and ends with one JSON line on stdout. Mistakes get a one-line message and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import time

from mnist_lab.architecture.presets import PRESETS
from mnist_lab.errors import LabError
from mnist_lab.runs import RunStatus, RunStore

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
SIGNAL_POLL_SECONDS = 0.2  # how soon `train` notices Ctrl-C or SIGTERM while no progress arrives


class UsageError(Exception):
    """A mistake in the command line; the message is shown on one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see `python -m mnist_lab {self.prog.split()[-1]} --help`)"
                         if " " in self.prog else f"{message} (see `python -m mnist_lab --help`)")


def _number_argument(convert, noun, accept, requirement):
    """An argparse type: the text converted by `convert`, refused with a one-line reason."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{value if convert is int else text} {requirement}")
        return value
    return parse


_positive_int = _number_argument(int, "a whole number", lambda value: value >= 1, "must be at least 1")
_non_negative_int = _number_argument(int, "a whole number", lambda value: value >= 0, "must be 0 or more")
_positive_float = _number_argument(float, "a number", lambda value: value > 0, "must be above 0")


def add_settings_arguments(parser) -> None:
    """The training settings' options, shared by `train` and `experiment create`."""
    from mnist_lab.training import OPTIMIZERS, SCHEDULES, VALIDATION_CHOICES

    parser.add_argument("--epochs", type=_positive_int, help="passes over the training images (default 12)")
    parser.add_argument("--batch-size", type=_positive_int, help="images per step (default 128)")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), help="default adam, as the notebook")
    parser.add_argument("--learning-rate", type=_positive_float, help="default: the optimizer's own")
    parser.add_argument("--train-size", type=_positive_int, help="training images to use (default: all)")
    parser.add_argument("--schedule", choices=list(SCHEDULES),
                        help=f"learning rate over the run: {', '.join(SCHEDULES)} (default constant)")
    parser.add_argument("--validation", choices=list(VALIDATION_CHOICES),
                        help="holdout: held-out training images (default); test: the test images")
    parser.add_argument("--validation-size", type=_positive_int, help="held-out images (default 5,000)")
    parser.add_argument("--seed", type=_non_negative_int, help="fixes the data split, initial weights, dropout")
    parser.add_argument("--augment", action="store_true", default=None,
                        help="random shifts, rotations, zoom and stroke width while training")


def build_parser() -> argparse.ArgumentParser:
    from mnist_lab.experiments.command_line import add_commands
    from mnist_lab.training import EXECUTOR_NAMES

    parser = _Parser(prog="mnist_lab", description="MNIST Lab from the command line.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a net and store the run",
                                description="Train a net on MNIST; the run is stored like the app's runs.")
    train.add_argument("--arch", required=True, metavar="ID|NAME|PATH.json",
                       help=f"a preset ({', '.join(PRESETS)}), a saved architecture, "
                            "or an exported architecture file")
    add_settings_arguments(train)
    train.add_argument("--name", help="a name for the run")
    train.add_argument("--executor", choices=list(EXECUTOR_NAMES),
                       help="where the run trains: process (default, or MNIST_LAB_EXECUTOR), thread, or ray")

    runs = commands.add_parser("runs", help="list the stored runs", description="List the stored runs, newest first.")
    runs.add_argument("--json", action="store_true", help="one JSON object per line")

    code = commands.add_parser("code", help="print a self-contained Keras script of a net (or of a run)",
                               description="Print one Keras script, in the notebook's style, that builds, trains "
                                           "and evaluates a net with nothing from MNIST Lab.")
    source = code.add_mutually_exclusive_group(required=True)
    source.add_argument("--arch", metavar="ID|NAME|PATH.json", help="a preset, a saved architecture, or a file")
    source.add_argument("--run", help="a run's id: its architecture and its settings")

    predict = commands.add_parser("predict", help="predict the digit in image files with a trained run",
                                  description="Predict the digit in each image with a run's model.")
    predict.add_argument("--run", required=True, help="the run's id (see `python -m mnist_lab runs`)")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    add_commands(commands, add_settings_arguments)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not progress
    try:
        arguments = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if arguments.command == "experiment":
            from mnist_lab.experiments.command_line import run

            return run(arguments, _settings_from)
        return {"train": _train, "runs": _runs, "code": _code, "predict": _predict}[arguments.command](arguments)
    except LabError as error:
        print(f"error: {error.detail or error}", file=sys.stderr)
        return EXIT_ERROR


# --- train ----------------------------------------------------------------------------------------

def _settings_from(arguments, architecture):
    from mnist_lab import training

    values = {}
    if architecture["source"] == "preset":
        values.update(training.preset_training_defaults(architecture["name"]))
    for name in training.settings_fields():
        value = getattr(arguments, name, None)
        if value is not None:
            values[name] = value
    return training.TrainSettings.from_dict(values)


class _Signalled:
    """Ctrl-C and SIGTERM, noted in a flag the follow loop reads. Raised as an exception instead, a signal
    lands on whatever line the main thread is on, and there it can leave a lock taken that the training
    thread needs: the run it should stop never ends (a loaded machine made it happen)."""

    def __init__(self):
        self.number: int | None = None

    def __call__(self, number, frame):
        self.number = number


def _train(arguments) -> int:
    from mnist_lab import training
    from mnist_lab.architecture.sources import architecture_from_argument

    architecture = architecture_from_argument(arguments.arch)
    settings = _settings_from(arguments, architecture)
    store = RunStore()
    with _native_stderr_hidden():
        manager = training.TrainingManager(store, max_concurrent=1, max_queued=0, executor=arguments.executor)
    architecture, report, resolved, name = manager.prepare(architecture, settings, arguments.name)
    validation = (f"{resolved.validation_size:,} held-out training images" if resolved.validation == "holdout"
                  else f"the {resolved.validation_size:,} test images")
    _progress(f"Training {architecture.get('label') or architecture['name']} ({report.total_parameters:,} parameters) "
              f"in the {manager.executor.name} executor: {resolved.epochs} epoch(s) of {resolved.train_size:,} "
              f"images, batch {resolved.batch_size}, {training.OPTIMIZERS[resolved.optimizer].label} at "
              f"{resolved.learning_rate:g}; validating on {validation}.")
    run_id = manager.submit(architecture, resolved, name)
    _progress(f"Run {run_id} in {store.root}/ (Ctrl-C stops it and keeps the finished epochs).")
    signalled = _Signalled()
    previous = {number: signal.signal(number, signalled) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        _follow(manager, store, run_id, signalled)
        interrupted = signalled.number is not None
        if interrupted:
            _progress("\nStopping before the next batch…")
            manager.stop(run_id)
            manager.wait(run_id)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        manager.executor.close()
    summary = run_summary(store, run_id, manager.record(run_id))
    if summary["status"] == RunStatus.FAILED:
        _progress(f"error: {summary['message']}")
    elif summary["test_accuracy"] is not None:
        _progress(f"Test accuracy {100 * summary['test_accuracy']:.2f} % (loss {summary['test_loss']:.4f}) "
                  f"on the {manager.data_sizes()[1]:,} test images.")
    print(json.dumps(summary), flush=True)
    if summary["status"] == RunStatus.FAILED:
        return EXIT_ERROR
    return EXIT_INTERRUPTED if interrupted else 0


def run_summary(store: RunStore, run_id: str, meta: dict) -> dict:
    """The one-line JSON result of a run, as `train` prints it last, from its record `meta`."""
    seconds = [value for value in meta.get("epoch_seconds") or [] if isinstance(value, (int, float))]
    return {
        "run_id": run_id,
        "name": meta.get("name"),
        "status": meta.get("status"),
        "message": meta.get("message") or "",
        "architecture": (meta.get("architecture") or {}).get("name"),
        "test_accuracy": meta.get("test_accuracy"),
        "test_loss": meta.get("test_loss"),
        "epochs": meta.get("epochs_done", 0),
        "seconds_per_epoch": round(statistics.median(seconds), 3) if seconds else None,
        "device": meta.get("device"),
        "executor": meta.get("executor"),
        "model": str(store.model_path(run_id)) if store.has_model(run_id) else None,
    }


@contextlib.contextmanager
def _native_stderr_hidden():
    """TensorFlow's C++ start-up notices ignore TF_CPP_MIN_LOG_LEVEL: hide them while Keras starts.

    Python errors still surface: they are raised after stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _progress(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _follow(manager, store, run_id: str, signalled: _Signalled) -> None:
    """Print the device once it is known, a progress line (rewritten in place on a terminal) and one line
    per finished epoch, until the run ends or a signal arrives."""
    from mnist_lab.presentation import format_duration

    live = manager.live_state(run_id)
    terminal = sys.stderr.isatty()
    version, printed, last_line, device = -1, 0, 0.0, None
    epochs = store.get(run_id)["settings"]["epochs"]
    while not manager.wait(run_id, 0) and signalled.number is None:
        version = live.wait_for_change(version, timeout=SIGNAL_POLL_SECONDS)
        snapshot = live.snapshot()
        if device is None and (device := store.get(run_id).get("device")):
            _progress(("\r\033[K" if terminal else "") + f"Training on {device}.")
        history = store.history(run_id) if (snapshot.get("epochs_done") or 0) > printed else []
        for row in history[printed:]:
            if terminal:
                _progress("\r\033[K", end="")
            _progress(_epoch_line(row, epochs))
            printed = row["epoch"]
        if terminal and snapshot.get("status") == RunStatus.RUNNING and time.monotonic() - last_line > 0.2:
            last_line = time.monotonic()
            batch, batches = snapshot.get("batch") or 0, max(1, snapshot.get("batches") or 1)
            bar = "#" * int(20 * batch / batches) + "." * (20 - int(20 * batch / batches))
            speed, loss, remaining = (snapshot.get(key) for key in ("images_per_second", "loss", "remaining"))
            _progress(f"\r\033[KEpoch {snapshot.get('epoch') or 1}/{epochs} [{bar}] {batch}/{batches} "
                      f"{snapshot.get('phase') or 'starting'}" + (f" loss {loss:.4f}" if loss is not None else "")
                      + (f" · {speed:,.0f} images/s" if speed else "")
                      + (f" · {format_duration(remaining)} left" if remaining else ""), end="")
    if terminal:
        _progress("\r\033[K", end="")
    for row in store.history(run_id)[printed:]:
        _progress(_epoch_line(row, epochs))


def _epoch_line(row: dict, epochs: int) -> str:
    def number(key, percent=False):
        value = row.get(key)
        if value is None:
            return "–"
        return f"{100 * value:.2f} %" if percent else f"{value:.4f}"

    return (f"Epoch {row['epoch']}/{epochs}: loss {number('loss')}, accuracy {number('accuracy', True)}; "
            f"validation loss {number('val_loss')}, accuracy {number('val_accuracy', True)} "
            f"({row.get('seconds') or 0:.1f} s)")


# --- runs -----------------------------------------------------------------------------------------

def _runs(arguments) -> int:
    store = RunStore()
    store.recover_interrupted()
    runs = store.list()
    if arguments.json:
        for meta in runs:
            print(json.dumps(_run_row(meta)))
        return 0
    if not runs:
        print(f"No runs in {store.root}/ yet: python -m mnist_lab train --arch seed-3layer")
        return 0
    rows = [_run_row(meta) for meta in runs]
    table = [("id", "name", "architecture", "status", "epochs", "test accuracy")] + [
        (row["id"], row["name"], row["architecture"], row["status"], f"{row['epochs_done']}/{row['epochs']}",
         "" if row["test_accuracy"] is None else f"{100 * row['test_accuracy']:.2f} %")
        for row in rows
    ]
    widths = [min(40, max(len(str(line[column])) for line in table)) for column in range(len(table[0]))]
    for line in table:
        print("  ".join(str(value)[:width].ljust(width) for value, width in zip(line, widths)).rstrip())
    return 0


def _run_row(meta: dict) -> dict:
    architecture = meta.get("architecture") or {}
    return {
        "id": meta.get("id"),
        "name": meta.get("name"),
        "architecture": architecture.get("label") or architecture.get("name"),
        "status": meta.get("status"),
        "epochs_done": meta.get("epochs_done", 0),
        "epochs": (meta.get("settings") or {}).get("epochs"),
        "test_accuracy": meta.get("test_accuracy"),
        "created": meta.get("created"),
    }


# --- code -----------------------------------------------------------------------------------------

def _code(arguments) -> int:
    from mnist_lab import training
    from mnist_lab.architecture import keras_code
    from mnist_lab.architecture.sources import architecture_from_argument

    if arguments.run:
        meta = RunStore().get(arguments.run)
        architecture, settings = meta.get("architecture") or {}, meta.get("settings") or {}
    else:
        architecture = architecture_from_argument(arguments.arch)
        settings = training.plans.recipe(architecture["source"], architecture["name"])
    name = architecture.get("label") or architecture.get("name") or "mnist_cnn"
    print(keras_code.keras_script(architecture.get("layers") or [], settings, name), end="")
    return 0


# --- predict --------------------------------------------------------------------------------------

def _predict(arguments) -> int:
    """One JSON line per image, printed as soon as that image is read, so one bad file spoils no other."""
    from mnist_lab.evaluation.inference import predict_files

    store, failed = RunStore(), False
    for image in arguments.images:
        result = predict_files(store, arguments.run, [image])[0]
        failed = failed or "error" in result
        print(json.dumps(result), flush=True)
    return EXIT_ERROR if failed else 0
