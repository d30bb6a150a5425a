"""Faults at any moment, proven by a matrix (docs/reliability.md).

A tiny run (2 epochs of 2 batches, a net with BatchNormalization so that it reaches every hold point) is held
at one moment of its life with MNIST_LAB_HOLD_AT, meets one fault there, and must end in a known state:

    ctrl-c          SIGINT to the process group of `python -m mnist_lab train` (what Ctrl-C in a terminal does)
    cli-sigterm     SIGTERM to `train` alone (what `kill` or a service manager does)
    worker-sigterm  SIGTERM to the worker process training the run (process executor)
    worker-sigkill  SIGKILL to that worker (the kernel's out-of-memory killer does this)
    disk-full       the model's file cannot be written (ENOSPC when its data is flushed), from that moment on
    store-readonly  nothing can be created in the run's folder any more (EROFS), from that moment on

After each: the exit status of `train`, the run's status and message, every finished epoch in the history,
the model of the last finished epoch (it loads and predicts ten probabilities, and it is the epoch's kept
weights), no temporary file in the run folder; with a manager, the next queued run completes, and two other
runs of the store (a completed one, and one another server is training) are left byte for byte as they were.

The two file faults are injected by a small `sitecustomize` module this file writes and puts on the
PYTHONPATH of the processes it starts (and, for the thread executor, patches into this process): it acts
only on a run folder holding a FAULT-<kind> file, which the test writes while the run is held.

Packed runs have cells of their own (test_pack_fault_matrix): the pack's worker killed, or one packmate
stopped, at each of the same moments.

Default: a sample of cells. Every cell: `pytest -m long tests/test_fault_matrix.py`.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from mnist_lab import cli, data, training
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.runs import EPOCH_FILE, RunStore, now_iso, write_atomic
from mnist_lab.training import phases
from mnist_lab.training.phases import HoldPoint

from helpers import ROOT, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fault injection reads /proc")

LAYERS = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"},
          {"type": "BatchNormalization", "axis": -1}]
EPOCHS, BATCH_SIZE, TRAIN_SIZE, VALIDATION_SIZE, SEED = 2, 32, 64, 32, 1
STEPS = -(-TRAIN_SIZE // BATCH_SIZE)
SETTINGS = {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "train_size": TRAIN_SIZE,
            "validation_size": VALIDATION_SIZE, "seed": SEED}
CLI_SETTINGS = ["--epochs", str(EPOCHS), "--batch-size", str(BATCH_SIZE), "--train-size", str(TRAIN_SIZE),
                "--validation-size", str(VALIDATION_SIZE), "--seed", str(SEED)]
TIMEOUT = 300  # seconds for any one wait: generous, the machine may be shared and slow
HAS_RAY = importlib.util.find_spec("ray") is not None


def timeline() -> list[tuple[HoldPoint, int]]:
    """Every (hold point, n) this run passes, in the order it passes them."""
    moments = [(HoldPoint.STARTING, 1), (HoldPoint.LOADING_DATA, 1), (HoldPoint.BUILDING, 1)]
    for epoch in range(1, EPOCHS + 1):
        moments.append((HoldPoint.EPOCH_START, epoch))
        moments += [(HoldPoint.BATCH, (epoch - 1) * STEPS + batch) for batch in range(1, STEPS + 1)]
        moments += [(HoldPoint.VALIDATING, epoch), (HoldPoint.EPOCH_END, epoch), (HoldPoint.SAVING, epoch),
                    (HoldPoint.HISTORY, epoch)]
    return moments + [(HoldPoint.TESTING, 1), (HoldPoint.NORMALIZING, 1), (HoldPoint.FINISHING, 1)]


TIMELINE = timeline()
POSITION = {moment: index for index, moment in enumerate(TIMELINE)}

STOPS = ("ctrl-c", "cli-sigterm")
WORKER_KILLS = {"worker-sigterm": signal.SIGTERM, "worker-sigkill": signal.SIGKILL}
FILE_FAULTS = {"disk-full": "FAULT-enospc", "store-readonly": "FAULT-readonly"}
FAULTS = {"thread": ("ctrl-c", "cli-sigterm", "disk-full", "store-readonly"),
          "process": ("ctrl-c", "cli-sigterm", "worker-sigterm", "worker-sigkill", "disk-full", "store-readonly"),
          "ray": ("ctrl-c", "cli-sigterm")}

# The cells of the default test command: both executors; a batch, the saves, the test scores, between epochs.
SAMPLE = {
    ("thread", "batch:4", "ctrl-c"),
    ("thread", "epoch-start:2", "store-readonly"),
    ("thread", "saving:2", "disk-full"),
    ("thread", "normalizing:1", "cli-sigterm"),
    ("process", "batch:2", "disk-full"),
    ("process", "saving:1", "worker-sigterm"),
    ("process", "epoch-start:2", "worker-sigkill"),
    ("process", "testing:1", "cli-sigterm"),
    ("process", "history:2", "worker-sigkill"),  # the epoch's files are staged, its history row not written
}

def hold_text(moment: tuple[HoldPoint, int]) -> str:
    return f"{moment[0].value}:{moment[1]}"


def moment_of(text: str) -> tuple[HoldPoint, int]:
    return phases.parse_hold(text)


# ---- what each cell must end as ----------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    status: str  # the final stored status (store-readonly: after the store is writable again and recovered)
    kept: int  # finished epochs: history rows, epochs_done, epochs with kept weights, the model's epoch
    words: tuple[str, ...]  # what the message must say
    tested: bool  # whether test scores are stored
    exit_code: int  # of `train`, where the command line drives the cell
    frozen: bool = False  # the store could not be written: the record stays as it was at the fault
    shown: str | None = None  # frozen: the end a live server shows, and writes once the store takes writes


def rows_before(index: int) -> int:
    """History rows written before the run reaches TIMELINE[index] (a row follows its `history` point)."""
    return sum(POSITION[(HoldPoint.HISTORY, epoch)] < index for epoch in range(1, EPOCHS + 1))


def next_at(index: int, points: set[HoldPoint]) -> int | None:
    return next((later for later in range(index, len(TIMELINE)) if TIMELINE[later][0] in points), None)


def stopped_at(check: int | None) -> Expected:
    """The end of a run whose stop is taken at TIMELINE[check]; None: after its last batch, so it completes."""
    if check is None:
        return Expected("completed", EPOCHS, (), True, cli.EXIT_INTERRUPTED)
    kept = rows_before(check)
    words = (("Stopped before the first epoch ended", "no model to keep") if not kept else
             (f"Stopped by request during epoch {kept + 1}", f"the model after epoch {kept} is kept"))
    return Expected("stopped", kept, words, kept > 0, cli.EXIT_INTERRUPTED)


def expected_outcome(executor: str, moment: tuple[HoldPoint, int], fault: str) -> Expected:
    """The end of a run held at `moment` when `fault` lands there, from the rules the product documents."""
    at = POSITION[moment]
    after_scores = at > POSITION[(HoldPoint.NORMALIZING, 1)]  # test scores are stored just before finishing
    if fault in STOPS:
        # A stop is honoured before the next training or validation batch; an epoch being saved is saved.
        return stopped_at(next_at(at, {HoldPoint.BATCH, HoldPoint.VALIDATING}))
    if fault in WORKER_KILLS:
        kept = rows_before(at)
        if executor == "ray":
            words = ("stopped unexpectedly", f"{kept} finished epoch(s) kept")
        else:
            number = WORKER_KILLS[fault]
            words = (f"stopped unexpectedly: signal {int(number)} ({number.name})",
                     f"its {kept} finished epoch(s) and the model after epoch {kept} are kept" if kept
                     else "it had finished no epoch, so there is no model to keep")
        return Expected("failed", kept, words, after_scores, cli.EXIT_ERROR)
    if fault == "disk-full":  # the model is written after each `saving` point and after `normalizing`
        write = next_at(at, {HoldPoint.SAVING, HoldPoint.NORMALIZING})
        if write is None:
            return Expected("completed", EPOCHS, (), True, 0)
        return Expected("failed", rows_before(write), ("No space left on device",), False, cli.EXIT_ERROR)
    assert fault == "store-readonly"  # after a restart the run is interrupted; a live server knows better
    kept = rows_before(at)
    shown = "completed" if moment[0] is HoldPoint.FINISHING else "failed"  # only the end was not written
    return Expected("interrupted", kept, (f"{kept} finished epoch(s) kept",), after_scores, cli.EXIT_ERROR,
                    frozen=True, shown=shown)


# ---- the injected file faults ------------------------------------------------------------------

INJECTOR = '''"""Test-only file faults, written by tests/test_fault_matrix.py and loaded as sitecustomize.

