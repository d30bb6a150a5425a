"""Projector page: the class experiment on the room's screen, headless (AppTest) and in Chromium, where a
teacher poses an experiment while the projector is up, three learners each train the value their banner
hands them, and the projector, never reloaded, shows one dot per value and what the class found."""

from __future__ import annotations

import csv

import pytest

from helpers import ARTIFACTS, open_app_page, open_page, page_texts
from mnist_lab import experiments
from mnist_lab.views.markdown import plain

KEY = "projector key 7"


def chart_tables(at) -> list:
    """Per chart on the page, in page order, its data set of runs: the one with a run column (charts carry
    their data as Arrow)."""
    import pyarrow

    tables = []
    for chart in at.get("vega_lite_chart"):
        found = [pyarrow.ipc.open_stream(dataset.data.data).read_pandas() for dataset in chart.proto.datasets]
        tables.append(next(table for table in found if "run" in table.columns))
    return tables


def test_without_an_experiment_the_projector_says_where_one_comes_from(synthetic_npz, monkeypatch):
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    at = open_app_page("pages/projector.py")
    assert "The teacher poses one on the Teacher page" in page_texts(at)


def test_the_projector_shows_the_question_both_charts_the_counts_and_the_finding(class_runs):
    class_experiments, experiment = class_runs
    at = open_app_page("pages/projector.py")
    assert [title.value for title in at.title] == ["Does batch size matter?"]
    text = page_texts(at)
    summaries = experiments.summarize(experiment, class_experiments.runs_of(experiment))
    assert plain(experiments.findings(summaries)) in text
    assert "Class experiment:" not in text  # the room's screen shows no learner's banner
    curves, results = chart_tables(at)
    assert set(curves["value"]) == set(experiment["labels"][:2])  # the waiting run has no curve yet
    assert sorted(results["learner"]) == ["learner 1", "learner 2"]  # one dot per finished run, names hidden
    [counts] = at.table
    assert counts.value["done"].tolist() == [2, 0, 0] and counts.value["waiting"].tolist() == [0, 0, 1]
    assert [button.label for button in at.get("download_button")] == ["Download the runs (CSV)",
                                                                     "Download the chart (PNG)"]


def test_a_deep_link_opens_a_past_experiment_and_names_stay_hidden(class_runs, monkeypatch):
    from mnist_lab.classroom.learners import Actor

    class_experiments, experiment = class_runs
    class_experiments.close(experiment["id"], by=Actor.operator())
    at = open_app_page("pages/projector.py")
    assert at.session_state["projector_experiment"] == experiment["id"]
    assert "final results" in page_texts(at)
    assert "Ada" not in chart_tables(at)[1]["learner"].tolist()


def test_an_experiment_opened_while_the_screen_is_up_takes_it_over(class_runs):
    from mnist_lab.architecture import sources
    from mnist_lab.classroom.learners import Actor

    class_experiments, first = class_runs
    at = open_app_page("pages/projector.py")
    at.selectbox(key="projector_experiment").set_value(first["id"]).run()
    at.run()  # the screen stays on its experiment while nothing new opens
    assert at.session_state["projector_experiment"] == first["id"]
    class_experiments.close(first["id"], by=Actor.operator())
    second = class_experiments.pose("Does the learning rate matter?", sources.preset_architecture("quick-cnn"),
                                    {"epochs": 1, "train_size": 300}, "learning_rate", "0.001,0.01",
                                    by=Actor.operator(), data_sizes=(600, 200))
    at.run()
    assert at.session_state["projector_experiment"] == second["id"]
    assert [title.value for title in at.title] == ["Does the learning rate matter?"]


@pytest.mark.browser
@pytest.mark.app_env(MNIST_LAB_TEACHER_KEY=KEY, MNIST_LAB_EXECUTOR="thread")
def test_a_class_experiment_from_the_teachers_form_to_the_projector_in_browser(synthetic_app_server, browser, page):
    projector = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    open_page(projector, synthetic_app_server, "projector")  # up on the room's screen before the lesson
    projector.get_by_text("No class experiment yet").wait_for()

    teacher = page
    open_page(teacher, synthetic_app_server, "teacher")
    teacher.get_by_label("Teacher key").fill(KEY)
    teacher.get_by_role("button", name="Unlock").click()
    teacher.get_by_text("A class experiment").wait_for()
    teacher.get_by_label("The question").fill("Does batch size matter?")
    teacher.get_by_role("textbox", name="values, separated by commas").fill("16, 32, 64")
    teacher.get_by_label("Training images").fill("100")
    teacher.get_by_role("button", name="Open the experiment").click()
    teacher.get_by_text("Open: Does batch size matter?").wait_for()
    projector.get_by_role("heading", name="Does batch size matter?").wait_for()  # no reload: it follows

    parts = []
    for where in ("train", "", ""):  # three learners, each in a browser of their own; the first on Train
        learner = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        open_page(learner, synthetic_app_server, where)
        banner = learner.locator(".st-key-experiment_banner")
        banner.get_by_text("your part:").wait_for()
        parts.append(banner.locator("strong").nth(1).inner_text())
        banner.get_by_role("button", name="Train it").click()
        learner.get_by_text("Your run is in").wait_for()
        if where == "train":  # Train it points the Train page at the new run
            learner.get_by_text(f"Your run: {parts[-1]}").wait_for(timeout=60_000)
        learner.context.close()
    assert sorted(parts) == ["batch size 16", "batch size 32", "batch size 64"]  # round robin: one each

    projector.wait_for_function(  # the three runs train meanwhile; the page refreshes on its own
        "() => document.body.innerText.includes('every value has a single finished run')"
        " && !document.body.innerText.includes('No finished run yet')", timeout=240_000)
    assert "Ada" not in projector.inner_text("body")
    with projector.expect_download() as download:
        projector.get_by_role("button", name="Download the runs (CSV)").click()
    rows = list(csv.DictReader(open(download.value.path())))
    assert sorted(row["value"] for row in rows) == sorted(parts)
    assert all(float(row["test_accuracy"]) > 0 for row in rows)  # three dots, one per value
    assert sorted(row["learner"] for row in rows) == ["learner 1", "learner 2", "learner 3"]
    projector.locator("[data-testid='stMain']").evaluate("main => main.scrollTo(0, 0)")
    projector.screenshot(path=str(ARTIFACTS / "projector-three-values.png"))  # what the beamer shows first
    projector.context.close()
