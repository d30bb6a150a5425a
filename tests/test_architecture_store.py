"""Saved architectures: kept on disk across restarts, names checked, only valid architectures saved,
damaged files reported by name."""

from __future__ import annotations

import json
import os

import pytest

from mnist_lab import architectures
from mnist_lab.architecture_store import ArchitectureNotFound, ArchitectureStore, check_name
from mnist_lab.architectures import ArchitectureError, analyze, from_json, preset_layers, to_json

SMALL = [{"type": "Conv2D", "filters": 4, "kernel_size": 5}, {"type": "Flatten"}]


def test_save_list_load_delete(tmp_path):
    store = ArchitectureStore(tmp_path / "saved")
    assert store.list() == []
    store.save("wide 5x5", SMALL)
    store.save("Another-one_v1.2", preset_layers("seed-3layer"))
    store.save("beta", SMALL)
    assert store.list() == ["Another-one_v1.2", "beta", "wide 5x5"]  # case-insensitive order
    loaded = store.load("wide 5x5")
    assert loaded == [architectures.normalize_layer(layer, n) for n, layer in enumerate(SMALL, start=1)]
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
    assert content["format"] == architectures.ARCHITECTURE_FORMAT and content["name"] == "mine"
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
