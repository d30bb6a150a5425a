"""A class experiment on one server: the teacher poses it, thirty learners open the app within two seconds and
press "Train it" in its banner, then watch their run on the Train page while the projector page refreshes
itself. Measured: the projector's refresh (each timed rerun of its fragments, from asking to the end of the
rerun), the server's /_stcore/health latency while the runs train (median, p95, p99, worst; asked from a
process of its own), and when the last result reaches the projector (the end of its first refresh after the
last run finished, from the first press) against the compute floor: the same runs, value by value, as bare
`model.fit` calls and one test pass each in this process, timed before and after the class.

Learners speak Streamlit's websocket protocol as in `classroom.py`, each with their own learner cookie, so
the server runs every page, fragment and button press for them as for a browser.

    python benchmarks/class_experiment.py [--learners 30] [--preset quick-cnn] [--vary batch_size=32,64,128]
        [--train-size 1000] [--epochs 1] [--json out.json]
    python benchmarks/class_experiment.py --quick   # 3 learners, 200 images: checks that it works
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from classroom import Sampler, Server, StreamSession, percentile, wait_for_runs  # noqa: E402
from common import images_for_workers, report  # noqa: E402

from mnist_lab import experiments, system, training  # noqa: E402
from mnist_lab.architecture.presets import PRESETS  # noqa: E402
from mnist_lab.architecture.sources import preset_architecture  # noqa: E402
from mnist_lab.classroom.learners import Actor  # noqa: E402
from mnist_lab.runs import RunStore  # noqa: E402

REFRESH_TARGET_SECONDS = 2.0  # the projector refreshes at least every 2 s
HEALTH_P95_TARGET_SECONDS = 1.0
ARRIVAL_SECONDS = 2.0  # the class opens the app within this


def floor_of(experiment: dict, mnist, per_value: list[int]) -> float:
    """Seconds of the class's runs as bare fits, value after value, `per_value[i]` runs of value i."""
    from class_throughput import floor_seconds

    total = 0.0
    for index, count in enumerate(per_value):
        architecture, settings = experiments.value_request(experiment, index)
        resolved = training.TrainSettings.from_dict(settings).resolve(len(mnist.x_train), len(mnist.x_test))
        arrays = training.prepare_arrays(mnist, resolved)
        total += floor_seconds(architecture["layers"], arrays, resolved, count) if count else 0.0
    return total