In a run folder that holds FAULT-readonly, creating any file or folder fails as on a read-only file system;
in one that holds FAULT-enospc, flushing the model's file (its atomic write's temporary) fails as on a full
disk. Nothing else is touched.
"""
import errno
import os

READONLY, FULL = "FAULT-readonly", "FAULT-enospc"
_open, _mkdir, _fsync = os.open, os.mkdir, os.fsync


def _marked(path, marker):
    folder = os.path.dirname(os.path.abspath(os.fsdecode(path)))
    for _ in range(2):  # the run folder, or its epochs/ folder
        if os.path.exists(os.path.join(folder, marker)):
            return True
        folder = os.path.dirname(folder)
    return False


def fault_open(path, flags, *args, **kwargs):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and not kwargs.get("dir_fd") and _marked(path, READONLY):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
    return _open(path, flags, *args, **kwargs)


def fault_mkdir(path, *args, **kwargs):
    if not kwargs.get("dir_fd") and _marked(path, READONLY):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
    return _mkdir(path, *args, **kwargs)


def fault_fsync(fd):
    try:
        name = os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
    except (OSError, AttributeError, ValueError):
        name = ""
    if "model.keras." in os.path.basename(name) and _marked(name, FULL):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _fsync(fd)


if __name__ == "sitecustomize" and os.environ.get("MNIST_LAB_TEST_FAULTS") == "1":
    os.open, os.mkdir, os.fsync = fault_open, fault_mkdir, fault_fsync
'''


@pytest.fixture
def injector(tmp_path):
    """The folder holding the injector as sitecustomize, and the module itself (for this process)."""
    folder = tmp_path / "faults"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(INJECTOR)
    spec = importlib.util.spec_from_file_location("fault_injector", folder / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return folder, module


def injected_environment(folder: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
            "MNIST_LAB_TEST_FAULTS": "1"}


def test_the_injector_fails_only_the_writes_of_a_marked_run_folder(injector, tmp_path, monkeypatch):
    _, module = injector
    for name, function in (("open", module.fault_open), ("mkdir", module.fault_mkdir), ("fsync", module.fault_fsync)):
        monkeypatch.setattr(os, name, function)
    marked, other = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    marked.mkdir(parents=True)
    other.mkdir()
    (marked / "FAULT-readonly").write_text("")
    with pytest.raises(OSError) as refused:
        write_atomic(marked / "run.json", "{}")
    assert refused.value.errno == errno.EROFS and sorted(path.name for path in marked.iterdir()) == ["FAULT-readonly"]
    with pytest.raises(OSError):
        (marked / "epochs").mkdir()
    write_atomic(other / "run.json", "{}")
    (marked / "FAULT-readonly").unlink()
    (marked / "FAULT-enospc").write_text("")
    write_atomic(marked / "run.json", "{}")  # only the model is refused
    with pytest.raises(OSError) as full:
        write_atomic(marked / "model.keras", b"zip")
    assert full.value.errno == errno.ENOSPC
    assert sorted(path.name for path in marked.iterdir()) == ["FAULT-enospc", "run.json"]  # no temporary left


# ---- shared helpers ------------------------------------------------------------------------------

@pytest.fixture
def images(synthetic_npz):
    with np.load(synthetic_npz) as arrays:
        return data.to_model_input(arrays["x_test"][:4])


@pytest.fixture(scope="module")
def bystander_model(tmp_path_factory) -> bytes:
    """A model file's bytes, for the completed run that must stay untouched."""
    path = tmp_path_factory.mktemp("bystander") / "model.keras"
    build_model(LAYERS, "mnist_cnn").save(path)
    return path.read_bytes()


