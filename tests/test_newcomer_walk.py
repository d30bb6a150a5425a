"""A learner's first hour, in a browser: Home → Architecture → Train (the quick demo, as offered) → Compare →
Draw, following only the links and buttons the pages offer, and checking at each step that the page shows what
the learner needs next; at the end the learner's own quick-demo model reads a drawn 3, 4 and 7."""

from __future__ import annotations

import re

import pytest
from helpers import open_page, wait_idle
from draw_support import CANVAS_DIGITS, clear_canvas, draw_on_canvas, wait_canvas_ready
from playwright.sync_api import expect

TRAINING = 420_000  # ms: the quick demo (10,000 images) on a loaded 2-core machine, start-up and test images included


@pytest.mark.browser
@pytest.mark.slow
def test_a_newcomer_walks_from_home_to_drawing_a_digit_with_their_own_run(real_mnist, app_server, page):
    # Home: what the lab is, and the path through it.
    open_page(page, app_server)
    for step in ("1. Architecture", "2. Train", "3. Compare", "4. Draw"):
        expect(page.get_by_role("link", name=step)).to_be_visible()
    page.get_by_role("link", name="1. Architecture").click()
    wait_idle(page)

    # Architecture: the notebook's 3-layer net is open, with its size.
    page.get_by_text("30,706", exact=False).first.wait_for()
    page.get_by_role("link", name="Train", exact=True).first.click()  # the sidebar: the next step
    wait_idle(page)

    # Train: the net that was open, the plans, the estimate, and where the queue is.
    page.get_by_role("heading", name="3. Train it and watch").wait_for()
    page.get_by_text("from Train to the test score").wait_for(timeout=TRAINING)  # the estimate, on a busy machine
    expect(page.get_by_text(re.compile(r"others wait in a queue"))).to_be_visible()
    page.get_by_role("button", name="Quick demo").click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"Quick demo: 10,000 images, 1 epoch, batch 32"))).to_be_visible()
    expect(page.get_by_test_id("stSlider").filter(has_text="Training images")).to_contain_text("10,000")
    page.get_by_text("from Train to the test score").wait_for()
    page.get_by_role("button", name="Train", exact=True).click()
    watching = page.get_by_text(re.compile(r"^Your run: "))
    watching.wait_for(timeout=60_000)
    run_name = watching.inner_text().removeprefix("Your run: ").split("\n")[0].strip()
    assert run_name.startswith("seed-3layer · 1 epoch")
    # .first: while the page reruns, the old and the new result may both be in the page for a moment.
    page.get_by_text("Done:").first.wait_for(timeout=TRAINING)
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"% of the 10,000 test images right")).first).to_be_visible()

    # Compare: the new run is in the table, next to the notebook's results.
    page.get_by_role("button", name="Compare it with other runs and the notebook").click()
    wait_idle(page)
    page.get_by_role("heading", name="All runs").wait_for()
    overlay = page.locator("[data-testid='stMultiSelect']").filter(has_text="Runs to overlay")
    expect(overlay.get_by_text(run_name, exact=False)).to_be_visible()  # after the learner's name
    page.get_by_text("What the numbers say").wait_for()
    wait_idle(page, TRAINING)  # the new run is tested on the test images in this script run

    # Draw: the learner's own quick-demo model reads a drawn 3, 4 and 7.
    page.get_by_role("link", name="Draw", exact=True).first.click()
    wait_idle(page)
    page.get_by_text("Draw a digit: there is no ink yet.").wait_for()
    expect(page.get_by_text(run_name, exact=False).first).to_be_visible()
    guess = page.locator("[data-testid='draw-guess']")
    wait_canvas_ready(page)
    for digit in ("3", "4", "7"):
        draw_on_canvas(page, CANVAS_DIGITS[digit])
        expect(guess).to_have_count(1, timeout=60_000)
        expect(guess.first).to_contain_text(f"{digit} ", timeout=60_000)
        wait_idle(page)
        clear_canvas(page)
