"""A class on one server for a lesson's length: learners open every page in turn, start quick runs, watch the
Train page and draw, while the benchmark measures what the class would notice.

Most learners are clients that speak Streamlit's own websocket protocol (/_stcore/stream, the protobuf
BackMsg/ForwardMsg a browser exchanges), each with its own learner cookie: the server runs every page script,
fragment and button press for them exactly as for a browser, but nothing is rendered on this machine, so a
2-core machine can carry thirty of them. A few learners (`--browsers`) are real Chromium contexts that click
and draw on the canvas with the mouse.

Reported: /_stcore/health latency (median, p99, worst; asked from a process of its own), the server's memory
over the lesson (its main process and its whole process tree, training workers included), the seconds per epoch
of the learners' quick runs against the same run trained on the idle server before the class arrived (after it,
with `--burst`), and runs lost (pressed Train but did not end completed or stopped). Each learner presses
Quick demo, sets the training images to `--train-size` and presses Train `--runs-per-learner` times.

    python benchmarks/classroom.py [--learners 30] [--minutes 20] [--browsers 2] [--json out.json]
    python benchmarks/classroom.py --quick      # 3 learners, 1 minute: checks that the benchmark works
    python benchmarks/classroom.py --burst --minutes 2 --browsers 0   # 30 learners press Train on a fresh server
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the app harness the browser tests use

from app_server import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402

from mnist_lab.classroom import learners as lab_learners  # noqa: E402
from mnist_lab.runs import RunStore  # noqa: E402

PAGES = ("Home", "Architecture", "Train", "Compare", "Draw")
BROWSER_ORDER = ("Train", "Draw", "Compare", "Home", "Architecture")  # drawing early, once a run may be done
PAGE_PATHS = {"Home": "", "Architecture": "architecture", "Train": "train", "Compare": "compare", "Draw": "draw",
              "Projector": "projector"}
KEPT = ("completed", "stopped")  # a run that ended either way keeps its record and model: not lost
SEVEN = [(75, 55), (205, 55), (115, 238)]  # one stroke in canvas pixels, as the browser tests draw it


class Server(AppServer):
    """The app with its own run store, architectures and handwriting under `folder`, as the browser tests start it."""

    def __init__(self, folder: Path, extra_env: dict | None = None):
        self.runs = folder / "runs"
        env = {**os.environ, "MNIST_LAB_RUNS": str(self.runs), "MNIST_LAB_ARCHITECTURES": str(folder / "architectures"),
               "MNIST_LAB_HANDWRITING": str(folder / "handwriting"), **(extra_env or {})}
        super().__init__(env, folder / "server.log", start_timeout=120, stop_timeout=20)


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (training workers, their helpers), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def probe_health(url: str, every: float, results, stop) -> None:
    """Ask /_stcore/health every `every` seconds until `stop` is set; send back (time, seconds, answered 200)
    for each check. Run in a process of its own (Sampler)."""
    checks = []
    while not stop.wait(every):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as response:
                ok = response.status == 200
        except OSError:
            ok = False
        checks.append((time.monotonic(), time.perf_counter() - start, ok))
    results.send(checks)


class Sampler:
    """Health latency every `health_every` seconds and the server's memory every `memory_every` seconds,
    from start() until stop().

    The health checks run in a process of their own: in this one they would wait on the interpreter lock
    behind thirty learners' threads parsing the server's messages, and report this process's stalls as
    the server's (up to 2.2 s where the server's own event loop never stalled for 0.8 s)."""

    def __init__(self, server: Server, health_every: float = 0.5, memory_every: float = 5.0):
        self.server, self.health_every, self.memory_every = server, health_every, memory_every
        self.health: list[tuple[float, float, bool]] = []  # (time, seconds, answered 200)
        self.memory: list[tuple[float, int, int]] = []  # (time, main process bytes, process tree bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._memory, daemon=True)
        context = multiprocessing.get_context("spawn")
        self._results, sending = context.Pipe(duplex=False)
        self._stop_probe = context.Event()
        self._probe = context.Process(target=probe_health, daemon=True,
                                      args=(server.url, health_every, sending, self._stop_probe))

    def start(self):
        self._probe.start()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._stop_probe.set()
        self.health = self._results.recv()  # monotonic time is the machine's: it matches this process's
        self._probe.join()
        self._thread.join()

    def _memory(self):
        while True:
            pid = self.server.process.pid
            self.memory.append((time.monotonic(), _rss_bytes(pid), sum(map(_rss_bytes, process_tree(pid)))))
            if self._stop.wait(self.memory_every):
                return


class StreamSession:
    """One learner's browser tab, as the websocket messages it exchanges: script runs of whole pages, the
    fragments' timed reruns the server asks for (auto_rerun), and button presses (trigger widget states)."""

    def __init__(self, url: str, key: str, timeout: float):
        from websockets.sync.client import connect

        self.timeout = timeout
        self.ws = connect(url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"],
                          additional_headers={"Cookie": f"{lab_learners.COOKIE}={key}"}, max_size=None,
                          open_timeout=timeout)
        self.pages: dict[str, str] = {}  # page title -> page script hash, from the navigation message
        self.page_hash = ""
        self.query = ""
        self.widgets: dict[str, str] = {}  # label -> widget id, of the latest whole-page run
        self.fragments: dict[str, list[float]] = {}  # fragment id -> [interval, next due time]
        self.in_flight = 0
        self.fragment_seconds: list[float] = []
        self.fragment_ended: list[float] = []  # when each of those reruns ended (monotonic)
        self.errors = 0  # exceptions shown on a page
        self.exceptions: list[str] = []  # what the first few of them said
        self.alerts: list[tuple[float, str]] = []  # (when it arrived, its text) of each message box shown

    def close(self):
        self.ws.close()

    def _send(self, page_name: str = "", widgets=(), fragment_id: str = "", auto: bool = False):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        state.page_name = page_name
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.widget_states.widgets.extend(widgets)
        self.ws.send(message.SerializeToString())
        self.in_flight += 1

    def _receive(self, timeout: float):
        """Handle one ForwardMsg; its ScriptFinishedStatus if it ended a script run, else None."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = ForwardMsg()
        message.ParseFromString(self.ws.recv(timeout=timeout))
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = message.new_session.page_script_hash
        elif kind == "navigation":
            self.pages = {page.page_name: page.page_script_hash for page in message.navigation.app_pages}
            self.page_hash = message.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            interval = message.auto_rerun.interval
            self.fragments[message.auto_rerun.fragment_id] = [interval, time.monotonic() + interval]
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                self.fragments.pop(fragment_id, None)
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            element_type = element.WhichOneof("type")
            if element_type == "exception":
                self.errors += 1
                if len(self.exceptions) < 5:
                    self.exceptions.append(f"{element.exception.type}: {element.exception.message}"[:500])
            elif element_type == "alert":  # a browser draws it when it arrives, before the run ends
                self.alerts.append((time.monotonic(), element.alert.body))
            elif element_type in ("button", "slider", "selectbox"):
                widget = getattr(element, element_type)
                self.widgets[widget.label] = widget.id
        elif kind == "script_finished":
            self.in_flight = max(0, self.in_flight - 1)
            return message.script_finished
        return None

    def run_page(self, page: str | None = None, widgets=(), query: str = "") -> float:
        """A whole-page script run (another page, with `query` as its address's query string, or this one
        after a press); seconds until it finished."""
        start = time.monotonic()
        if page is not None:
            self.query = query
            if page in self.pages:
                self.page_hash = self.pages[page]
                self._send(widgets=widgets)
            else:  # the first request: the page's address, as a deep link
                self._send(page_name=PAGE_PATHS[page], widgets=widgets)
        else:
            self._send(widgets=widgets)
        self.fragments.clear()
        self.widgets = {}
        while True:
            status = self._receive(self.timeout)
            # 0 and 1: a whole-page run ended (2: ended early for a newer run; 3: a fragment's run). A fragment
            # rerun asked for while the page reran may never be answered, so pending requests end here too.
            if status in (0, 1):
                self.in_flight = 0
                return time.monotonic() - start

    def press(self, label: str, value=None) -> float:
        """Press a button (value None) or set a slider to the option shown as `value`, then wait for the rerun."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if label not in self.widgets:
            raise LookupError(f"no widget labelled {label!r} on this page")
        state = WidgetState(id=self.widgets[label])
        if value is None:
            state.trigger_value = True
        else:
            state.string_array_value.data.append(value)
        return self.run_page(widgets=[state])

    def stay(self, seconds: float):
        """Keep the tab open for `seconds`: rerun each fragment when the server's timer for it is due."""
        end = time.monotonic() + seconds
        sent_at = None
        while (now := time.monotonic()) < end:
            due = [fragment_id for fragment_id, (_, next_due) in self.fragments.items() if next_due <= now]
            if due and self.in_flight == 0:
                for fragment_id in due:
                    interval = self.fragments[fragment_id][0]
                    self.fragments[fragment_id][1] = now + interval
                    self._send(fragment_id=fragment_id, auto=True)
                sent_at = now
            waits = [next_due - now for _, next_due in self.fragments.values()]
            try:
                status = self._receive(max(0.05, min([end - now] + waits)))
            except TimeoutError:
                continue
            if status is not None and self.in_flight == 0 and sent_at is not None:
                self.fragment_ended.append(time.monotonic())
                self.fragment_seconds.append(self.fragment_ended[-1] - sent_at)
                sent_at = None