class Participant:
    """One learner: open the app, press Train it in the banner, watch the Train page until told to leave."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self.key = f"experiment-{secrets.token_urlsafe(12)}"
        self.pressed_at: float | None = None
        self.accepted_seconds: float | None = None  # press to the answer on screen
        self.rerun_seconds: float | None = None  # press to the end of the page's rerun
        self.problems: list[str] = []
        self.errors = 0
        self.exceptions: list[str] = []

    def run(self, leave: threading.Event):
        try:
            session = StreamSession(self.url, self.key, self.timeout)
            session.run_page("Home")
            self.pressed_at = time.monotonic()
            self.rerun_seconds = session.press("Train it")
            self.accepted_seconds = next((at - self.pressed_at for at, text in session.alerts
                                          if at >= self.pressed_at and text.startswith("Your run is in")), None)
            session.run_page("Train")
            while not leave.is_set():
                session.stay(1.0)
            self.errors, self.exceptions = session.errors, session.exceptions
            session.close()
        except Exception as error:  # noted and reported: a learner the server failed
            self.problems.append(f"{type(error).__name__}: {error}"[:300])


def watch_projector(url: str, timeout: float, leave: threading.Event, sessions: list, problems: list):
    """The room's screen: the projector page, left open, its fragments rerun on the server's timer."""
    try:
        session = StreamSession(url, f"projector-{secrets.token_urlsafe(12)}", timeout)
        sessions.append(session)
        session.run_page("Projector")
        while not leave.is_set():
            session.stay(1.0)
        session.close()
    except Exception as error:  # noted and reported: the screen the server failed
        problems.append(f"projector: {type(error).__name__}: {error}"[:300])


def lesson(server: Server, experiment: dict, learners: int, timeout: float) -> dict:
    store = RunStore(server.runs)
    leave = threading.Event()
    projector: list[StreamSession] = []
    problems: list[str] = []
    threads = [threading.Thread(target=watch_projector, args=(server.url, timeout, leave, projector, problems),
                                daemon=True)]
    threads[0].start()
    sampler = Sampler(server)
    sampler.start()
    class_learners = [Participant(server.url, timeout) for _ in range(learners)]
    for learner in class_learners:
        threads.append(threading.Thread(target=learner.run, args=(leave,), daemon=True))
        threads[-1].start()
        time.sleep(ARRIVAL_SECONDS / learners)  # the class arrives over two seconds, not in one instant
    runs = wait_for_runs(store, learners, timeout=1800)
    offset = time.time() - time.monotonic()
    finished = [datetime.fromisoformat(meta["finished"]).timestamp() - offset for meta in runs if meta.get("finished")]
    last_finished = max(finished, default=time.monotonic())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [end for end in projector[0].fragment_ended if end > last_finished]:
        time.sleep(0.2)  # the projector refreshes on its own timer, in its thread: nothing else to wait on
    leave.set()
    for thread in threads:
        thread.join(timeout=timeout)
    sampler.stop()
    first_press = min(learner.pressed_at for learner in class_learners if learner.pressed_at is not None)
    shown = [end for end in projector[0].fragment_ended if end > last_finished]
    training_window = [seconds for at, seconds, _ in sampler.health if first_press <= at <= last_finished]
    refreshes = [seconds for seconds, end in zip(projector[0].fragment_seconds, projector[0].fragment_ended)
                 if first_press <= end <= last_finished]
    class_experiments = experiments.ExperimentStore(store)
    summaries = experiments.summarize(experiment, class_experiments.runs_of(experiment))
    accepted = [learner.accepted_seconds for learner in class_learners if learner.accepted_seconds is not None]
    reruns = [learner.rerun_seconds for learner in class_learners if learner.rerun_seconds is not None]
    return {
        "runs": {"stored": len(runs), "statuses": sorted({str(meta["status"]) for meta in runs}),
                 "per_value": [summary.done for summary in summaries],
                 "not_completed": [{key: meta.get(key) for key in ("name", "status", "message", "created", "finished")}
                                   for meta in runs if meta["status"] != "completed"]},
        "last_result_on_projector_s": (shown[0] - first_press) if shown else None,
        "last_run_finished_s": last_finished - first_press,
        "projector_refresh_s": {"count": len(refreshes), "median": statistics.median(refreshes) if refreshes else None,
                                "p95": percentile(refreshes, 0.95), "worst": max(refreshes, default=None)},
        "health_s": {"checks": len(training_window), "failed": sum(1 for *_, ok in sampler.health if not ok),
                     "median": statistics.median(training_window) if training_window else None,
                     "p95": percentile(training_window, 0.95), "p99": percentile(training_window, 0.99),
                     "worst": max(training_window, default=None)},
        "train_it_accepted_s": {"count": len(accepted), "median": statistics.median(accepted) if accepted else None,
                                "worst": max(accepted, default=None)},
        "train_it_rerun_s": {"median": statistics.median(reruns) if reruns else None,
                             "worst": max(reruns, default=None)},
        "findings": experiments.findings(summaries),
        "problems": problems + [problem for learner in class_learners for problem in learner.problems]
        + (["the projector saw no refresh after the last run finished"] if not shown else []),
        "page_exceptions": sum(learner.errors for learner in class_learners) + projector[0].errors,
        "exceptions": [text for learner in class_learners for text in learner.exceptions] + projector[0].exceptions,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--preset", default="quick-cnn", choices=list(PRESETS))
    parser.add_argument("--vary", default="batch_size=32,64,128", metavar="VARIABLE=V1,V2,...")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 learners, 200 images: a check that it works")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    learners = 3 if arguments.quick else arguments.learners
    train_size = 200 if arguments.quick else arguments.train_size
    variable, _, values = arguments.vary.partition("=")
    with images_for_workers(train_size) as (mnist, source, _, folder):
        server = Server(folder, {"MNIST_LAB_MAX_QUEUED_RUNS": str(max(100, 2 * learners))})
        try:
            experiment = experiments.ExperimentStore(RunStore(server.runs)).pose(
                "Does it matter?", preset_architecture(arguments.preset),
                {"epochs": arguments.epochs, "train_size": train_size}, variable, values, by=Actor.operator(),
                data_sizes=(len(mnist.x_train), len(mnist.x_test)))
            result = lesson(server, experiment, learners, timeout=300.0)
        finally:
            server.stop()
        system.configure_gpu_memory()
        floor_of(experiment, mnist, [1] + [0] * (len(experiment["values"]) - 1))  # the backend's one-time start
        before = floor_of(experiment, mnist, result["runs"]["per_value"])
        after = floor_of(experiment, mnist, result["runs"]["per_value"])
    floor = (before + after) / 2
    last = result["last_result_on_projector_s"]
    result.update(learners=learners, preset=arguments.preset, variable=variable, labels=experiment["labels"],
                  train_size=train_size, epochs=arguments.epochs, data=source, cores=os.cpu_count(),
                  floor_s={"before": before, "after": after}, ratio=last / floor if last else None,
                  load_average=os.getloadavg()[0])
    refresh, health = result["projector_refresh_s"], result["health_s"]
    lines = [
        f"{learners} learners, {arguments.preset}, {variable} = {', '.join(experiment['labels'])}, "
        f"{train_size:,} {source} images, {arguments.epochs} epoch(s), {os.cpu_count()} cores",
        f"runs: {result['runs']['stored']} stored, {result['runs']['statuses']}, finished per value "
        f"{result['runs']['per_value']}",
        f"last result on the projector  {last and round(last, 1)} s after the first press; compute floor "
        f"{floor:.1f} s ({before:.1f} before, {after:.1f} after): ratio {result['ratio'] and round(result['ratio'], 2)}",
        f"projector refresh             median {refresh['median']} · p95 {refresh['p95']} · worst {refresh['worst']} s "
        f"({refresh['count']} refreshes while the runs trained; every {REFRESH_TARGET_SECONDS:g} s)",
        f"health while training         median {health['median']} · p95 {health['p95']} · p99 {health['p99']} · "
        f"worst {health['worst']} s ({health['checks']} checks, {health['failed']} failed; target p95 <= "
        f"{HEALTH_P95_TARGET_SECONDS:g} s)",
        f"Train it answered on screen   median {result['train_it_accepted_s']['median']} · worst "
        f"{result['train_it_accepted_s']['worst']} s ({result['train_it_accepted_s']['count']} of {learners} "
        f"learners saw it); the page's rerun ended: median {result['train_it_rerun_s']['median']} · worst "
        f"{result['train_it_rerun_s']['worst']} s",
        f"found: {result['findings']}",
        f"problems {len(result['problems'])} {result['problems'][:3]}; exceptions on pages {result['page_exceptions']} "
        f"{result['exceptions'][:3]}",
    ] + [f"not completed: {meta}" for meta in result["runs"]["not_completed"]]
    report(lines, result, arguments.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
