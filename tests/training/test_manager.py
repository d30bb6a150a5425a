"""The training manager as a class uses it: owners, who may stop and delete, a queue for a whole class,
expected starts, names that tell runs apart, and the change count that pages poll."""

from __future__ import annotations

import pytest

from helpers import HeldExecutor, tiny
from mnist_lab import training
from mnist_lab.errors import LabError
from mnist_lab.classroom.learners import Actor, NotYours
from mnist_lab.runs import RunStore
from mnist_lab.training import limits
from mnist_lab.training import manager as manager_module

ADA, BEN = ("ada-id", "Ada"), ("ben-id", "Ben")


@pytest.fixture
def manager(held_manager):
    return held_manager


def test_a_run_records_its_owner_and_its_default_name_says_whose_it_is_and_is_unique(manager):
    first = manager.submit(tiny(), {"epochs": 1}, owner=ADA)
    second = manager.submit(tiny(), {"epochs": 1}, owner=ADA)
    named = manager.submit(tiny(), {"epochs": 1}, name="my run", owner=BEN)
    metas = [manager.store.get(run_id) for run_id in (first, second, named)]
    assert [(meta["owner"], meta["owner_name"]) for meta in metas] == [ADA, ADA, BEN]
    assert metas[0]["name"].startswith("Ada · tiny · 1 epoch")
    assert metas[1]["name"] == metas[0]["name"] + " (2)"
    assert metas[2]["name"] == "my run"


def test_only_the_owner_or_the_teacher_can_stop_or_delete_a_run(manager):
    running = manager.submit(tiny(), {"epochs": 1}, owner=ADA)
    waiting = manager.submit(tiny(), {"epochs": 1}, owner=ADA)
    for run_id in (running, waiting):
        with pytest.raises(NotYours, match="belongs to Ada"):
            manager.stop(run_id, by=Actor("ben-id"))
    assert manager.store.get(running)["status"] == "running" and manager.queue_position(waiting) == 1
    manager.stop(waiting, by=Actor("ada-id"))
    manager.stop(running, by=Actor(None, teacher=True))
    assert manager.wait(running, 5) and manager.store.get(running)["status"] == "stopped"
    with pytest.raises(NotYours, match="only they or the teacher can delete it"):
        manager.delete(running, by=Actor("ben-id"))
    manager.delete(running, by=Actor("ada-id"))
    assert [meta["id"] for meta in manager.runs(max_age=0)] == [waiting]


def test_a_class_of_a_hundred_can_wait_and_each_learner_knows_when_they_start(manager, monkeypatch):
    class Estimate:
        def __init__(self, epochs):
            self.run_seconds = 10.0 * epochs

    monkeypatch.setattr(manager.speed, "calibration", lambda: object())
    monkeypatch.setattr(manager_module, "estimate_epoch", lambda calibration, adds, settings: Estimate(settings.epochs))
    assert manager.max_queued >= 100
    running = manager.submit(tiny(), {"epochs": 1})
    waiting = [manager.submit(tiny(), {"epochs": 1 + number % 2}) for number in range(100)]
    assert manager.counts()["queued"] == 100
    starts = [manager.expected_start(run_id) for run_id in waiting[:4]]
    assert starts == [30.0, 40.0, 60.0, 70.0]  # the held run has 30 s left; the others take 10 or 20 s
    assert manager.expected_start(running) is None
    with pytest.raises(training.QueueFull):
        manager.submit(tiny(), {"epochs": 1})


def test_two_slots_share_the_queue_in_the_expected_starts(synthetic_npz, isolated_storage, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=2,
                                       executor=HeldExecutor(remaining=5.0))

    class Estimate:
        run_seconds = 10.0

    monkeypatch.setattr(manager.speed, "calibration", lambda: object())
    monkeypatch.setattr(manager_module, "estimate_epoch", lambda *arguments: Estimate())
    [manager.submit(tiny(), {"epochs": 1}) for _ in range(2)]
    waiting = [manager.submit(tiny(), {"epochs": 1}) for _ in range(3)]
    assert [manager.expected_start(run_id) for run_id in waiting] == [5.0, 5.0, 15.0]
    manager.shut_down(5)


