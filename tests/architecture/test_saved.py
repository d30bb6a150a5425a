"""Saved architectures: kept on disk across restarts, names checked, only valid architectures saved,
damaged files reported by name."""

from __future__ import annotations

import json
import os

import pytest

from mnist_lab.architecture.json_format import ARCHITECTURE_FORMAT, from_json, to_json
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.saved import ArchitectureNotFound, ArchitectureStore, check_name
from mnist_lab.architecture.validation import ArchitectureError, normalize_layer

SMALL = [{"type": "Conv2D", "filters": 4, "kernel_size": 5}, {"type": "Flatten"}]


def test_save_list_load_delete(tmp_path):
    store = ArchitectureStore(tmp_path / "saved")
    assert store.list() == []
    store.save("wide 5x5", SMALL)
    store.save("Another-one_v1.2", preset_layers("seed-3layer"))
    store.save("beta", SMALL)
    assert store.list() == ["Another-one_v1.2", "beta", "wide 5x5"]  # case-insensitive order
    loaded = store.load("wide 5x5")
    assert loaded == [normalize_layer(layer, n) for n, layer in enumerate(SMALL, start=1)]
    assert analyze(store.load("Another-one_v1.2")).total_parameters == 30706
    store.delete("beta")
    assert store.list() == ["Another-one_v1.2", "wide 5x5"]


def test_saved_architectures_survive_a_restart(tmp_path):
    ArchitectureStore(tmp_path).save("kept", SMALL)
    assert ArchitectureStore(tmp_path).list() == ["kept"]
    assert ArchitectureStore(tmp_path).load("kept")[0]["filters"] == 4


def test_default_folder_comes_from_the_environment(isolated_storage, monkeypatch):
    store = ArchitectureStore()
    assert store.root == isolated_storage / "architectures"
    store.save("mine", SMALL)
    assert (isolated_storage / "architectures" / "mine.json").is_file()
    monkeypatch.delenv("MNIST_LAB_ARCHITECTURES")
    assert str(ArchitectureStore().root) == "architectures"


def test_saved_file_is_the_export_format(tmp_path):
    store = ArchitectureStore(tmp_path)
    path = store.save("mine", SMALL)
    content = json.loads(path.read_text())
    assert content["format"] == ARCHITECTURE_FORMAT and content["name"] == "mine"
    assert from_json(path.read_text()) == ("mine", store.load("mine"))


def test_saving_again_replaces_and_leaves_no_temporary_files(tmp_path):
    store = ArchitectureStore(tmp_path)
    store.save("mine", SMALL)
    store.save("mine", preset_layers("seed-5layer"))
    assert store.list() == ["mine"]
    assert len(store.load("mine")) == len(preset_layers("seed-5layer"))
    assert sorted(os.listdir(tmp_path)) == ["mine.json"]


def test_hidden_and_other_files_are_not_listed(tmp_path):
    store = ArchitectureStore(tmp_path)
    store.save("mine", SMALL)
    (tmp_path / ".mine.json.abc.tmp").write_text("half written")
    (tmp_path / ".hidden.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not an architecture")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "seed-3layer.json").write_text(to_json(SMALL, "seed-3layer"))
    (tmp_path / "odd;name.json").write_text(to_json(SMALL, "odd"))
    assert store.list() == ["mine"]


@pytest.mark.parametrize("name, message", [
    ("", "Give the architecture a name"),
    ("   ", "Give the architecture a name"),
    (None, "Give the architecture a name"),
    ("x" * 61, "61 characters long: use at most 60"),
    ("../escape", "contains '/'"),
    ("a/b", "contains '/'"),
    ("back\\slash", "contains '\\\\'"),
    ("näive", "contains 'ä'"),
    ("semi;colon:", "contains ':;'"),
    (".hidden", "must not start with a dot"),
    (" padded", "start or end with a space"),
    ("seed-3layer", "is the name of a preset"),
    ("Custom", "stands for an unsaved edit"),
])
def test_bad_names_are_refused_with_a_reason(tmp_path, name, message):
    with pytest.raises(ValueError) as caught:
        ArchitectureStore(tmp_path).save(name, SMALL)
    assert message in str(caught.value)
    assert not any(tmp_path.iterdir())


def test_good_names():
    for name in ("a", "x" * 60, "My net 2.0", "under_score-dash"):
        assert check_name(name) == name


def test_invalid_architecture_is_not_saved(tmp_path):
    store = ArchitectureStore(tmp_path)
    with pytest.raises(ArchitectureError, match="Layer 1 \\(Conv2D\\) filters: must be at least 1"):
        store.save("broken", [{"type": "Conv2D", "filters": 0}, {"type": "Flatten"}])
    assert store.list() == []