def tiny_architecture() -> dict:
    return custom_architecture(LAYERS, label="tiny-bn")


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def add_bystanders(store: RunStore, model_bytes: bytes) -> dict[str, dict[str, bytes]]:
    """Two runs no fault may touch: a completed one, and one that another (live) server is training."""
    settings = training.TrainSettings.from_dict(SETTINGS).resolve(600, 200).as_dict()
    done = store.create("bystander: completed", tiny_architecture(), settings, executor="thread")["id"]
    store.append_epoch(done, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4,
                              "seconds": 0.1})
    write_atomic(store.model_path(done), model_bytes)
    store.update(done, status="completed", started=now_iso(), finished=now_iso(), test_accuracy=0.4, test_loss=1.2)
    elsewhere = store.create("bystander: another server's", tiny_architecture(), settings, executor="process")["id"]
    store.update(elsewhere, status="running", started=now_iso(), pid=os.getppid())  # alive, and not ours
    return {run_id: folder_bytes(store.path(run_id)) for run_id in (done, elsewhere)}


def check_bystanders(store: RunStore, before: dict[str, dict[str, bytes]]) -> None:
    assert {run_id: folder_bytes(store.path(run_id)) for run_id in before} == before


STORE_FILE = re.compile(r"(run|history|live)\.json|model\.keras|STOP|(HELD|RELEASE|FAULT)-[a-z-]+|epochs")


