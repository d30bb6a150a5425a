"""Teacher page: locked without a key and behind a wrong one; unlocked, it shows the address with its QR
code, every run with its learner, and acts on them (pin, delete, more slots), pools handwriting and resets
the room. Headless (AppTest) and in Chromium."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import open_app_page, open_page, page_texts, wait_idle
from mnist_lab import experiments, training
from mnist_lab.architecture import sources
from mnist_lab.classroom import classroom
from mnist_lab.classroom.learners import Actor
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.presentation import format_duration
from mnist_lab.runs import MODEL_FILE, RunStatus, RunStore

KEY = "open sesame 42"
ADA = "a" * 16


@pytest.fixture
def room(isolated_storage, synthetic_npz, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    monkeypatch.setenv("MNIST_LAB_EXECUTOR", "thread")
    monkeypatch.setenv("MNIST_LAB_TEACHER_KEY", KEY)
    store = RunStore()
    runs = {}
    for name, accuracy, owner in (("ada's net", 0.97, ADA), ("prepared before class", 0.993, None)):
        meta = store.create(name, {"name": "tiny", "layers": []}, {"epochs": 1}, owner=owner,
                            owner_name="Ada" if owner else None)
        store.update(meta["id"], status="completed", test_accuracy=accuracy)
        (store.path(meta["id"]) / MODEL_FILE).write_bytes(b"model")
        runs[name] = meta["id"]
    return store, runs


def unlock(at, key):
    at.text_input(key="teacher_key_typed").input(key)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    return at


def test_without_a_teacher_key_the_page_says_it_is_off_without_naming_a_variable(isolated_storage, synthetic_npz,
                                                                                  monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    monkeypatch.delenv("MNIST_LAB_TEACHER_KEY", raising=False)
    at = open_app_page("pages/teacher.py")
    text = page_texts(at)
    assert "no teacher key" in text and "MNIST_LAB" not in text
    assert not [field for field in at.text_input if field.key == "teacher_key_typed"]


def test_a_wrong_key_shows_nothing_of_the_room(room):
    at = unlock(open_app_page("pages/teacher.py"), "guess")
    assert "That is not the teacher key." in [error.value for error in at.error]
    assert not at.dataframe and "Give learners this address" not in [header.value for header in at.subheader]
    assert at.session_state["teacher_unlocked"] is False


def test_the_teacher_sees_every_run_pins_one_deletes_one_and_resets_the_room(room):
    store, runs = room
    at = unlock(open_app_page("pages/teacher.py"), KEY)
    assert "Give learners this address" in [header.value for header in at.subheader]
    assert at.code[0].value == classroom.learner_address(8501)
    table = at.dataframe[0].value
    assert set(table["learner"]) == {"Ada", "(command line)"}
    assert set(table["run"]) == {"ada's net", "prepared before class"}
    at.selectbox(key="teacher_run").set_value(runs["prepared before class"]).run()
    at.button(key="teacher_pin").click().run()
    assert classroom.Room(store).pinned() == [runs["prepared before class"]]
    at.selectbox(key="teacher_run").set_value(runs["ada's net"]).run()
    at.button(key="teacher_delete").click().run()
    assert not at.exception
    assert [meta["id"] for meta in store.list()] == [runs["prepared before class"]]
    HandwritingSet(owner=ADA).add(np.zeros((28, 28), np.uint8), 5)
    at.run()
    [pool] = [button for button in at.button if button.label.startswith("Pool everyone")]
    pool.click().run()
    assert len(HandwritingSet.class_set()) == 1
    at.checkbox(key="teacher_reset_confirm").check().run()
    [reset] = [button for button in at.button if button.label == "Reset the room"]
    reset.click().run()
    assert not at.exception
    assert any("Archived 0 runs and 2 handwriting samples" in success.value for success in at.success)
    assert [meta["id"] for meta in store.list()] == [runs["prepared before class"]]  # pinned: it stays


def test_more_slots_from_the_teacher_view_reach_the_shared_manager(room):
    at = unlock(open_app_page("pages/teacher.py"), KEY)
    at.number_input(key="teacher_slots").set_value(3).run()
    assert not at.exception
    import app

    assert app.shared_manager().max_concurrent == 3


def pose_in_form(at, question, variable, values, train_size=300):
    at.text_input(key="experiment_question").input(question)
    at.selectbox(key="experiment_base").set_value("preset:quick-cnn")
    at.selectbox(key="experiment_variable").set_value(variable)
    at.text_input(key="experiment_values").input(values)
    at.number_input(key="experiment_train_size").set_value(train_size)
    [submit] = [button for button in at.button if button.label == "Open the experiment"]
    submit.click().run()
    assert not at.exception, at.exception
    return at


def test_the_teacher_poses_an_experiment_in_the_form_and_closes_it(room):
    store, _ = room
    at = pose_in_form(unlock(open_app_page("pages/teacher.py"), KEY), "Does batch size matter?", "batch_size",
                      "16, 32, 64")
    [posed] = experiments.ExperimentStore(store).list()
    assert posed["labels"] == ["batch size 16", "batch size 32", "batch size 64"]
    assert posed["base"]["architecture"]["name"] == "quick-cnn" and posed["base"]["settings"]["train_size"] == 300
    text = page_texts(at)
    assert "Does batch size matter?" in text and "No run has finished yet" in text
    at.button(key="experiment_close").click().run()
    assert experiments.ExperimentStore(store).open_experiment() is None
    assert [button for button in at.button if button.label == "Open the experiment"]


def test_the_form_asks_which_convolution_only_when_filters_vary_and_poses_with_it(room):
    store, _ = room
    at = unlock(open_app_page("pages/teacher.py"), KEY)
    assert not [field for field in at.number_input if field.label == "Convolution"]
    at.selectbox(key="experiment_variable").set_value("filters").run()
    [values] = [field for field in at.text_input if field.key == "experiment_values"]
    assert values.placeholder == experiments.VARIABLES["filters"].example
    at.number_input(key="experiment_layer").set_value(2)
    pose_in_form(at, "Wider second convolution?", "filters", "8, 64")
    [posed] = experiments.ExperimentStore(store).list()
    assert posed["layer"] == 2 and posed["labels"] == ["filters 8", "filters 64"]


def test_a_value_the_base_cannot_train_with_is_refused_in_the_form_by_name(room):
    store, _ = room
    at = pose_in_form(unlock(open_app_page("pages/teacher.py"), KEY), "Big batches?", "batch_size", "32, 4000")
    assert [error.value for error in at.error] == [
        "batch size 4000 cannot train: a batch of 4,000 is more than the 300 training images; use a smaller "
        "batch or more images."]
    assert experiments.ExperimentStore(store).list() == []


def test_the_form_estimates_a_run_of_each_value_and_the_class_before_opening(room, monkeypatch):
    from mnist_lab.training import manager as manager_module

    def known_speed(self, report, settings):  # this server's measured speed, as a calibrated server knows it
        return manager_module.EpochEstimate(10.0 * settings.batch_size / 16, 2.0, settings.epochs)

    monkeypatch.setattr(manager_module.TrainingManager, "estimate", known_speed)
    store, _ = room
    at = unlock(open_app_page("pages/teacher.py"), KEY)
    at.text_input(key="experiment_question").input("Does batch size matter?")
    at.selectbox(key="experiment_base").set_value("preset:quick-cnn")
    at.selectbox(key="experiment_variable").set_value("batch_size")
    at.text_input(key="experiment_values").input("16, 32")
    at.number_input(key="experiment_train_size").set_value(300)
    at.number_input(key="experiment_learners").set_value(4)
    [estimate] = [button for button in at.button if button.label == "Estimate the time"]
    estimate.click().run()
    assert not at.exception, at.exception
    [shown] = [box.value for box in at.info if "One run" in box.value]
    slots = app_manager_slots()
    whole_class = format_duration(experiments.lesson_estimate([12.0, 22.0], 4, slots).class_seconds)
    assert shown.startswith("One run: batch size 16 12 s, batch size 32 22 s. The whole class of 4, "
                            f"{slots} training at once: about {whole_class}")
    assert experiments.ExperimentStore(store).list() == []  # estimating opens nothing


def app_manager_slots() -> int:
    import app

    return app.shared_manager().max_concurrent


def test_the_teacher_shows_names_on_the_projector_and_reopens_a_closed_experiment(room):
    store, _ = room
    at = pose_in_form(unlock(open_app_page("pages/teacher.py"), KEY), "Does depth help?", "batch_size", "16, 32")
    [posed] = experiments.ExperimentStore(store).list()
    assert posed["show_names"] is False
    at.toggle(key="experiment_show_names").set_value(True).run()
    assert experiments.ExperimentStore(store).get(posed["id"])["show_names"] is True
    at.button(key="experiment_close").click().run()
    at.selectbox(key="experiment_past").set_value(posed["id"])
    at.button(key="experiment_reopen").click().run()
    assert not at.exception, at.exception
    assert experiments.ExperimentStore(store).open_experiment()["id"] == posed["id"]


@pytest.mark.browser
@pytest.mark.app_env(MNIST_LAB_TEACHER_KEY=KEY)
def test_teacher_page_in_browser(app_server, page):
    open_page(page, app_server, "teacher")
    page.get_by_label("Teacher key").fill("wrong")
    page.get_by_role("button", name="Unlock").click()
    page.get_by_text("That is not the teacher key.").wait_for()
    assert page.get_by_text("Give learners this address").count() == 0
    page.get_by_label("Teacher key").fill(KEY)
    page.get_by_role("button", name="Unlock").click()
    page.get_by_text("Give learners this address").wait_for()
    wait_idle(page)
    code = page.get_by_test_id("stImage").locator("img").first
    code.wait_for()
    page.wait_for_function("image => image.complete && image.naturalWidth > 100", arg=code.element_handle())
    page.get_by_text("No runs yet.").wait_for()
    page.reload()  # a refresh keeps the session's unlock only while the session lives: it asks again
    page.get_by_label("Teacher key").wait_for()


def test_while_an_experiment_is_open_each_learner_gets_a_part_and_trains_it_from_the_banner(room):
    store, _ = room
    posed = experiments.ExperimentStore(store).pose(
        "Does batch size matter?", sources.preset_architecture("quick-cnn"),
        {"epochs": 1, "train_size": 100}, "batch_size", "16,32", by=Actor.operator(), data_sizes=(600, 200))
    parts = []
    for learner in ("learner-one-key-0000000", "learner-two-key-0000000"):
        at = open_app_page("pages/home.py", learner_key=learner)
        banner = page_texts(at)
        assert "Class experiment: Does batch size matter?" in banner
        parts.append(next(label for label in posed["labels"] if f"your part: **{label}**" in banner))
        at.button(key="experiment_train_it").click().run()
        assert not at.exception, at.exception
        assert any("Your run is in" in success.value for success in at.success)
        [mine] = [meta for meta in store.list() if meta.get("owner") == at.session_state["learner_id"]]
        assert at.session_state["train_watched_run"] == mine["id"]  # the Train page shows it next
    assert parts == posed["labels"]  # two learners, two values
    tagged = [meta for meta in store.list() if meta.get("experiment")]
    assert sorted(meta["experiment"]["value"] for meta in tagged) == sorted(posed["labels"])
    assert all(training.wait_for_run(meta["id"], timeout=300) for meta in tagged)
    assert {store.get(meta["id"])["status"] for meta in tagged} == {RunStatus.COMPLETED}
