"""Time to first render of the home page in headless Chromium, from the start of `streamlit run`.

The baseline, measured in the same run, is a one-line Streamlit page served the same way: the ratio
says what the lab's own start-up (data, charts, imports) adds to Streamlit's. Two later times are
reported too: the first line that names the machine's cores (read without Keras, so it should come
with the first render) and the device details, which need Keras (imported after the first render).

    python benchmarks/first_render.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the app harness the browser tests use

from app_server import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402
from common import report  # noqa: E402

BASELINE_APP = 'import streamlit as st\nst.title("Hello")\n'
MACHINE_CORES = re.compile(r"\d+ (CPU )?cores?\b")  # "2 CPU cores" before Keras, "CPU only (2 cores)" after


def measure(browser, script: Path, ready_text: str, env: dict, log_path: Path, later: dict | None = None) -> dict:
    """Seconds from `streamlit run` to ready_text on screen, and to each of `later` ({key: text or
    pattern}, in the order they appear); the server's output goes to `log_path`."""
    page = browser.new_page()
    start = time.perf_counter()
    server = AppServer(env, log_path, str(script), start_timeout=120, stop_timeout=20, poll_seconds=0.05)
    try:
        page.goto(server.url)
        page.get_by_text(ready_text).first.wait_for(timeout=120_000)
        result = {"first_render_s": time.perf_counter() - start}
        for key, text in (later or {}).items():
            page.get_by_text(text).first.wait_for(timeout=120_000)
            result[key] = time.perf_counter() - start
        return result
    finally:
        page.close()
        server.stop()


def run(repeats: int = 3) -> dict:
    from playwright.sync_api import sync_playwright

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        baseline_script = Path(folder) / "hello.py"
        baseline_script.write_text(BASELINE_APP)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        home, baseline = [], []
        for _ in range(repeats):  # interleaved, so that drifting machine load hits both alike
            baseline.append(measure(browser, baseline_script, "Hello", env, Path(folder) / "hello.log"))
            home.append(measure(browser, ROOT / "app.py", "Images per digit", env, Path(folder) / "home.log",
                                later={"machine_facts_s": MACHINE_CORES, "device_details_s": "This machine trains on"}))
        browser.close()
    home_first = statistics.median(r["first_render_s"] for r in home)
    baseline_first = statistics.median(r["first_render_s"] for r in baseline)
    return {
        "repeats": repeats,
        "home_first_render_s": round(home_first, 3),
        "home_machine_facts_s": round(statistics.median(r["machine_facts_s"] for r in home), 3),
        "home_device_details_s": round(statistics.median(r["device_details_s"] for r in home), 3),
        "baseline_first_render_s": round(baseline_first, 3),
        "ratio": round(home_first / baseline_first, 3),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    result = run(args.repeats)
    report([f"home page first render   {result['home_first_render_s']:.2f} s (median of {args.repeats})",
            f"  machine's cores shown  {result['home_machine_facts_s']:.2f} s",
            f"  device details shown   {result['home_device_details_s']:.2f} s",
            f"bare Streamlit page      {result['baseline_first_render_s']:.2f} s",
            f"ratio home / bare        {result['ratio']:.2f}"], result, args.json, indent=2)
    return result


if __name__ == "__main__":
    main()