def check_no_temporary_files(folder: Path) -> None:
    """Only the store's own files: no `.saving-*.keras`, `.*.tmp` or `.epoch-*` left by an interrupted save."""
    strays = [path.relative_to(folder).as_posix() for path in folder.rglob("*")
              if not (STORE_FILE.fullmatch(path.relative_to(folder).as_posix())
                      or (path.parent.name == "epochs" and EPOCH_FILE.fullmatch(path.name)))]
    assert strays == [], f"left in {folder}: {strays}"


def check_kept_model(store: RunStore, run_id: str, kept: int, images: np.ndarray) -> None:
    """Exactly the finished epochs have kept weights; the model file is the last one's, and it works."""
    import keras

    assert store.epoch_weights(run_id) == list(range(1, kept + 1))
    assert store.has_model(run_id) == (kept > 0)
    if not kept:
        return
    model = keras.saving.load_model(store.model_path(run_id), compile=False)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (len(images), 10)
    assert np.all(probabilities >= 0) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    last = keras.models.clone_model(model)
    last.load_weights(store.epoch_weights_path(run_id, kept))
    # BatchNormalization's averages may be re-estimated at the end; the trained weights are the epoch's.
    for saved, epoch in zip(model.trainable_weights, last.trainable_weights, strict=True):
        assert np.array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(epoch))


def check_record(store: RunStore, run_id: str, expected: Expected, status: str | None = None) -> dict:
    meta = store.get(run_id)
    assert meta["status"] == (status or expected.status), meta
    for words in expected.words if status is None else ():
        assert words in meta["message"], meta["message"]
    history = store.history(run_id)
    assert [row["epoch"] for row in history] == list(range(1, expected.kept + 1))
    assert meta["epochs_done"] == expected.kept
    if status is None:
        assert (meta["test_accuracy"] is not None) == expected.tested, meta
    return meta


# ---- the command-line driver ---------------------------------------------------------------------

def catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def ray_folders(run_id: str) -> list[Path]:
    """The run stores of the Ray tasks training `run_id` (each attempt trains into one of its own)."""
    return sorted(path.parent for path in Path(tempfile.gettempdir()).glob(f"mnist-lab-ray-*/{run_id}/run.json"))


