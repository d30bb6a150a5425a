import json
import os
import subprocess
import sys

import pytest

from mnist_lab import runs
from mnist_lab.runs import ModelUnavailable, RunNotFound, RunStatus, RunStore

from helpers import ROOT

ARCHITECTURE = {"name": "tiny", "source": "custom", "layers": [{"type": "Flatten"}]}
SETTINGS = {"epochs": 2, "batch_size": 32}


def test_create_get_list_and_history(tmp_path):
    store = RunStore(tmp_path / "runs")
    first = store.create("first", ARCHITECTURE, SETTINGS)
    second = store.create("second", ARCHITECTURE, SETTINGS)
    assert store.get(first["id"])["status"] == "queued"
    assert [meta["id"] for meta in store.list()] == [second["id"], first["id"]]  # newest first
    store.append_epoch(first["id"], {"epoch": 1, "loss": 0.5, "seconds": 2.0})
    store.append_epoch(first["id"], {"epoch": 2, "loss": 0.25, "seconds": 3.0})
    assert [epoch["loss"] for epoch in store.history(first["id"])] == [0.5, 0.25]
    meta = store.get(first["id"])
    assert meta["epochs_done"] == 2 and meta["epoch_seconds"] == [2.0, 3.0]


def test_two_runs_created_in_one_second_with_the_same_random_suffix_get_their_own_folders(tmp_path, monkeypatch):
    suffixes = iter(["abcdef", "abcdef", "123456"])
    monkeypatch.setattr(runs.store, "secrets", type("Drawn", (), {"token_hex": staticmethod(lambda size: next(suffixes))}))
    one_second = runs.store.datetime(2026, 12, 7, 9, 0, 0)
    monkeypatch.setattr(runs.store, "datetime", type("Frozen", (), {"now": staticmethod(lambda: one_second)}))
    store = RunStore(tmp_path)
    first = store.create("first", ARCHITECTURE, SETTINGS)
    second = store.create("second", ARCHITECTURE, SETTINGS)
    assert first["id"].endswith("abcdef") and second["id"].endswith("123456")
    assert store.get(first["id"])["name"] == "first" and store.get(second["id"])["name"] == "second"


def test_reopened_store_sees_the_same_runs(tmp_path):
    run = RunStore(tmp_path).create("kept", ARCHITECTURE, SETTINGS)
    assert RunStore(tmp_path).get(run["id"])["name"] == "kept"


