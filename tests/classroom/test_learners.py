"""Learners without accounts: keys, public ids, friendly names, the learner book and the teacher's key."""

from __future__ import annotations

import threading

import pytest

from mnist_lab.classroom import learners
from mnist_lab.errors import LabError


def test_a_public_id_is_stable_for_a_key_and_reveals_nothing_of_it():
    key = learners.new_key()
    assert learners.learner_id(key) == learners.learner_id(key)
    assert learners.learner_id(key) != learners.learner_id(learners.new_key())
    assert key not in learners.learner_id(key) and len(key) >= 24
    assert learners.is_key(key)
    assert not any(learners.is_key(text) for text in (None, "", "short", "x" * 65, "<script>alert(1)</script>xxxxxx"))


def test_default_names_are_friendly_and_avoid_names_taken():
    public_id = learners.learner_id("a key")
    first = learners.default_name(public_id)
    adjective, animal = first.split(" ")
    assert adjective in learners.ADJECTIVES and animal in learners.ANIMALS
    taken = {first}
    for _ in range(40):
        name = learners.default_name(public_id, taken=taken)
        assert name not in taken
        taken.add(name)


@pytest.mark.parametrize("typed, expected", [("  Ada   Lovelace ", "Ada Lovelace"), ("Zoë\u0007", "Zoë")])
def test_names_are_tidied(typed, expected):
    assert learners.clean_name(typed) == expected


@pytest.mark.parametrize("typed, message", [("   ", "at least one"), ("x" * 41, "keep a name to 40"), (7, "text")])
def test_names_that_cannot_be_names_say_what_to_change(typed, message):
    with pytest.raises(LabError, match=message):
        learners.clean_name(typed)


def test_the_book_gives_each_learner_a_different_name_and_keeps_renames(tmp_path):
    book = learners.LearnerBook(tmp_path / "learners.json")
    ids = [learners.learner_id(learners.new_key()) for _ in range(30)]
    names = [book.name(public_id) for public_id in ids]
    assert len(set(names)) == 30
    assert learners.LearnerBook(tmp_path / "learners.json").name(ids[0]) == names[0]  # kept on disk
    assert book.rename(ids[0], " Ada ") == "Ada" and book.name(ids[0]) == "Ada"
    with pytest.raises(LabError, match="already called 'Ada'"):
        book.rename(ids[1], "Ada")


def test_the_book_survives_a_damaged_file_and_many_threads(tmp_path):
    path = tmp_path / "learners.json"
    path.write_text("[not json")
    book = learners.LearnerBook(path)
    ids = [learners.learner_id(str(number)) for number in range(20)]
    threads = [threading.Thread(target=book.name, args=(public_id,)) for public_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(book.names()[public_id] for public_id in ids)) == 20


def test_only_the_owner_or_the_teacher_may_change_a_run():
    run = {"owner": "abc", "owner_name": "Curious Otter"}
    assert learners.Actor("abc").may_change(run)
    assert learners.Actor(None, teacher=True).may_change(run)
    assert learners.Actor.operator().may_change(run)
    with pytest.raises(learners.NotYours, match="belongs to Curious Otter: only they or the teacher can stop it"):
        learners.Actor("xyz").check_may_change(run, "stop")
    assert not learners.Actor(None).may_change({"owner": None})  # nobody's run is not everybody's


def test_the_teacher_key_must_be_set_and_match(monkeypatch):
    assert not learners.is_teacher_key("", "")
    assert not learners.is_teacher_key("guess", "secret")
    assert learners.is_teacher_key("secret", "secret")
    monkeypatch.delenv(learners.TEACHER_KEY_VARIABLE, raising=False)
    assert learners.configured_teacher_key() is None
    assert learners.configured_teacher_key("from secrets") == "from secrets"
    monkeypatch.setenv(learners.TEACHER_KEY_VARIABLE, "from the environment")
    assert learners.configured_teacher_key("from secrets") == "from the environment"


def test_runs_of_nobody_are_everybodys_only_where_there_is_no_teacher():
    nobodys, adas = {"owner": None}, {"owner": "abc"}
    laptop = learners.Actor("xyz", unowned=True)
    assert laptop.may_change(nobodys) and not laptop.may_change(adas)
    assert not learners.Actor("xyz").may_change(nobodys)