class Learner:
    """What every simulated learner does and what they saw: page after page, a quick run or two, watching."""

    def __init__(self, index: int, plan: dict):
        self.index, self.plan = index, plan
        self.key = f"classroom{index:02d}-{secrets.token_urlsafe(12)}"
        self.page_seconds: dict[str, list[float]] = {page: [] for page in PAGES}
        self.trainer = index < plan["trainers"]
        self.presses = 0
        self.problems: list[str] = []


def watched_query(store: RunStore) -> str:
    """The address a teacher shares to watch the class's run now training (or the next one waiting)."""
    active = [meta for meta in store.list() if meta["status"] in ("running", "queued")]
    active.sort(key=lambda meta: (meta["status"] != "running", meta.get("created") or ""))
    return f"run={active[0]['id']}" if active else ""


class StreamLearner(Learner):
    """A learner over the websocket: reconnects (as a browser would) when its connection drops."""

    def run(self, url: str, stop_at: float, store: RunStore):
        self.fragment_seconds: list[float] = []
        self.page_errors = 0
        rng = random.Random(self.index)
        first = PAGES.index(self.plan["first_page"]) if self.plan["first_page"] else rng.randrange(len(PAGES))
        order = PAGES[first:] + PAGES
        session = None
        step = 0
        while time.monotonic() < stop_at:
            page = order[step % len(order)] if step < len(order) else PAGES[step % len(PAGES)]
            step += 1
            try:
                if session is None:
                    session = StreamSession(url, self.key, self.plan["timeout"])
                trains = self.trainer and self.presses < self.plan["runs_per_learner"]
                query = watched_query(store) if page == "Train" and not trains else ""
                self.page_seconds[page].append(session.run_page(page, query=query))
                if page == "Train" and trains:
                    session.press("Quick demo")
                    session.press("Training images", f"{self.plan['train_size']:,}")
                    session.press("Train")
                    self.presses += 1
                dwell = self.plan["watch_s"] if page == "Train" else self.plan["dwell_s"]
                session.stay(min(dwell * rng.uniform(0.7, 1.3), max(0.0, stop_at - time.monotonic())))
            except Exception as error:  # a dropped connection or a page that never finished: note it, reconnect
                self.problems.append(f"{page}: {type(error).__name__}: {error}"[:300])
                if session is not None:
                    self._leave(session)
                session = None
        if session is not None:
            self._leave(session)

    def _leave(self, session: StreamSession):
        self.fragment_seconds += session.fragment_seconds
        self.page_errors += session.errors
        try:
            session.close()
        except Exception:  # a connection that already dropped has nothing left to close
            pass