def test_unknown_status_and_unknown_run_are_refused(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("x", ARCHITECTURE, SETTINGS)
    with pytest.raises(ValueError, match="Unknown status"):
        store.update(run["id"], status="exploded")
    with pytest.raises(RunNotFound):
        store.get("nope")
    with pytest.raises(RunNotFound):
        store.get("../etc")


def test_write_atomic_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "a" / "file.json"
    runs.write_json(target, {"value": 1})
    runs.write_json(target, {"value": 2})
    assert json.loads(target.read_text()) == {"value": 2}
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_folders_without_a_run_file_are_skipped_and_a_broken_one_is_listed_as_damaged(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "garbage").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    run = store.create("good", ARCHITECTURE, SETTINGS)
    listed = store.list()
    assert [meta["id"] for meta in listed] == [run["id"], "broken"]
    assert listed[0]["status"] == "queued" and "problem" not in listed[0]
    assert listed[1]["status"] == RunStatus.DAMAGED == "damaged"
    assert listed[1]["problem"] == "Damaged: run.json is not valid JSON."


def test_statuses_are_one_type_with_active_and_usable_sets():
    assert runs.STORED == ("queued", "running", "completed", "stopped", "failed", "interrupted")
    assert runs.ACTIVE == {"queued", "running"}
    assert set(runs.ACTIVE) == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert runs.USABLE.isdisjoint(runs.ACTIVE) and RunStatus.DAMAGED not in runs.USABLE
    assert RunStatus.DAMAGED not in runs.STORED  # listed, never written
    assert json.dumps({"status": RunStatus.RUNNING}) == '{"status": "running"}'


def test_a_damaged_run_cannot_be_marked_damaged_on_disk(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("x", ARCHITECTURE, SETTINGS)
    with pytest.raises(ValueError, match="Unknown status"):
        store.update(run["id"], status=RunStatus.DAMAGED)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_store_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        run = RunStore(tmp_path).create("shared", ARCHITECTURE, SETTINGS)
        runs.write_atomic(tmp_path / "model.keras", b"bytes")
    finally:
        os.umask(previous)
    for path in (tmp_path / run["id"] / "run.json", tmp_path / run["id"] / "history.json", tmp_path / "model.keras"):
        assert path.stat().st_mode & 0o777 == mode, path


@pytest.mark.parametrize("run_id", ["x" * 300, "a/b", "..", ".hidden", "", "nul\0byte", None, 7])
def test_an_impossible_run_id_is_not_found_with_a_short_message(tmp_path, run_id):
    with pytest.raises(RunNotFound) as caught:
        RunStore(tmp_path).get(run_id)
    assert len(str(caught.value)) < 100


def test_history_is_floats_or_nothing(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("x", ARCHITECTURE, SETTINGS)
    runs.write_json(store.path(run["id"]) / "history.json",
                    [{"epoch": 1, "loss": 1, "accuracy": None, "seconds": 2.5}])
    assert store.history(run["id"]) == [{"epoch": 1, "loss": 1.0, "accuracy": None, "seconds": 2.5}]
    assert isinstance(store.history(run["id"])[0]["loss"], float)
    for damaged in ({"epoch": 1}, [1, 2], [{"loss": 0.5}], [{"epoch": 1, "loss": "0.5"}], [{"epoch": True}]):
        runs.write_json(store.path(run["id"]) / "history.json", damaged)
        assert store.history(run["id"]) == []
        assert store.get(run["id"])["status"] == "damaged"
        assert "history.json" in store.get(run["id"])["problem"]


def test_appending_an_epoch_to_a_damaged_history_starts_it_again(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("x", ARCHITECTURE, SETTINGS)
    runs.write_json(store.path(run["id"]) / "history.json", {"not": "a list"})
    store.append_epoch(run["id"], {"epoch": 1, "loss": 0.5, "seconds": 1.0})
    assert store.history(run["id"]) == [{"epoch": 1, "loss": 0.5, "seconds": 1.0}]
    assert store.get(run["id"])["status"] == "queued"


def test_update_of_an_unreadable_run_says_it_is_damaged(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("x", ARCHITECTURE, SETTINGS)
    (store.path(run["id"]) / "run.json").write_text("[1, 2]")
    with pytest.raises(runs.RunDamaged, match="cannot be changed"):
        store.update(run["id"], status="running")
    store.delete(run["id"])  # the way out for a learner
    assert store.list() == []


def test_orphaned_runs_become_interrupted_and_live_ones_do_not(tmp_path):
    store = RunStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = store.create("orphan", ARCHITECTURE, SETTINGS, pid=dead.pid)
    store.update(orphan["id"], status="running")
    store.append_epoch(orphan["id"], {"epoch": 1, "loss": 1.0, "seconds": 1.0})
    mine_alive = store.create("alive here", ARCHITECTURE, SETTINGS)
    mine_lost = store.create("lost here", ARCHITECTURE, SETTINGS)
    done = store.create("done", ARCHITECTURE, SETTINGS)
    store.update(done["id"], status="completed")

    recovered = store.recover_interrupted(alive_run_ids={mine_alive["id"]})

    assert set(recovered) == {orphan["id"], mine_lost["id"]}
    assert store.get(orphan["id"])["status"] == "interrupted"
    assert "1 finished epoch" in store.get(orphan["id"])["message"]
    assert store.get(mine_alive["id"])["status"] == "queued"
    assert store.get(done["id"])["status"] == "completed"


def test_delete_refuses_a_live_run_and_removes_a_finished_one(tmp_path):
    store = RunStore(tmp_path)
    live = store.create("live", ARCHITECTURE, SETTINGS, pid=os.getpid())
    store.update(live["id"], status="running")
    with pytest.raises(ValueError, match="stop it before deleting"):
        store.delete(live["id"])
    store.update(live["id"], status="stopped")
    store.delete(live["id"])
    assert store.list() == []


def test_missing_or_damaged_model_gives_a_readable_error(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("no model", ARCHITECTURE, SETTINGS)
    with pytest.raises(ModelUnavailable, match="has no saved model"):
        store.load_model(run["id"])
    store.model_path(run["id"]).write_bytes(b"not a keras file")
    with pytest.raises(ModelUnavailable, match="is damaged and cannot be read: it is not a Keras model archive") as caught:
        store.load_model(run["id"])
    assert "not found" not in str(caught.value).lower() and str(tmp_path) not in str(caught.value)


def test_stop_request_is_visible_to_another_store(tmp_path):
    run = RunStore(tmp_path).create("x", ARCHITECTURE, SETTINGS)
    assert not RunStore(tmp_path).stop_requested(run["id"])
    RunStore(tmp_path).request_stop(run["id"])
    assert RunStore(tmp_path).stop_requested(run["id"])


def test_default_root_comes_from_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_RUNS", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"


def test_each_epochs_weights_are_kept_and_thinned_oldest_first_under_the_bound(tmp_path):
    from mnist_lab.architecture.building import build_model

    store = RunStore(tmp_path)
    run = store.create("epochs", ARCHITECTURE, SETTINGS)
    model = build_model([{"type": "Flatten"}], "tiny")
    store.save_epoch_weights(run["id"], 1, model)
    size = store.epoch_weights_path(run["id"], 1).stat().st_size
    for epoch in range(2, 13):
        store.save_epoch_weights(run["id"], epoch, model, limit=6 * size)
        assert store.epoch_weights(run["id"])[0] == 1 and store.epoch_weights(run["id"])[-1] == epoch
        assert len(store.epoch_weights(run["id"])) <= 6
    assert store.epoch_weights(run["id"]) == [1, 3, 5, 7, 9, 12]  # evenly spread, the oldest thinned first
    loaded = build_model([{"type": "Flatten"}], "tiny")
    loaded.load_weights(store.epoch_weights_path(run["id"], 5))
    store.write_epoch_weights(run["id"], 13, b"x" * size, limit=size)  # two epochs cannot fit: none kept
    assert store.epoch_weights(run["id"]) == []


def _staged_epoch(store, run_id, epoch):
    store.stage_epoch(run_id, epoch, f"model {epoch}".encode(), f"weights {epoch}".encode())


def test_an_epoch_is_the_runs_only_once_its_history_row_commits_it(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("staged", ARCHITECTURE, SETTINGS)["id"]
    _staged_epoch(store, run_id, 1)
    assert not store.has_model(run_id) and store.epoch_weights(run_id) == []  # no reader sees it yet
    store.commit_epoch(run_id, {"epoch": 1, "loss": 0.5, "seconds": 1.0})
    assert store.model_path(run_id).read_bytes() == b"model 1" and store.epoch_weights(run_id) == [1]
    assert store.epoch_weights_path(run_id, 1).read_bytes() == b"weights 1"
    assert not (store.path(run_id) / runs.STAGED_FOLDER).exists()


def test_settling_drops_an_epoch_staged_but_not_committed(tmp_path):
    """A trainer killed between saving an epoch's files and writing its history row."""
    store = RunStore(tmp_path)
    run_id = store.create("cut short", ARCHITECTURE, SETTINGS)["id"]
    _staged_epoch(store, run_id, 1)
    store.commit_epoch(run_id, {"epoch": 1, "loss": 0.5, "seconds": 1.0})
    _staged_epoch(store, run_id, 2)
    (store.path(run_id) / ".history.json.0123abcd.tmp").write_text("[")  # an interrupted write
    assert store.settle_epochs(run_id) == 1
    assert store.model_path(run_id).read_bytes() == b"model 1" and store.epoch_weights(run_id) == [1]
    assert sorted(path.name for path in store.path(run_id).iterdir()) == ["epochs", "history.json", "model.keras",
                                                                         "run.json"]


def test_settling_finishes_an_epoch_committed_but_not_moved_in(tmp_path):
    """A trainer killed after the history row, before the epoch's files were in place; and one killed
    between the row and run.json's count."""
    store = RunStore(tmp_path)
    run_id = store.create("committed", ARCHITECTURE, SETTINGS)["id"]
    _staged_epoch(store, run_id, 1)
    runs.write_json(store.path(run_id) / "history.json", [{"epoch": 1, "loss": 0.5, "seconds": 1.5}])
    assert store.get(run_id)["epochs_done"] == 0
    assert store.settle_epochs(run_id) == 1
    assert store.model_path(run_id).read_bytes() == b"model 1" and store.epoch_weights(run_id) == [1]
    meta = store.get(run_id)
    assert meta["epochs_done"] == 1 and meta["epoch_seconds"] == [1.5]


def test_recovering_an_orphaned_run_settles_its_half_saved_epoch(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("orphan", ARCHITECTURE, SETTINGS)["id"]
    store.update(run_id, status="running", pid=2**22 + 12345)  # no such process
    _staged_epoch(store, run_id, 1)
    assert store.recover_interrupted() == [run_id]
    meta = store.get(run_id)
    assert meta["status"] == "interrupted" and "0 finished epoch(s) kept" in meta["message"]
    assert not store.has_model(run_id) and not (store.path(run_id) / runs.STAGED_FOLDER).exists()


WRITER = """
import sys
from mnist_lab.runs import RunStore
store, run_id, writer = RunStore(sys.argv[1]), sys.argv[2], sys.argv[3]
for count in range(1, 41):
    store.update(run_id, **{f"count_{writer}": count})
"""


def test_several_writers_at_once_lose_no_change(tmp_path):
    """Three processes and three threads change one run's record 40 times each, every one its own field:
    each read-change-write holds the run's lock, so every field ends at 40."""
    import threading

    store = RunStore(tmp_path)
    run_id = store.create("shared", ARCHITECTURE, SETTINGS)["id"]
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), run_id, f"process{number}"],
                                  cwd=ROOT)
                 for number in range(3)]

    def write(writer):
        for count in range(1, 41):
            store.update(run_id, **{f"count_{writer}": count})

    threads = [threading.Thread(target=write, args=(f"thread{number}",)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(process.wait(timeout=120) == 0 for process in processes)
    meta = store.get(run_id)
    assert {key: value for key, value in meta.items() if key.startswith("count_")} == {
        f"count_{kind}{number}": 40 for kind in ("process", "thread") for number in range(3)}
    assert sorted(path.name for path in store.path(run_id).iterdir()) == ["history.json", "run.json"]
