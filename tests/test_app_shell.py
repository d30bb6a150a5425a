"""The app shell (app.py): a page that Streamlit's folder mode runs alone is routed through the lab's
navigation, with its state defaults and the Keras clean-up switched off."""

import os
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, open_page, wait_for, wait_idle


def test_a_page_chosen_by_folder_mode_gets_the_whole_app(synthetic_npz):
    """AppTest starts every run in folder mode, as a fresh server does. A fresh interpreter, so that no
    earlier test has switched the clean-up off already."""
    script = textwrap.dedent(f"""
        from streamlit.runtime.scriptrunner import script_runner
        from streamlit.testing.v1 import AppTest

        original_clean_up = script_runner._clean_problem_modules
        folder_mode_runs = []
        folder_mode = script_runner._mpa_v1
        script_runner._mpa_v1 = lambda path: (folder_mode_runs.append(path), folder_mode(path))[1]

        at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=120)
        at.switch_page("pages/compare.py")
        at.run()
        assert not at.exception, at.exception
        assert folder_mode_runs, "the page was not chosen by folder mode"
        assert [title.value for title in at.title] == ["Compare"]
        assert at.session_state["architecture_name"] == "seed-3layer"  # app.py's defaults
        assert at.session_state["selected_run_ids"] == []
        assert script_runner._clean_problem_modules is not original_clean_up
        print("routed")
    """)
    env = {**os.environ, "MNIST_LAB_DATA": str(synthetic_npz)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "routed" in result.stdout



def test_every_session_knows_its_learner_and_a_new_browser_is_a_new_learner(isolated_storage, synthetic_npz,
                                                                           monkeypatch):
    from helpers import app_test

    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    first, second = app_test(), app_test()
    first.run()
    second.run()
    assert not first.exception and not second.exception
    assert first.session_state["learner_id"] != second.session_state["learner_id"]
    assert first.session_state["learner_name"] != second.session_state["learner_name"]
    assert any(first.session_state["learner_name"] in m.value for m in first.sidebar.markdown)
    first.sidebar.text_input(key="learner_new_name").input("<b>Ada</b>")
    first.sidebar.button(key="learner_rename").click().run()
    assert first.session_state["learner_name"] == "<b>Ada</b>"
    assert any("\\<b\\>Ada\\</b\\>" in m.value for m in first.sidebar.markdown)  # shown as typed
    second.sidebar.text_input(key="learner_new_name").input("<b>Ada</b>")
    second.sidebar.button(key="learner_rename").click().run()
    assert "already called" in second.sidebar.error[0].value and not second.exception


@pytest.mark.browser
def test_a_learner_keeps_their_name_across_refreshes_and_pages_but_not_across_browsers(app_server, browser):
    from helpers import open_page

    def sidebar_name(page):
        line = page.get_by_test_id("stSidebar").get_by_text("You are")
        line.wait_for()
        return line.inner_text().removeprefix("You are").strip()

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    open_page(page, app_server)
    name = sidebar_name(page)
    page.wait_for_function("name => document.cookie.includes(name + '=')", arg="mnist_lab_learner")
    page.reload()
    page.wait_for_selector("[data-testid='stApp']")
    assert sidebar_name(page) == name
    page.get_by_role("link", name="Compare").first.click()
    page.get_by_role("heading", name="Compare").first.wait_for()
    assert sidebar_name(page) == name
    page.get_by_role("button", name="Change your name").click()
    page.get_by_label("Your name", exact=True).fill("Grace H.")
    page.get_by_role("button", name="Use this name").click()
    page.get_by_test_id("stSidebar").get_by_text("You are Grace H.").wait_for()
    open_page(page, app_server, "train")
    assert sidebar_name(page) == "Grace H."
    other = browser.new_context(viewport={"width": 1280, "height": 720})
    other_page = other.new_page()
    open_page(other_page, app_server)
    assert sidebar_name(other_page) not in (name, "Grace H.")
    other.close()
    context.close()


@pytest.mark.browser
@pytest.mark.app_env(MNIST_LAB_EXECUTOR="thread", MNIST_LAB_MAX_CONCURRENT_RUNS="1", MNIST_LAB_HOLD_AT="starting")
def test_the_banner_and_the_pages_share_one_queue_in_browser(synthetic_app_server, page):
    """Streamlit runs app.py as __main__ while every page imports it as `app`: a resource cached in both
    would exist twice. Two training managers on one run folder keep two queues, each with its own slots
    (two runs trained at once on a one-slot server), and the second, when made, marks as interrupted a
    run the first has just created. Here the banner's Train it and the Train page's Train button each
    start a run while the first is held before it trains: on one queue, the second waits."""
    from mnist_lab import experiments
    from mnist_lab.architecture import sources
    from mnist_lab.classroom.learners import Actor
    from mnist_lab.runs import RunStatus, RunStore
    from mnist_lab.training import phases
    from mnist_lab.training.phases import HoldPoint

    store = RunStore()
    experiments.ExperimentStore(store).pose("Does batch size matter?", sources.preset_architecture("quick-cnn"),
                                            {"epochs": 1, "train_size": 100}, "batch_size", "16,32",
                                            by=Actor.operator(), data_sizes=(600, 200))
    open_page(page, synthetic_app_server)  # Home, from the script Streamlit runs as __main__
    page.locator(".st-key-experiment_banner").get_by_role("button", name="Train it").click()
    page.get_by_text("Your run is in").wait_for()
    [experiment_run] = store.list()
    wait_for(phases.held_marker(store.path(experiment_run["id"]), HoldPoint.STARTING).exists,
             "the experiment's run held at its start", timeout=120)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    page.get_by_role("heading", name="3. Train it and watch").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Waiting in the queue").first.wait_for(timeout=60_000)  # a second queue would start it
    [own_run] = [meta for meta in store.list() if meta["id"] != experiment_run["id"]]
    assert own_run["status"] == RunStatus.QUEUED
    assert not phases.held_marker(store.path(own_run["id"]), HoldPoint.STARTING).exists()
    assert store.get(experiment_run["id"])["status"] == RunStatus.RUNNING