def train_command_cell(tmp_path: Path, store: RunStore, bystanders: dict, executor: str,
                       moment: tuple[HoldPoint, int], fault: str, environment: dict) -> dict:
    """`train` held at `moment`, the fault, its end; returns what the checks need."""
    arch = tmp_path / "tiny-bn.json"
    arch.write_text(to_json(LAYERS, "tiny-bn"))
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_lab", "train", "--arch", str(arch), *CLI_SETTINGS, "--executor", executor,
         "--name", "faulty"], cwd=ROOT, stdout=stdout.open("w"), stderr=stderr.open("w"), start_new_session=True,
        env={**os.environ, **environment, phases.HOLD_VARIABLE: hold_text(moment)})
    running = lambda: process.poll() is None  # noqa: E731
    point, number = moment
    try:
        new = lambda: [path.name for path in store.root.iterdir() if path.name not in bystanders]  # noqa: E731
        [run_id] = wait_for(new, "a run folder", running)
        if executor == "ray":
            held = lambda: next((phases.held_marker(folder, point) for folder in ray_folders(run_id)  # noqa: E731
                                 if phases.held_marker(folder, point).exists()), None)
        else:
            marker = phases.held_marker(store.path(run_id), point)
            held = lambda: marker.exists() and marker  # noqa: E731
        marker = wait_for(held, f"the hold at {point}", running)
        assert marker.read_text().split()[0] == str(number)
        # `train` follows the run with its handlers in place (it says so just before installing them).
        wait_for(lambda: "(Ctrl-C stops it" in stderr.read_text() and catches_sigterm(process.pid),
                 "train following its run", running)
        at = POSITION[moment]
        if executor == "ray":  # the task's rows reach this store through Ray's queue, the row before its count
            wait_for(lambda: len(store.history(run_id)) == store.get(run_id)["epochs_done"] == rows_before(at),
                     "the rows at the hold", running)
        record = check_record(store, run_id, Expected("running", rows_before(at), (), False, 0), status="running")
        trainer = record["pid"] if executor != "ray" else json.loads((marker.parent / "run.json").read_text())["pid"]
        if fault == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        elif fault == "cli-sigterm":
            process.send_signal(signal.SIGTERM)
        elif fault in WORKER_KILLS:
            assert trainer != process.pid
            os.kill(trainer, WORKER_KILLS[fault])
        else:
            (store.path(run_id) / FILE_FAULTS[fault]).write_text("")
            phases.release_marker(store.path(run_id), point).write_text("")
        if executor == "ray" and fault in WORKER_KILLS:  # Ray may try the task again: let every attempt go on
            first = marker.parent
            while running():
                for folder in ray_folders(run_id):
                    if folder != first and phases.held_marker(folder, point).exists():
                        phases.release_marker(folder, point).write_text("")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.1)
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return {"run_id": run_id, "returncode": process.returncode, "stdout": stdout.read_text(),
            "stderr": stderr.read_text(), "trainer": trainer}


def check_train_command(store: RunStore, result: dict, expected: Expected, executor: str, images) -> None:
    errors = result["stderr"]
    assert result["returncode"] == expected.exit_code, errors
    if expected.status != "failed":  # a failed run's logged traceback may precede its one error line
        assert "Traceback" not in errors
    summary = json.loads(result["stdout"].strip().splitlines()[-1])
    run_id = result["run_id"]
    assert summary["run_id"] == run_id and summary["status"] == expected.status and summary["epochs"] == expected.kept
    assert summary["model"] == (str(store.model_path(run_id)) if expected.kept else None)
    if expected.exit_code == cli.EXIT_INTERRUPTED:
        assert "Stopping before the next batch" in errors
    if expected.status == "failed":
        assert f"error: {summary['message']}" in errors
    check_record(store, run_id, expected)
    check_kept_model(store, run_id, expected.kept, images)
    check_no_temporary_files(store.path(run_id))
    if executor == "ray":
        assert ray_folders(run_id) == []  # each task's own store is gone with it
    else:  # no trainer is left behind (a reaped process has no /proc entry; a zombie would say Z)
        status = Path(f"/proc/{result['trainer']}/status")
        assert not status.exists() or "\nState:\tZ" in status.read_text()


# ---- the manager driver --------------------------------------------------------------------------

