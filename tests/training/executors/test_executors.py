"""Executors: runs in a pool of worker processes (stop across the process boundary, a worker that trains run
after run, retirement, a killed worker mid-run and between runs, a server that goes away), many
submissions at once, and Ray on a local instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mnist_lab import system, training
from mnist_lab.runs import RunStore
from mnist_lab.training.executors import process
from mnist_lab.training.executors.process import ProcessExecutor

from helpers import ROOT, TINY, tiny

LONG = {"epochs": 50, "batch_size": 8}


def wait_until(progress, condition, timeout=180):
    """Wait on the run's progress notifications until condition(snapshot) holds."""
    deadline = time.monotonic() + timeout
    version = -1
    while not condition(progress.snapshot()):
        assert time.monotonic() < deadline, f"no such progress: {progress.snapshot()}"
        version = progress.wait_for_change(version, 5)
    return progress.snapshot()


def wait_for_status(store, run_id, statuses, timeout=180):
    """Poll run.json (written by another process) until the run reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    while store.get(run_id)["status"] not in statuses:
        assert time.monotonic() < deadline, store.get(run_id)
        time.sleep(0.2)  # polling a file another process writes: there is no event to wait on
    return store.get(run_id)


@pytest.fixture
def process_manager(synthetic_data, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor="process")
    yield manager
    manager.shut_down(timeout=60)


def test_a_run_trains_in_a_worker_process_and_stops_within_one_batch(process_manager):
    run_id = process_manager.submit(tiny(), LONG)
    progress = process_manager.live_state(run_id)
    steps = progress.snapshot()["batches"]
    wait_until(progress, lambda snapshot: (snapshot.get("batches_done") or 0) >= steps + 5)
    worker = process_manager.store.get(run_id)["pid"]
    assert worker != os.getpid()
    process_manager.stop(run_id)
    assert process_manager.wait(run_id, 120)
    final = progress.snapshot()
    assert final["status"] == "stopped" and final["batches_after_stop"] <= 1
    meta = process_manager.store.get(run_id)
    assert meta["status"] == "stopped" and meta["executor"] == "process" and meta["epochs_done"] >= 1
    assert process_manager.store.load_model(run_id) is not None


def test_a_killed_worker_fails_its_run_with_a_message_and_the_next_run_starts(process_manager):
    doomed = process_manager.submit(tiny(), LONG)
    waiting = process_manager.submit(tiny(), {"epochs": 1})
    assert process_manager.queue_position(waiting) == 1
    wait_until(process_manager.live_state(doomed), lambda snapshot: (snapshot.get("epochs_done") or 0) >= 1)
    os.kill(process_manager.store.get(doomed)["pid"], signal.SIGKILL)
    assert process_manager.wait(doomed, 60)
    meta = process_manager.store.get(doomed)
    assert meta["status"] == "failed"
    assert "stopped unexpectedly: signal 9 (SIGKILL)" in meta["message"] and "are kept" in meta["message"]
    assert len(process_manager.store.history(doomed)) >= 1 and process_manager.store.has_model(doomed)
    assert process_manager.wait(waiting, 180)
    assert process_manager.store.get(waiting)["status"] == "completed"
    assert process_manager.store.get(waiting)["pid"] != meta["pid"]  # a new worker took the dead one's place


def trained_pids(manager, count, settings=None):
    """Train `count` tiny runs one after another; the worker process of each."""
    pids = []
    for _ in range(count):
        run_id = manager.submit(tiny(), settings or {"epochs": 1, "train_size": 100})
        assert manager.wait(run_id, 180)
        meta = manager.store.get(run_id)
        assert meta["status"] == "completed", meta["message"]
        pids.append(meta["pid"])
    return pids


def test_one_worker_trains_run_after_run(process_manager):
    first, second, third = trained_pids(process_manager, 3)
    assert first == second == third != os.getpid()
    assert process_manager.executor.workers_started == 1
    assert process_manager.executor.worker_pids() == {"idle": [first], "busy": []}
    assert process_manager.executor.device == system.device_info(timeout=120)  # as the worker reported it


def test_workers_train_as_far_below_the_servers_priority_as_set(synthetic_data, monkeypatch):
    """So that pages and Train presses come first (the suite's own workers run at its priority: conftest)."""
    monkeypatch.setenv(process.WORKER_NICENESS_VARIABLE, "3")
    executor = ProcessExecutor()
    try:
        assert executor.wait_until_warm(180)
        [worker] = executor.worker_pids()["idle"]
        assert os.getpriority(os.PRIO_PROCESS, worker) == os.getpriority(os.PRIO_PROCESS, 0) + 3
    finally:
        executor.close()


@pytest.mark.parametrize("text, niceness", [(None, process.DEFAULT_WORKER_NICENESS), ("0", 0), (" 19 ", 19),
                                            ("20", process.DEFAULT_WORKER_NICENESS),
                                            ("-1", process.DEFAULT_WORKER_NICENESS),
                                            ("low", process.DEFAULT_WORKER_NICENESS)])
def test_the_workers_niceness_is_a_whole_number_from_0_to_19_or_the_default(monkeypatch, caplog, text, niceness):
    if text is None:
        monkeypatch.delenv(process.WORKER_NICENESS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(process.WORKER_NICENESS_VARIABLE, text)
    assert ProcessExecutor(warm=False).niceness == niceness
    assert (process.WORKER_NICENESS_VARIABLE in caplog.text) == (text not in (None, "0", " 19 "))


@pytest.mark.parametrize("limits", [{"runs_per_worker": 2}, {"memory_limit_mb": 1}], ids=["runs", "memory"])
def test_a_worker_is_retired_after_its_share_of_runs_or_past_its_memory(synthetic_data, isolated_storage, limits):
    executor = ProcessExecutor(**limits)
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor=executor)
    try:
        pids = trained_pids(manager, 3)
    finally:
        manager.shut_down(timeout=60)
    if "runs_per_worker" in limits:
        assert pids[0] == pids[1] != pids[2] and executor.workers_retired == 1
    else:  # every worker is over a 1 MB limit after its first run
        assert len(set(pids)) == 3 and executor.workers_retired == 3


class PretendWorker:
    """A worker without a process: what the pool decides, not what a worker does."""

    def __init__(self, pool):
        self.ready = threading.Event()
        self.ready.set()
        self.runs_done = 0
        self.pid = id(self)

    def alive(self):
        return True

    def assign(self, handle, job):
        return True

    def retire(self):
        pass


def test_the_pool_keeps_a_worker_ready_per_slot_but_starts_none_while_a_run_trains(monkeypatch, isolated_storage):
    monkeypatch.setattr(process, "Worker", PretendWorker)
    pool = ProcessExecutor(warm=True)
    assert len(pool.worker_pids()["idle"]) == 1
    pool.keep_warm(2)
    assert len(pool.worker_pids()["idle"]) == 2 and pool.wait_until_warm(0)
    settings = training.TrainSettings(epochs=1, train_size=100, validation_size=50)
    pool.submit(RunStore(isolated_storage / "runs"), "a", tiny(), settings)
    pool.submit(RunStore(isolated_storage / "runs"), "b", tiny(), settings)
    pool.keep_warm(3)
    assert pool.worker_pids()["idle"] == [] and pool.workers_started == 2  # the two runs train: no new start
    first, second = list(pool._busy)
    pool._release(first, memory_mb=100)
    assert pool.workers_started == 2  # one run still trains
    pool._release(second, memory_mb=100)
    assert len(pool.worker_pids()["idle"]) == 3 and pool.workers_started == 3  # idle: topped up


def test_closing_the_pool_ends_a_worker_still_starting_instead_of_waiting_for_it(synthetic_data, isolated_storage):
    """A server stopped right after it started: its spare worker is still importing Keras."""
    pool = ProcessExecutor(warm=True)
    [worker] = pool._idle
    assert not worker.ready.is_set()
    pool.close()
    assert worker.process.returncode == -signal.SIGTERM  # ended, not left to finish its start


def test_a_worker_killed_between_runs_costs_no_run(process_manager):
    (earlier,) = trained_pids(process_manager, 1)
    os.kill(earlier, signal.SIGKILL)  # idle in the pool; the next run may be handed to it before it is seen dead
    (later,) = trained_pids(process_manager, 1)
    assert later != earlier
    assert [meta["status"] for meta in process_manager.store.list()] == ["completed", "completed"]


def test_a_server_that_goes_away_leaves_its_run_interrupted_with_its_epochs(synthetic_data, isolated_storage):
    script = (
        "import sys, time\n"
        "from mnist_lab import training\n"
        "from mnist_lab.architecture.sources import custom_architecture\n"
        "from mnist_lab.runs import RunStore\n"
        "manager = training.TrainingManager(RunStore(sys.argv[1]), executor='process')\n"
        "run_id = manager.submit(custom_architecture(%r), %r)\n"
        "print(run_id, flush=True)\n"
        "manager.wait(run_id)\n" % (TINY, LONG))
    server = subprocess.Popen([sys.executable, "-c", script, str(isolated_storage / "runs")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    run_id = server.stdout.readline().strip()
    store = RunStore(isolated_storage / "runs")
    deadline = time.monotonic() + 180
    while len(store.history(run_id)) < 1:
        assert time.monotonic() < deadline and server.poll() is None
        time.sleep(0.2)  # polling a file another process writes: there is no event to wait on
    server.kill()  # no clean shutdown: the worker learns it from the end of its input
    server.wait()
    meta = wait_for_status(store, run_id, {"interrupted"})
    assert "finished epoch(s) kept" in meta["message"] and meta["epochs_done"] >= 1
    assert store.has_model(run_id)
    manager = training.TrainingManager(store, executor="thread")  # the restarted server
    assert run_id not in manager.recovered and store.get(run_id)["status"] == "interrupted"


@pytest.mark.long
def test_twenty_learners_pressing_train_at_once_are_all_trained(synthetic_data, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=2, max_queued=30,
                                       executor="process")
    run_ids, errors = [], []
    start = threading.Barrier(20)

    def press_train(seed):
        start.wait()
        try:
            run_ids.append(manager.submit(tiny(), {"epochs": 1, "train_size": 100, "seed": seed}))
        except Exception as error:  # every submission must be accepted
            errors.append(error)

    threads = [threading.Thread(target=press_train, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [] and len(set(run_ids)) == 20
        for run_id in run_ids:
            assert manager.wait(run_id, 600)
        statuses = [manager.store.get(run_id)["status"] for run_id in run_ids]
        assert statuses == ["completed"] * 20, [manager.store.get(run_id)["message"] for run_id in run_ids]
        assert manager.peak_running == 2
    finally:
        manager.shut_down(timeout=60)


def test_ray_trains_streams_progress_and_stops(synthetic_data, isolated_storage):
    pytest.importorskip("ray")
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="ray")
    try:
        run_id = manager.submit(tiny(), LONG)
        progress = manager.live_state(run_id)
        wait_until(progress, lambda snapshot: (snapshot.get("batches_done") or 0) >= 1)  # streamed while training
        wait_until(progress, lambda snapshot: (snapshot.get("epochs_done") or 0) >= 1)
        manager.stop(run_id)
        assert manager.wait(run_id, 180)
        meta = manager.store.get(run_id)
        assert meta["status"] == "stopped" and meta["executor"] == "ray", meta
        assert meta["epochs_done"] == len(manager.store.history(run_id)) >= 1
        assert meta["device"] and meta["test_accuracy"] is not None
        assert manager.store.load_model(run_id) is not None  # the model came back into this server's store
    finally:
        manager.shut_down(timeout=60)


def test_a_worker_process_keeps_each_epochs_weights_in_the_store(process_manager):
    run_id = process_manager.submit(tiny(), {"epochs": 2, "batch_size": 32})
    assert process_manager.wait(run_id, 180)
    assert process_manager.store.get(run_id)["status"] == "completed"
    assert process_manager.store.epoch_weights(run_id) == [1, 2]