def browser_learners(url: str, learners: list[Learner], stop_at: float):
    """Real Chromium contexts, in one thread (Playwright's sync API is not thread-safe), taking turns."""
    from playwright.sync_api import sync_playwright

    def wait_idle(page):
        page.wait_for_function(
            "() => { const app = document.querySelector(\"[data-testid='stApp']\");"
            " return app && app.getAttribute('data-test-script-state') !== 'running'; }", timeout=120_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        tabs = []
        for learner in learners:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": lab_learners.COOKIE, "value": learner.key, "url": url}])
            page = context.new_page()
            page.set_default_timeout(120_000)
            tabs.append((learner, context, page))
        step = 0
        while time.monotonic() < stop_at:
            for learner, _, page in tabs:
                name = BROWSER_ORDER[(step + learner.index) % len(BROWSER_ORDER)]
                start = time.monotonic()
                try:
                    page.goto(f"{url}/{PAGE_PATHS[name]}")
                    page.wait_for_selector("[data-testid='stApp']")
                    wait_idle(page)
                    learner.page_seconds[name].append(time.monotonic() - start)
                    if name == "Train" and learner.trainer and learner.presses < learner.plan["runs_per_learner"]:
                        page.get_by_role("button", name="Quick demo").click()
                        wait_idle(page)
                        slider = page.get_by_test_id("stSlider").filter(has_text="Training images").get_by_role(
                            "slider")
                        slider.focus()
                        slider.press("Home")  # the smallest size, then up to the one asked for
                        wait_idle(page)
                        while f"{learner.plan['train_size']:,}" not in page.get_by_test_id("stSlider").filter(
                                has_text="Training images").inner_text():
                            slider.press("ArrowRight")
                            wait_idle(page)
                        page.get_by_role("button", name="Train", exact=True).click()
                        wait_idle(page)
                        learner.presses += 1
                    elif name == "Draw":
                        draw_seven(page)
                        wait_idle(page)
                except Exception as error:
                    learner.problems.append(f"{name} (browser): {type(error).__name__}: {error}"[:300])
            step += 1
            pause_until = time.monotonic() + learners[0].plan["dwell_s"]
            while time.monotonic() < min(pause_until, stop_at):
                tabs[0][2].wait_for_timeout(500)  # the tabs stay open, their fragments polling, meanwhile
        for _, context, _ in tabs:
            context.close()
        browser.close()


def draw_seven(page):
    """Draw a 7 on the canvas with the mouse, once the canvas has painted its black background."""
    lower = page.locator("canvas.lower-canvas").last.element_handle()
    page.wait_for_function("canvas => { const pixel = canvas.getContext('2d').getImageData(2, 2, 1, 1).data;"
                           " return pixel[3] === 255 && pixel[0] === 0; }", arg=lower)
    canvas = page.locator("canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + SEVEN[0][0], box["y"] + SEVEN[0][1])
    page.mouse.down()
    for x, y in SEVEN[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
    page.mouse.up()


def wait_for_runs(store: RunStore, count: int, timeout: float) -> list[dict]:
    """Poll the run store the server writes until `count` runs exist and none is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        runs = store.list()
        if (len(runs) >= count and all(meta["status"] not in ("queued", "running") for meta in runs)) \
                or time.monotonic() > deadline:
            return runs
        time.sleep(1)  # another process writes the store: nothing to wait on but its files


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def reference_run(server: Server, plan: dict) -> dict:
    """The learners' quick run, pressed by one client on the idle server, which then leaves: nobody watches."""
    store = RunStore(server.runs)
    before = {meta["id"] for meta in store.list()}
    session = StreamSession(server.url, f"reference-{secrets.token_urlsafe(12)}", plan["timeout"])
    session.run_page("Train")
    session.press("Quick demo")
    session.press("Training images", f"{plan['train_size']:,}")
    session.press("Train")
    session.close()
    runs = [meta for meta in wait_for_runs(store, len(before) + 1, plan["drain_s"]) if meta["id"] not in before]
    if len(runs) != 1 or runs[0]["status"] != "completed":
        raise RuntimeError(f"the reference run did not complete: {[(m['status'], m.get('message')) for m in runs]}")
    return runs[0]


def run(learners: int = 30, minutes: float = 20, browsers: int = 2, plan: dict | None = None) -> dict:
    plan = {"train_size": 1_000, "runs_per_learner": 1, "trainers": learners // 3, "watch_s": 60.0, "dwell_s": 20.0, "ramp_s": 60.0,
            "timeout": 300.0, "drain_s": 900.0, "first_page": None, "reference_after": False, **(plan or {})}
    browsers = min(browsers, learners)
    with tempfile.TemporaryDirectory(prefix="classroom-") as folder:
        server = Server(Path(folder), {"MNIST_LAB_MAX_QUEUED_RUNS": str(max(100, 2 * learners))})
        try:
            return _lesson(server, learners, minutes, browsers, plan)
        finally:
            server.stop()
            log = server.log_path.read_text(errors="replace")
            tracebacks = log.count("Traceback")
            if tracebacks:
                print(f"the server logged {tracebacks} traceback(s); the last:\n{log[log.rindex('Traceback'):][:3000]}",
                      file=sys.stderr)


def _lesson(server: Server, count: int, minutes: float, browsers: int, plan: dict) -> dict:
    store = RunStore(server.runs)
    reference = None if plan["reference_after"] else reference_run(server, plan)
    class_learners: list[Learner] = ([Learner(index, plan) for index in range(browsers)]
                                     + [StreamLearner(index, plan) for index in range(browsers, count)])
    sampler = Sampler(server)
    sampler.start()
    started = time.monotonic()
    stop_at = started + 60 * minutes
    threads = []
    for position, learner in enumerate(class_learners[browsers:]):
        thread = threading.Thread(target=learner.run, args=(server.url, stop_at, store), daemon=True)
        threads.append(thread)
        thread.start()
        time.sleep(plan["ramp_s"] / max(1, count))  # learners arrive over `ramp_s`, not all at the same instant
    if browsers:
        threads.append(threading.Thread(target=browser_learners, args=(server.url, class_learners[:browsers], stop_at),
                                        daemon=True))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at - time.monotonic() + plan["timeout"] + 60))
    ended = time.monotonic()
    presses = sum(learner.presses for learner in class_learners)
    runs = wait_for_runs(store, presses + (reference is not None), plan["drain_s"])
    drained = time.monotonic()
    sampler.stop()
    if reference is None:  # the class met a fresh server: the same run on the idle server comes after it
        reference = reference_run(server, plan)
        runs.append(reference)
    return summarise(reference, runs, class_learners, sampler, started, ended, drained, plan, minutes)


def summarise(reference, runs, class_learners, sampler, started, ended, drained, plan, minutes) -> dict:
    class_runs = [meta for meta in runs if meta["id"] != reference["id"]]
    presses = sum(learner.presses for learner in class_learners)
    statuses: dict[str, int] = {}
    for meta in class_runs:
        status = str(getattr(meta["status"], "value", meta["status"]))
        statuses[status] = statuses.get(status, 0) + 1
    lost = sum(1 for meta in class_runs if meta["status"] not in KEPT) + max(0, presses - len(class_runs))
    loaded = [meta["epoch_seconds"][0] for meta in class_runs
              if meta["status"] == "completed" and meta.get("epoch_seconds") and meta.get("finished")
              and _ended_during_class(meta, started, ended)]
    reference_epoch = reference["epoch_seconds"][0]

    in_class = [(t, s, ok) for t, s, ok in sampler.health if t <= ended]
    seconds = [s for _, s, _ in in_class]
    half = started + (ended - started) / 2
    second_half = [(main, tree) for t, main, tree in sampler.memory if half <= t <= ended]
    page_seconds = {page: [s for learner in class_learners for s in learner.page_seconds[page]] for page in PAGES}
    fragments = [s for learner in class_learners for s in getattr(learner, "fragment_seconds", [])]

    def spread(values):
        return round((max(values) - min(values)) / min(values), 4) if values and min(values) else None

    return {
        "learners": len(class_learners),
        "browser_learners": sum(1 for learner in class_learners if not isinstance(learner, StreamLearner)),
        "minutes": minutes,
        "cores": os.cpu_count(),
        "plan": plan,
        "health": {"checks": len(seconds), "failed": sum(1 for _, _, ok in in_class if not ok),
                   "median_s": _round(statistics.median(seconds)) if seconds else None,
                   "p99_s": _round(percentile(seconds, 0.99)), "worst_s": _round(max(seconds, default=None))},
        "memory": {
            "samples": [[round(t - started, 1), main, tree] for t, main, tree in sampler.memory],
            "main_mb_start": _mb(sampler.memory[0][1]) if sampler.memory else None,
            "main_mb_end": _mb(second_half[-1][0]) if second_half else None,
            "second_half_main_spread": spread([main for main, _ in second_half]),
            "second_half_tree_spread": spread([tree for _, tree in second_half]),
            "second_half_main_mb": [_mb(min(m for m, _ in second_half)), _mb(max(m for m, _ in second_half))]
            if second_half else None,
            "second_half_tree_mb": [_mb(min(t for _, t in second_half)), _mb(max(t for _, t in second_half))]
            if second_half else None,
        },
        "epoch": {"reference_s": _round(reference_epoch), "loaded_runs": len(loaded),
                  "loaded_median_s": _round(statistics.median(loaded)) if loaded else None,
                  "ratio": _round(statistics.median(loaded) / reference_epoch) if loaded else None},
        "runs": {"presses": presses, "stored": len(class_runs), "statuses": statuses, "lost": lost,
                 "drain_s": round(drained - ended, 1),
                 "each": [{"id": meta["id"], "status": str(getattr(meta["status"], "value", meta["status"])),
                           "created": meta.get("created"), "started": meta.get("started"),
                           "finished": meta.get("finished"), "epoch_seconds": meta.get("epoch_seconds"),
                           "message": meta.get("message"), "reference": meta["id"] == reference["id"]}
                          for meta in runs],
                 "class_started": _wall(started), "class_ended": _wall(ended)},
        "pages": {page: {"loads": len(values), "median_s": _round(statistics.median(values)) if values else None,
                         "p90_s": _round(percentile(values, 0.9))} for page, values in page_seconds.items()},
        "fragment_reruns": {"count": len(fragments),
                            "median_s": _round(statistics.median(fragments)) if fragments else None,
                            "p99_s": _round(percentile(fragments, 0.99))},
        "problems": [problem for learner in class_learners for problem in learner.problems][:50],
        "problem_count": sum(len(learner.problems) for learner in class_learners),
        "page_exceptions": sum(getattr(learner, "page_errors", 0) for learner in class_learners),
    }


def _ended_during_class(meta: dict, started: float, ended: float) -> bool:
    """Trained while the class was on: finished before the learners left (wall clock against monotonic)."""
    from datetime import datetime

    finished = datetime.fromisoformat(meta["finished"]).timestamp()
    offset = time.time() - time.monotonic()
    return started + offset <= finished <= ended + offset


def _wall(monotonic: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(monotonic + time.time() - time.monotonic(), timezone.utc).isoformat(
        timespec="milliseconds")


def _round(value):
    return None if value is None else round(value, 3)


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


def report(result: dict) -> str:
    health, memory, epoch, runs = result["health"], result["memory"], result["epoch"], result["runs"]
    lines = [
        f"{result['learners']} learners ({result['browser_learners']} in Chromium, the rest over the websocket), "
        f"{result['minutes']:g} minutes, {result['cores']} cores",
        f"health latency        median {health['median_s']} s · p99 {health['p99_s']} s · worst {health['worst_s']} s "
        f"({health['checks']} checks, {health['failed']} failed; target p99 <= 1 s)",
        f"server memory         main process {memory['main_mb_start']} -> {memory['main_mb_end']} MB; second half "
        f"{memory['second_half_main_mb']} MB, spread {memory['second_half_main_spread']} "
        f"(process tree {memory['second_half_tree_mb']} MB, spread {memory['second_half_tree_spread']}; "
        "target spread <= 0.10)",
        f"epoch time            {epoch['loaded_median_s']} s under the class ({epoch['loaded_runs']} runs) vs "
        f"{epoch['reference_s']} s nobody watching: ratio {epoch['ratio']} (target <= 1.2)",
        f"runs lost             {runs['lost']} of {runs['presses']} presses of Train ({runs['statuses']}; "
        f"queue drained {runs['drain_s']} s after the class; target 0)",
        "page loads (whole script run, median / p90 s): " + ", ".join(
            f"{page} {values['median_s']} / {values['p90_s']} ({values['loads']})"
            for page, values in result["pages"].items()),
        f"fragment reruns       {result['fragment_reruns']['count']}, median {result['fragment_reruns']['median_s']} s, "
        f"p99 {result['fragment_reruns']['p99_s']} s",
        f"learners' problems    {result['problem_count']}; exceptions shown on pages {result['page_exceptions']}",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--browsers", type=int, default=2, help="how many learners are real Chromium contexts")
    parser.add_argument("--trainers", type=int,
                        help="how many learners press Train (default: a third; with --burst, everyone)")
    parser.add_argument("--train-size", type=int, default=1_000, help="training images of each learner's quick run")
    parser.add_argument("--runs-per-learner", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 learners (1 in Chromium) for 1 minute")
    parser.add_argument("--burst", action="store_true",
                        help="a class's first minutes on a fresh server: every learner opens the Train page's address "
                             "within 2 s and presses Train (the reference run is trained after the class)")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    plan = {"train_size": args.train_size, "runs_per_learner": args.runs_per_learner}
    if args.quick:
        args.learners, args.minutes, args.browsers = 3, 1, min(args.browsers, 1)
        plan.update(train_size=1_000, watch_s=15.0, dwell_s=5.0, ramp_s=5.0)
    if args.burst:
        plan.update(first_page="Train", reference_after=True, ramp_s=2.0, watch_s=60.0, dwell_s=10.0)
    everyone = args.learners if args.burst else args.learners // 3
    plan["trainers"] = everyone if args.trainers is None else args.trainers
    result = run(args.learners, args.minutes, args.browsers, plan)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