def manager_cell(store: RunStore, bystanders: dict, executor: str, moment: tuple[HoldPoint, int], fault: str,
                 monkeypatch, injector, images) -> None:
    """A manager in this process trains the faulty run with another queued behind it."""
    folder, module = injector
    point, number = moment
    monkeypatch.setenv(phases.HOLD_VARIABLE, hold_text(moment))  # read by every run; the queued one is released
    if executor == "process":  # the workers start with it: the warm one in the manager's constructor
        for name, value in injected_environment(folder).items():
            monkeypatch.setenv(name, value)
    if fault in FILE_FAULTS:  # and the server's own writes meet the same disk
        for name, function in (("open", module.fault_open), ("mkdir", module.fault_mkdir),
                               ("fsync", module.fault_fsync)):
            monkeypatch.setattr(os, name, function)
    expected = expected_outcome(executor, moment, fault)
    manager = training.TrainingManager(store, max_concurrent=1, executor=executor)
    try:
        assert manager.recovered == []  # the bystander another server trains is left alone
        run_id = manager.submit(tiny_architecture(), SETTINGS, name="faulty")
        queued = manager.submit(tiny_architecture(), SETTINGS, name="queued")
        assert manager.queue_position(queued) == 1
        phases.release_marker(store.path(queued), point).write_text("")
        marker = phases.held_marker(store.path(run_id), point)
        wait_for(marker.exists, f"the hold at {point}", lambda: not manager.wait(run_id, 0))
        assert marker.read_text().split()[0] == str(number)
        at = POSITION[moment]
        record = check_record(store, run_id, Expected("running", rows_before(at), (), False, 0), status="running")
        if fault in WORKER_KILLS:
            [worker] = manager.executor.worker_pids()["busy"]
            assert worker == record["pid"] != os.getpid()
            os.kill(worker, WORKER_KILLS[fault])
        else:
            (store.path(run_id) / FILE_FAULTS[fault]).write_text("")
            phases.release_marker(store.path(run_id), point).write_text("")
        assert manager.wait(run_id, TIMEOUT)
        assert manager.live_state(run_id).snapshot()["status"] == (expected.shown or expected.status)
        check_no_temporary_files(store.path(run_id))
        if expected.frozen:  # nothing could be written: the record is as it was at the fault
            check_record(store, run_id, expected, status="running")
        else:
            check_record(store, run_id, expected)
        check_kept_model(store, run_id, expected.kept, images)
        assert manager.wait(queued, TIMEOUT)
        check_record(store, queued, Expected("completed", EPOCHS, (), True, 0))
        check_kept_model(store, queued, EPOCHS, images)
        check_no_temporary_files(store.path(queued))
        if expected.frozen:  # writable again: the server writes the end it kept
            listed = {meta["id"]: meta for meta in manager.runs(max_age=0)}[run_id]
            assert listed["status"] == expected.shown  # shown, though not yet written
            (store.path(run_id) / FILE_FAULTS[fault]).unlink()
            manager.runs(max_age=0)
            meta = check_record(store, run_id, expected, status=expected.shown)
            assert expected.shown == "completed" or "Read-only file system" in meta["message"], meta["message"]
        check_bystanders(store, bystanders)
        assert manager.counts()["running"] == 0 and manager.queued_run_ids() == []
    finally:
        manager.shut_down(timeout=60)


# ---- the matrix ----------------------------------------------------------------------------------

