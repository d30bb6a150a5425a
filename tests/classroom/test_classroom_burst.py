"""A class on one fresh server: twenty learners whose first request is the Train page's deep link press
Train at about the same time. Every run must complete (none fails), and the server keeps answering."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from helpers import ARTIFACTS, open_page, wait_idle

from mnist_lab.runs import RunStore

LEARNERS = 20


def health_latencies(server, stop: threading.Event, latencies: list):
    """Ask the health endpoint twice a second, as a load balancer would, and keep each answer's latency."""
    while not stop.wait(0.5):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=30) as response:
                latencies.append((time.perf_counter() - start, response.status))
        except OSError as error:
            latencies.append((time.perf_counter() - start, str(error)))


def wait_for(condition, what, timeout=900):
    """Poll the run store the server writes (there is no event to wait on from here) until `condition`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.5)


@pytest.mark.browser
@pytest.mark.timeout(2400)  # past pytest.ini's 600 s: twenty runs two at a time, each wait allowing 900 s
@pytest.mark.app_env(MNIST_LAB_MAX_QUEUED_RUNS="30", MNIST_LAB_MAX_CONCURRENT_RUNS="2")
def test_twenty_learners_pressing_train_from_deep_links_all_get_a_finished_run(synthetic_app_server, browser,
                                                                              isolated_storage):
    stop, latencies = threading.Event(), []
    watcher = threading.Thread(target=health_latencies, args=(synthetic_app_server, stop, latencies), daemon=True)
    watcher.start()
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(LEARNERS)]
    try:
        pages = [context.new_page() for context in contexts]
        for page in pages:
            page.set_default_timeout(120_000)
            open_page(page, synthetic_app_server, "train")  # each one's first request is the deep link
        for page in pages:
            page.get_by_role("button", name="Quick demo").click()
            wait_idle(page)
        for number, page in enumerate(pages):
            try:
                page.get_by_role("button", name="Train", exact=True).click()
            except Exception as error:  # say what the learner's page showed instead, in CI's output too
                page.screenshot(path=str(ARTIFACTS / f"classroom-burst-learner-{number}.png"), full_page=True)
                state = page.get_by_test_id("stApp").get_attribute("data-test-script-state")
                raise AssertionError(f"learner {number} has no Train button (script {state}); the page shows:\n"
                                     f"{page.get_by_test_id('stApp').inner_text()[:3000]}") from error
        store = RunStore(isolated_storage / "runs")
        wait_for(lambda: len(store.list()) == LEARNERS, "every press of Train stored a run")
        pages[-1].screenshot(path=str(ARTIFACTS / "classroom-burst-last-learner.png"), full_page=True)
        for context in contexts:  # the learners go on to other things; their runs train on
            context.close()
        contexts = []
        wait_for(lambda: all(meta["status"] not in ("queued", "running") for meta in store.list()),
                 "every run ended")
        runs = store.list()
        assert len(runs) == LEARNERS
        assert [meta["status"] for meta in runs] == ["completed"] * LEARNERS, [meta["message"] for meta in runs]
    finally:
        stop.set()
        watcher.join()
        for context in contexts:
            context.close()
    assert latencies and all(status == 200 for _, status in latencies), latencies
    ordered = sorted(seconds for seconds, _ in latencies)
    (ARTIFACTS / "classroom-burst-health.txt").write_text(
        f"{len(ordered)} health checks: median {ordered[len(ordered) // 2]:.3f} s, "
        f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.3f} s, worst {ordered[-1]:.3f} s\n")