def test_the_teacher_can_move_a_waiting_run_to_the_front_and_learners_cannot(manager):
    manager.submit(tiny(), {"epochs": 1})
    waiting = [manager.submit(tiny(), {"epochs": 1}, owner=ADA) for _ in range(3)]
    with pytest.raises(LabError, match="Only the teacher"):
        manager.move(waiting[2], 1, by=Actor("ada-id"))
    manager.move(waiting[2], 1, by=Actor(None, teacher=True))
    assert manager.queued_run_ids() == [waiting[2], waiting[0], waiting[1]]


def test_the_change_count_moves_with_every_change_a_list_shows(manager):
    seen = [manager.change_count()]
    run_id = manager.submit(tiny(), {"epochs": 1}, owner=ADA)
    seen.append(manager.change_count())
    manager.stop(run_id, by=Actor("ada-id"))
    seen.append(manager.change_count())
    manager.delete(run_id, by=Actor("ada-id"))
    seen.append(manager.change_count())
    assert len(set(seen)) == 4
    assert manager.change_count() == seen[-1]  # and stays put while nothing happens


def test_the_teacher_can_open_more_slots_and_waiting_runs_start_at_once(manager):
    first = manager.submit(tiny(), {"epochs": 1})
    waiting = [manager.submit(tiny(), {"epochs": 1}) for _ in range(3)]
    with pytest.raises(LabError, match="Only the teacher"):
        manager.set_max_concurrent(4, by=Actor("ada-id"))
    with pytest.raises(LabError, match="At least one run"):
        manager.set_max_concurrent(0, by=Actor(None, teacher=True))
    manager.set_max_concurrent(3, by=Actor(None, teacher=True))
    assert manager.counts()["running"] == 3 and manager.queued_run_ids() == [waiting[2]]
    assert [manager.store.get(run_id)["status"] for run_id in (first, *waiting)] == ["running"] * 3 + ["queued"]


@pytest.mark.parametrize("cores, memory_mb, expected", [
    (2, 16000, 2),  # a 2-core laptop: one run per core
    (1, 16000, 1),
    (16, 64000, limits.MOST_CONCURRENT_BY_DEFAULT),  # a big box: the teacher goes beyond
    (8, 3000, 2),  # memory decides
    (2, 1000, 1),  # never fewer than one
    (2, None, 2),  # memory unknown: the cores decide
])
def test_runs_train_at_once_one_per_core_as_memory_allows(monkeypatch, cores, memory_mb, expected):
    monkeypatch.setattr(limits.system, "cpu_cores", lambda: cores)
    monkeypatch.setattr(limits.system, "memory_mb", lambda: memory_mb)
    assert limits.default_max_concurrent() == expected


def test_the_manager_asks_its_executor_to_keep_a_worker_ready_per_slot(isolated_storage):
    class CountingExecutor(HeldExecutor):
        def __init__(self):
            super().__init__()
            self.warm = []

        def keep_warm(self, count):
            self.warm.append(count)

    executor = CountingExecutor()
    made = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=2, executor=executor)
    made.set_max_concurrent(3, by=Actor(None, teacher=True))
    assert executor.warm == [2, 3]
    made.shut_down(5)


def test_the_device_comes_from_the_workers_where_the_driver_lists_cards(isolated_storage, monkeypatch):
    executor = HeldExecutor()
    executor.device = None  # the workers are still starting
    made = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor=executor)
    monkeypatch.setattr(manager_module.system, "nvidia_gpus", lambda folder=None: ("NVIDIA H200",))
    assert made.device_info() is None
    executor.device = manager_module.system.DeviceInfo("jax", "3.15.1", "0.7.2", ("NVIDIA H200",), 16)
    assert made.device_info().description == "GPU: NVIDIA H200"
    monkeypatch.setattr(manager_module.system, "nvidia_gpus", lambda folder=None: ())
    assert made.device_info().gpus == ()  # no card: the CPU, known without asking
    made.shut_down(5)