def test_unknown_names(tmp_path):
    store = ArchitectureStore(tmp_path)
    with pytest.raises(ArchitectureNotFound, match="There is no saved architecture called 'ghost'"):
        store.load("ghost")
    with pytest.raises(ArchitectureNotFound, match="'ghost'"):
        store.delete("ghost")
    assert issubclass(ArchitectureNotFound, ValueError)  # the Train page catches ValueError


@pytest.mark.parametrize("content, detail", [
    ("{half", "not valid JSON"),
    ('{"layers": [{"type": "Conv2D", "filters": -1}, {"type": "Flatten"}]}', "filters: must be at least 1"),
    (b"\xff\xfe", "cannot be read"),
])
def test_damaged_file_is_reported_by_name(tmp_path, content, detail):
    path = tmp_path / "damaged.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    store = ArchitectureStore(tmp_path)
    assert store.list() == ["damaged"]
    with pytest.raises(ArchitectureError) as caught:
        store.load("damaged")
    assert "'damaged'" in str(caught.value) and detail in str(caught.value)


@pytest.mark.parametrize("typed", ["x.json", "x.JSON", "x"])
def test_a_name_typed_with_its_file_ending_is_saved_once_and_opens_either_way(tmp_path, typed):
    store = ArchitectureStore(tmp_path)
    path = store.save(typed, SMALL)
    assert path == tmp_path / "x.json" and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert store.list() == ["x"]
    assert store.load("x") == store.load("x.json") == store.load(typed)
    assert json.loads(path.read_text())["name"] == "x"
    store.delete("x.json")
    assert store.list() == []


@pytest.mark.parametrize("name, message", [
    (".json", "Give the architecture a name"),
    ("x.json.json", "ends in .json twice"),
])
def test_names_that_are_only_a_file_ending_are_refused(tmp_path, name, message):
    with pytest.raises(ArchitectureError, match=message):
        ArchitectureStore(tmp_path).save(name, SMALL)


def test_name_errors_are_lab_errors_with_short_messages(tmp_path):
    from mnist_lab.errors import LabError

    store = ArchitectureStore(tmp_path)
    for name in ("ü" * 1_000_000, "".join(chr(c) for c in range(0x400, 0x400 + 5000)), 10 ** 400, None, ["a"]):
        for call in (store.load, store.delete, lambda n: store.save(n, SMALL)):
            with pytest.raises(LabError) as caught:
                call(name)
            assert len(str(caught.value)) < 200


def test_files_the_store_could_not_have_written_are_not_listed(tmp_path):
    (tmp_path / "old.json.json").write_text(to_json(SMALL, "old.json"))
    (tmp_path / "fine.json").write_text(to_json(SMALL, "fine"))
    assert ArchitectureStore(tmp_path).list() == ["fine"]


def test_huge_numbers_in_a_saved_file_are_reported_as_damage(tmp_path):
    (tmp_path / "huge.json").write_text('{"layers": [{"type": "Flatten"}, {"type": "Dense", "units": 1%s}]}'
                                        % ("0" * 400))
    store = ArchitectureStore(tmp_path)
    assert store.list() == ["huge"]
    with pytest.raises(ArchitectureError, match="'huge' is damaged: Layer 2 \\(Dense\\) units: must be at most"):
        store.load("huge")
    assert str(tmp_path) not in str(pytest.raises(ArchitectureError, store.load, "huge").value)


def test_a_saved_architecture_records_its_owner_and_only_they_or_the_teacher_change_it(tmp_path):
    from mnist_lab.classroom.learners import Actor, NotYours

    store = ArchitectureStore(tmp_path)
    ada, bob = Actor("a" * 16), Actor("b" * 16)
    path = store.save("wide", SMALL, owner=("a" * 16, "Ada"), by=ada)
    assert store.record("wide") == {"owner": "a" * 16, "owner_name": "Ada"}
    assert from_json(path.read_text())[0] == "wide"  # still the export format, for the command line too
    with pytest.raises(NotYours, match="belongs to Ada"):
        store.save("wide", preset_layers("seed-3layer"), owner=("b" * 16, "Bob"), by=bob)
    with pytest.raises(NotYours, match="only they or the teacher can delete it"):
        store.delete("wide", by=bob)
    assert store.load("wide")[0]["filters"] == 4 and store.record("wide")["owner_name"] == "Ada"
    store.save("wide", preset_layers("seed-3layer"), owner=("a" * 16, "Ada"), by=ada)
    store.delete("wide", by=Actor("t" * 16, teacher=True))
    assert store.list() == []


def test_architectures_of_no_learner_are_anyones_on_a_server_without_a_teacher(tmp_path):
    from mnist_lab.classroom.learners import Actor, NotYours

    store = ArchitectureStore(tmp_path)
    store.save("from the command line", SMALL)
    assert store.record("from the command line") == {}
    with pytest.raises(NotYours):
        store.delete("from the command line", by=Actor("b" * 16))
    store.delete("from the command line", by=Actor("b" * 16, unowned=True))
    assert store.list() == []
