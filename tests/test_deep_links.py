"""A deep link as a fresh server's first request gives the whole app, as / does; an unexpected error
shows learners a notice, never a traceback, and the traceback goes to the server's log.

Each deep-link case needs a server that no session has visited yet: one server per page, on the tiny
synthetic data set, so that start-up stays a few seconds on a small machine.
"""

import os

import pytest
from app_server import AppServer
from helpers import ARTIFACTS, fail_on_logged_traceback, open_page

PAGE_TITLES = ["Home", "Architecture", "Train", "Compare", "Draw", "Teacher", "Projector"]
NARROW_LAYOUT_WIDTH = 736  # Streamlit's centred layout never gets wider than this, at any window size


def navigation_titles(page) -> list[str]:
    """The page titles in the sidebar's navigation, without their icons' ligature names."""
    links = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink").all_inner_texts()
    return [text.strip().splitlines()[-1] for text in links]


@pytest.mark.browser
@pytest.mark.parametrize("path, heading", [
    ("architecture", "Architecture"), ("train", "Train"), ("compare", "Compare"), ("draw", "Draw"),
    ("teacher", "Teacher"),
])
def test_deep_link_as_first_request_gives_the_whole_app(synthetic_app_server, page, path, heading):
    open_page(page, synthetic_app_server, path)  # no other request has reached this server
    page.get_by_role("heading", name=heading, exact=True, level=1).wait_for()
    assert page.title() == "MNIST Lab"
    assert navigation_titles(page) == PAGE_TITLES
    current = page.get_by_test_id("stSidebarNav").locator("[aria-current='page']")
    assert current.inner_text().strip().splitlines()[-1] == heading
    assert page.get_by_test_id("stMainBlockContainer").bounding_box()["width"] > NARROW_LAYOUT_WIDTH + 100
    assert page.url.rstrip("/").endswith(f"/{path}")
    # every element drawn (the frontend shows skeletons while it loads a widget's code)
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stSkeleton']\")")


@pytest.mark.browser
def test_unexpected_error_shows_a_notice_and_logs_the_traceback(page, tmp_path, request):
    """Served with the lab's config (the server runs in the lab's folder), a script that fails shows
    learners Streamlit's short notice, without the error's text, type or trace."""
    script = tmp_path / "fails.py"
    script.write_text('raise RuntimeError("details only for the log: /srv/secret/path")\n')
    ARTIFACTS.mkdir(exist_ok=True)
    server = AppServer(dict(os.environ), ARTIFACTS / f"{request.node.name}.server.log", str(script))
    try:
        open_page(page, server)
        notice = page.get_by_test_id("stException")
        notice.wait_for()
        notice_text = notice.inner_text()
        shown = page.get_by_test_id("stApp").inner_text()
    finally:
        server.stop()
    assert "This app has encountered an error" in notice_text
    for secret in ("/srv/secret/path", "RuntimeError", "Traceback", "fails.py"):
        assert secret not in shown
    log = server.log_path.read_text()
    assert "Traceback" in log and "RuntimeError: details only for the log: /srv/secret/path" in log
    with pytest.raises(pytest.fail.Exception, match="the server logged a traceback"):
        fail_on_logged_traceback(server.log_path)
