"""One damaged run never hides the others: each kind of damage against the store, `python -m mnist_lab runs`,
and every page that lists runs (Compare, Train, Draw). The good run is still shown, the damaged one is
named as damaged, and nothing raises."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, open_app_page, page_texts
from draw_support import install_untrained_run

from mnist_lab import cli, training
from mnist_lab.runs import RunNotFound, RunStatus, RunStore
from mnist_lab.views.markdown import plain as markdown_text

GOOD_NAME = "the good run"
SPOILT_NAME = "spoilt run"


def _edit_meta(change):
    def damage(folder: Path, deny):
        meta = json.loads((folder / "run.json").read_text())
        change(meta)
        (folder / "run.json").write_text(json.dumps(meta))
    return damage


def _write(name: str, value):
    def damage(folder: Path, deny):
        (folder / name).write_text(json.dumps(value))
    return damage


def _folder_instead_of_run_json(folder: Path, deny):
    (folder / "run.json").unlink()
    (folder / "run.json").mkdir()


# Each case: how the damaged run's folder is spoilt, and what its `problem` must mention.
CASES = {
    "run.json without status": (_edit_meta(lambda meta: meta.pop("status")), "has no status"),
    "created is a number": (_edit_meta(lambda meta: meta.update(created=1764676530)), "created is 1764676530"),
    "unknown status": (_edit_meta(lambda meta: meta.update(status="exploded")), "status is 'exploded'"),
    "unreadable run.json": (lambda folder, deny: deny(folder / "run.json"), "run.json cannot be read"),
    "unreadable run folder": (lambda folder, deny: deny(folder), "cannot be read"),
    "run.json is a folder": (_folder_instead_of_run_json, "run.json is a folder"),
    "run.json is a list": (_write("run.json", [1, 2]), "does not hold an object"),
    "unreadable history.json": (lambda folder, deny: deny(folder / "history.json"), "history.json cannot be read"),
    "history.json is an object": (_write("history.json", {"epoch": 1, "loss": 0.5}), "history.json does not hold"),
    "history.json holds non-dicts": (_write("history.json", [1, "two", None]), "epoch 1 of history.json is 1"),
    "history value is text": (_write("history.json", [{"epoch": 1, "loss": "0.5"}]), "loss in epoch 1"),
    "settings of the wrong type": (
        _edit_meta(lambda meta: meta["settings"].update(epochs="12", batch_size=[128], learning_rate="fast")),
        "settings.epochs is '12'"),
    "architecture is text": (_edit_meta(lambda meta: meta.update(architecture="seed-3layer")), "architecture is"),
    "test accuracy is text": (_edit_meta(lambda meta: meta.update(test_accuracy="98 %")), "test_accuracy is '98 %'"),
}
# Damage that only the root user can read through; emulated for root (see `deny`).
NEEDS_PERMISSIONS = {"unreadable run.json", "unreadable run folder", "unreadable history.json"}


@pytest.fixture
def deny(monkeypatch):
    """deny(path): make a file or folder unreadable, as `chmod 000` does for anyone but root.

    Root reads through any mode, so for root the same refusal is emulated: opening the path (or anything
    in the folder), and looking inside the folder, raise PermissionError as the kernel would.
    """
    files, folders = set(), set()

    def blocked(path, inside_only: bool) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor
        path = Path(os.path.abspath(os.fsdecode(path)))
        return (not inside_only and path in files) or any(folder in path.parents for folder in folders)

    if os.geteuid() == 0:
        real_open, real_stat = io.open, os.stat

        def guarded_open(file, *args, **kwargs):
            if blocked(file, inside_only=False):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        def guarded_stat(path, *args, **kwargs):
            if blocked(path, inside_only=True):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(io, "open", guarded_open)
        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "stat", guarded_stat)

    def deny_path(path: Path):
        (folders if path.is_dir() else files).add(Path(os.path.abspath(path)))
        os.chmod(path, 0)

    yield deny_path
    for path in files | folders:
        if path.exists():
            os.chmod(path, 0o755 if path in folders else 0o644)


def damaged_store(cases, deny) -> tuple[RunStore, dict, dict[str, str]]:
    """A store with one good completed run (with a model) and one damaged run per case: (store, good, ids)."""
    store = RunStore()
    ids = {}
    for case in cases:
        run = install_untrained_run(store, f"{SPOILT_NAME}: {case}", test_accuracy=0.8)
        store.append_epoch(run["id"], {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "seconds": 1.0})
        damage, _ = CASES[case]
        damage(store.path(run["id"]), deny)
        ids[case] = run["id"]
    good = install_untrained_run(store, GOOD_NAME, test_accuracy=0.9)  # the newest: first in every list
    return store, store.update(good["id"], test_loss=0.3), ids


# ---- The store -------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_the_store_lists_a_damaged_run_as_damaged_and_the_others_as_before(case, deny):
    store, good, ids = damaged_store([case], deny)
    listed = {meta["id"]: meta for meta in store.list()}
    assert set(listed) == {good["id"], ids[case]}
    assert listed[good["id"]]["status"] == "completed" and "problem" not in listed[good["id"]]
    damaged = listed[ids[case]]
    assert damaged["status"] == RunStatus.DAMAGED
    assert CASES[case][1] in damaged["problem"] and damaged["problem"].startswith("Damaged: ")
    # Whatever was damaged, every field the pages use has the type the lab writes.
    assert isinstance(damaged["name"], str) and isinstance(damaged["created"], str)
    assert isinstance(damaged["settings"], dict) and isinstance(damaged["architecture"], dict)
    assert damaged["test_accuracy"] is None or isinstance(damaged["test_accuracy"], float)
    assert all(isinstance(row, dict) and all(isinstance(value, (int, float)) or value is None
                                             for value in row.values()) for row in store.history(ids[case]))
    assert store.get(ids[case])["status"] == RunStatus.DAMAGED
    assert store.recover_interrupted() == []
    if case != "unreadable run folder":  # its owner's to remove
        store.delete(ids[case])  # a learner can always remove it
        assert [meta["id"] for meta in store.list()] == [good["id"]]


def test_a_damaged_model_file_is_called_damaged(tmp_path):
    store = RunStore()
    run = install_untrained_run(store, "spoilt model")
    model = store.model_path(run["id"])
    model.write_bytes(model.read_bytes()[:200])  # cut short, as by a full disk
    from mnist_lab.runs import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="is damaged") as caught:
        store.load_model(run["id"])
    assert "not found" not in str(caught.value).lower()


# ---- The command line ------------------------------------------------------------------------------

def run_cli(*arguments) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(arguments))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", CASES)
def test_runs_command_lists_the_good_run_and_the_damaged_one(case, deny):
    _, good, ids = damaged_store([case], deny)
    code, out, err = run_cli("runs")
    assert code == 0 and "Traceback" not in err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert GOOD_NAME in lines[good["id"]] and "completed" in lines[good["id"]]
    assert "damaged" in lines[ids[case]]
    code, out, _ = run_cli("runs", "--json")
    rows = {row["id"]: row for row in map(json.loads, out.splitlines())}
    assert code == 0 and rows[good["id"]]["status"] == "completed" and rows[ids[case]]["status"] == "damaged"


def test_runs_command_in_a_process_of_its_own(deny):
    """The real `python -m mnist_lab runs`, with the damage any user can make (no permissions needed)."""
    _, good, ids = damaged_store([case for case in CASES if case not in NEEDS_PERMISSIONS], deny)
    done = subprocess.run([sys.executable, "-m", "mnist_lab", "runs"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and GOOD_NAME in done.stdout
    assert done.stdout.count("damaged") == len(ids)


@pytest.mark.parametrize("run_id", ["x" * 300, "../../etc/passwd", "a\0b"])
def test_predict_with_an_impossible_run_id_says_so_briefly(run_id, tmp_path):
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    with pytest.raises(RunNotFound):
        RunStore().get(run_id)
    code, out, err = run_cli("predict", "--run", run_id, str(image))
    assert code != 0 and "Traceback" not in err and "File name too long" not in out + err
    assert all(len(line) < 300 for line in (out + err).splitlines())
    assert "No run with id" in out + err


# ---- The pages -------------------------------------------------------------------------------------
# One store holds every kind of damage at once (each page opens once: the Train page measures this
# machine's speed when it opens); the store tests above take each kind alone.

@pytest.fixture
def every_damage(deny, synthetic_data):
    return damaged_store(list(CASES), deny)


def test_compare_page_shows_the_good_run_and_names_the_damaged_ones(every_damage):
    store, good, ids = every_damage
    at = open_app_page("pages/compare.py")
    table = at.dataframe[0].value
    assert table.loc[good["id"], "status"] == "completed" and table.loc[good["id"], "name"] == GOOD_NAME
    for case, run_id in ids.items():
        assert table.loc[run_id, "status"] == "damaged", case
        assert CASES[case][1] in table.loc[run_id, "notes"], case
    assert f"{len(ids)} runs are damaged" in page_texts(at)
    assert at.selectbox(key="compare_depth_run").options == [GOOD_NAME]  # only the good run is evaluated


@pytest.fixture
def background_work_finishes():
    """The speed measurement the Train page starts ends before the next test."""
    yield
    assert training.wait_for_background(300)


def test_train_page_lists_the_good_run_and_badges_the_damaged_ones(every_damage, background_work_finishes):
    store, good, ids = every_damage
    at = open_app_page("pages/train.py")
    shown = page_texts(at)
    assert GOOD_NAME in shown
    assert shown.count("-badge[damaged]") >= 7  # the list shows the 8 newest runs: the good one and 7 damaged
    for case in ("settings of the wrong type", "architecture is text", "history.json holds non-dicts"):
        at.session_state["train_watched_run"] = ids[case]
        at.run()
        assert not at.exception, (case, at.exception)
        assert markdown_text(f"{SPOILT_NAME}: {case}") in page_texts(at)  # as the watched run's heading


def test_draw_page_offers_the_good_run(every_damage):
    store, good, ids = every_damage
    at = open_app_page("pages/draw.py")
    options = at.multiselect(key="draw_run_ids").options
    assert len(options) == 1 and GOOD_NAME in options[0]


def test_draw_page_names_the_damaged_runs(every_damage):
    assert "damaged" in page_texts(open_app_page("pages/draw.py"))