def matrix():
    cells = []
    for executor, faults in FAULTS.items():
        for moment in TIMELINE:
            for fault in faults:
                hold = hold_text(moment)
                marks = [] if (executor, hold, fault) in SAMPLE else [pytest.mark.long]
                if executor == "ray":
                    marks.append(pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed"))
                if fault == "store-readonly" and executor == "thread":  # the training thread ends raising
                    marks.append(pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"))
                cells.append(pytest.param(executor, hold, fault, marks=marks, id=f"{executor}-{hold}-{fault}"))
    return cells


@pytest.mark.parametrize("executor, hold, fault", matrix())
def test_fault_matrix(executor, hold, fault, synthetic_data, isolated_storage, tmp_path, monkeypatch, injector,
                      bystander_model, images):
    moment = moment_of(hold)
    store = RunStore(isolated_storage / "runs")
    bystanders = add_bystanders(store, bystander_model)
    if fault in STOPS:
        result = train_command_cell(tmp_path, store, bystanders, executor, moment, fault,
                                    injected_environment(injector[0]))
        check_train_command(store, result, expected_outcome(executor, moment, fault), executor, images)
        check_bystanders(store, bystanders)
    else:
        manager_cell(store, bystanders, executor, moment, fault, monkeypatch, injector, images)


@pytest.mark.parametrize("executor, hold, fault", [
    pytest.param("process", "batch:3", "worker-sigkill", id="process-batch:3-worker-sigkill"),
    pytest.param("thread", "saving:2", "disk-full", id="thread-saving:2-disk-full"),
    pytest.param("thread", "epoch-start:2", "store-readonly", id="thread-epoch-start:2-store-readonly"),
    pytest.param("ray", "epoch-start:2", "worker-sigkill", id="ray-epoch-start:2-worker-sigkill", marks=[
        pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed")]),
])
def test_train_exits_1_and_says_why_when_its_run_fails(executor, hold, fault, synthetic_data, isolated_storage,
                                                       tmp_path, injector, bystander_model, images):
    moment = moment_of(hold)
    store = RunStore(isolated_storage / "runs")
    bystanders = add_bystanders(store, bystander_model)
    expected = expected_outcome(executor, moment, fault)
    assert expected.exit_code == cli.EXIT_ERROR
    result = train_command_cell(tmp_path, store, bystanders, executor, moment, fault,
                                injected_environment(injector[0]))
    if expected.frozen:  # `train` says the run failed, though the store could not record it
        summary = json.loads(result["stdout"].strip().splitlines()[-1])
        assert result["returncode"] == cli.EXIT_ERROR, result["stderr"]
        assert summary["status"] == "failed" and "Read-only file system" in summary["message"]
        assert f"error: {summary['message']}" in result["stderr"]
        check_record(store, result["run_id"], expected, status="running")
        (store.path(result["run_id"]) / FILE_FAULTS[fault]).unlink()
        assert RunStore(store.root).recover_interrupted() == [result["run_id"]]
        check_record(store, result["run_id"], expected)
        check_kept_model(store, result["run_id"], expected.kept, images)
        check_no_temporary_files(store.path(result["run_id"]))
    else:
        check_train_command(store, result, expected, executor, images)
    check_bystanders(store, bystanders)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_run_whose_store_became_read_only_is_not_shown_running_once_it_ended(synthetic_data, isolated_storage,
                                                                               monkeypatch, injector):
    _, module = injector
    for name, function in (("open", module.fault_open), ("mkdir", module.fault_mkdir), ("fsync", module.fault_fsync)):
        monkeypatch.setattr(os, name, function)
    monkeypatch.setenv(phases.HOLD_VARIABLE, "epoch-start:2")
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor="thread")
    try:
        run_id = manager.submit(tiny_architecture(), SETTINGS)
        marker = phases.held_marker(manager.store.path(run_id), HoldPoint.EPOCH_START)
        wait_for(marker.exists, "the hold at epoch 2's start", lambda: not manager.wait(run_id, 0))
        (manager.store.path(run_id) / "FAULT-readonly").write_text("")
        phases.release_marker(manager.store.path(run_id), HoldPoint.EPOCH_START).write_text("")
        assert manager.wait(run_id, TIMEOUT)
        assert "Read-only file system" in manager.live_state(run_id).snapshot()["message"]  # it knows
        listed = {meta["id"]: meta for meta in manager.runs(max_age=0)}[run_id]
        assert listed["status"] == "failed" and "Read-only file system" in listed["message"]  # not yet written
        assert manager.store.get(run_id)["status"] == "running"
        (manager.store.path(run_id) / "FAULT-readonly").unlink()
        live = manager.live(run_id)
        assert live["status"] == "failed" and "Read-only file system" in live["message"]
        assert {meta["id"]: meta["status"] for meta in manager.runs(max_age=0)}[run_id] == "failed"
        assert manager.store.get(run_id)["status"] == "failed"  # written once the store took writes again
        assert manager.record(run_id)["message"] == manager.store.get(run_id)["message"]
    finally:
        manager.shut_down(timeout=60)


# ---- packed runs: three learners' nets trained as one pack ---------------------------------------

PACK_FAULTS = {"thread": ("stop-one",), "process": ("stop-one", "worker-sigkill")}
PACK_SAMPLE = {("process", "validating:1", "worker-sigkill"), ("thread", "saving:2", "stop-one")}


def pack_matrix():
    return [pytest.param(executor, hold_text(moment), fault, id=f"pack-{executor}-{hold_text(moment)}-{fault}",
                         marks=[] if (executor, hold_text(moment), fault) in PACK_SAMPLE else [pytest.mark.long])
            for executor, faults in PACK_FAULTS.items() for moment in TIMELINE for fault in faults]


def expected_in_pack(moment: tuple[HoldPoint, int], fault: str, held: bool) -> Expected:
    """A packed run ends as a lone run would, but for two things a pack does once for all its nets: it
    validates them in one pass, so a stop asked for during it takes effect at the next training batch; and
    each net's test scores are written one run after the other, so a kill while the pack holds at its first
    run's end leaves the later runs unscored."""
    if fault == "stop-one":
        return stopped_at(next_at(POSITION[moment], {HoldPoint.BATCH}))
    expected = expected_outcome("process", moment, fault)
    return replace(expected, tested=False) if moment[0] is HoldPoint.FINISHING and not held else expected


@pytest.mark.parametrize("executor, hold, fault", pack_matrix())
def test_pack_fault_matrix(executor, hold, fault, synthetic_data, isolated_storage, monkeypatch, images):
    """Three queued runs train as one pack, held at `hold` (the first lone run passes it first); then the
    pack's worker is killed, or one packmate is stopped by its owner. Each run ends as expected_in_pack says,
    its files hold its own net, the packmates a stop did not touch complete, and the next run trains."""
    from mnist_lab.classroom.learners import Actor
    from mnist_lab.training import packed_runs

    moment = moment_of(hold)
    point = moment[0].value
    monkeypatch.setenv(phases.HOLD_VARIABLE, hold)
    monkeypatch.setenv(packed_runs.PACK_SIZE_VARIABLE, "3")
    store = RunStore(isolated_storage / "runs")
    manager = training.TrainingManager(store, max_concurrent=1, executor=executor)
    try:
        first = manager.submit(tiny_architecture(), SETTINGS, name="alone, first")
        wait_for(phases.held_marker(store.path(first), point).exists, f"the hold at {point}",
                 lambda: not manager.wait(first, 0))
        owners = [(f"learner-{number}", f"Learner {number}") for number in range(3)]
        pack = [manager.submit(tiny_architecture(), dict(SETTINGS, seed=SEED + number), name=f"packed {number}",
                               owner=owner) for number, owner in enumerate(owners)]
        phases.release_marker(store.path(first), point).write_text("")
        assert manager.wait(first, TIMEOUT)
        held = wait_for(lambda: next((run_id for run_id in pack
                                      if phases.held_marker(store.path(run_id), point).exists()), None),
                        f"a packed run at {hold}", lambda: not manager.wait(pack[0], 0))
        assert manager.packs() == [pack]
        if fault == "worker-sigkill":
            [worker] = manager.executor.worker_pids()["busy"]
            os.kill(worker, signal.SIGKILL)
            faulted = set(pack)
        else:
            target = next(run_id for run_id in pack if run_id != held)  # a packmate the pack is not holding at
            manager.stop(target, by=Actor(owners[pack.index(target)][0]))
            faulted = {target}
        for run_id in pack:
            phases.release_marker(store.path(run_id), point).write_text("")
        for run_id in pack:
            assert manager.wait(run_id, TIMEOUT)
        for run_id, owner in zip(pack, owners):
            expected = (expected_in_pack(moment, fault, run_id == held) if run_id in faulted
                        else Expected("completed", EPOCHS, (), True, 0))
            assert check_record(store, run_id, expected)["owner"] == owner[0]
            check_kept_model(store, run_id, expected.kept, images)
            check_no_temporary_files(store.path(run_id))
        after = manager.submit(tiny_architecture(), SETTINGS, name="after the pack")
        phases.release_marker(store.path(after), point).write_text("")
        assert manager.wait(after, TIMEOUT)
        check_record(store, after, Expected("completed", EPOCHS, (), True, 0))
    finally:
        manager.shut_down(timeout=60)


# ---- the matrix itself -----------------------------------------------------------------------------

def test_the_matrix_passes_every_hold_point_in_the_order_the_run_does():
    assert {point for point, _ in TIMELINE} == set(HoldPoint)  # a new hold point needs its cells
    first = [point for index, (point, _) in enumerate(TIMELINE) if point not in {p for p, _ in TIMELINE[:index]}]
    assert first == list(HoldPoint)  # the enum lists the points in the order a run first reaches them
    assert len(TIMELINE) == 6 + EPOCHS * (STEPS + 5)


def test_the_default_sample_covers_both_executors_and_the_moments_asked_for():
    holds = {moment_of(hold)[0] for _, hold, _ in SAMPLE}
    assert {executor for executor, _, _ in SAMPLE} == {"thread", "process"}
    assert {HoldPoint.BATCH, HoldPoint.SAVING, HoldPoint.TESTING, HoldPoint.EPOCH_START} <= holds
    assert {fault for _, _, fault in SAMPLE} == set(STOPS) | set(WORKER_KILLS) | set(FILE_FAULTS)
    assert all(fault in FAULTS[executor] and moment_of(hold) in POSITION for executor, hold, fault in SAMPLE)
