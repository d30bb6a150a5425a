"""The worker side of the process executor (process.py): the program each worker process runs, as
`python -m mnist_lab.training.executors.process_worker`. It loads Keras and MNIST once, says ready, then
trains the runs it reads from its standard input, speaking the JSON lines that process.py describes.

Apart from the server side so that no module of the server imports the worker's main program."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
from pathlib import Path

from mnist_lab import data, system
from mnist_lab.runs import RunStore
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)

def _resident_megabytes() -> float:
    """This process's resident memory now (not its peak), from /proc where there is one."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _serve(niceness: int) -> int:
    """A worker's life: load Keras and the data, say ready, train each run it is given, say how it ended.
    It trains `niceness` below the server's priority (the server chooses: process.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server decides
    os.nice(niceness)
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints and library chatter go to the log

    def say(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")

    system.configure_gpu_memory()
    import keras  # the slow import, done before a run arrives

    from mnist_lab.training.fitting import train_run
    from mnist_lab.training.packed_runs import train_pack
    from mnist_lab.training.progress import LivePublisher, LiveState

    try:
        data.load_mnist()  # held for every run this worker trains
    except Exception:
        logger.exception("MNIST could not be loaded ahead; each run will say why")
    jobs: queue.Queue = queue.Queue()
    lock = threading.Lock()
    current: dict[str, LiveState] = {}  # the runs training now, by id
    stops: dict[str, bool] = {}  # stops that arrived before their run began: run id -> shutting down

    def listen():
        for text in sys.stdin:
            message = json.loads(text)
            if "run" in message or "pack" in message:
                jobs.put(message.get("pack") or [message["run"]])
                continue
            run_id = message.get("stop") or message.get("shut_down")
            shutting_down = "shut_down" in message
            with lock:
                if run_id in current:
                    current[run_id].request_stop(shutting_down=shutting_down)
                else:
                    stops[run_id] = shutting_down
        with lock:  # the server is gone, or has retired this worker
            for live in current.values():
                live.request_stop(shutting_down=True)
        jobs.put(None)

    threading.Thread(target=listen, name="commands", daemon=True).start()
    try:
        device = system.device_info().as_dict()
    except RuntimeError:
        device = None
    say({"ready": True, "device": device})
    while (pack := jobs.get()) is not None:
        store = RunStore(pack[0]["store"])
        run_ids = [job["run_id"] for job in pack]
        settings_list = [TrainSettings.from_dict(job["settings"]) for job in pack]
        lives = [LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")
                 for run_id, settings in zip(run_ids, settings_list)]
        with lock:
            for live in lives:
                current[live.run_id] = live
                if live.run_id in stops:
                    live.request_stop(shutting_down=stops.pop(live.run_id))
        say({"began": run_ids})
        publishers = [LivePublisher(store, live.run_id, live, sink=lambda snapshot: say({"progress": snapshot}))
                      for live in lives]
        ended: list[str] = []
        last: list = []  # the job's last end: said once the worker is free again, below

        def finished(run_id: str, status: str, message: str) -> None:
            with lock:
                current.pop(run_id, None)
            ended.append(run_id)
            if len(ended) < len(run_ids):
                say({"finished": [status, message], "run_id": run_id})
            else:
                last[:] = [run_id, status, message]

        if len(pack) == 1:
            status, message = train_run(store, run_ids[0], pack[0]["architecture"], settings_list[0], lives[0],
                                        publisher=publishers[0])
            finished(run_ids[0], status, message)
        else:
            train_pack(store, run_ids, pack[0]["architecture"], settings_list, lives, publishers=publishers,
                       on_end=finished)
        keras.backend.clear_session()  # the next job builds its own model: free this one's graph
        run_id, status, message = last
        say({"finished": [status, message], "run_id": run_id, "memory_mb": round(_resident_megabytes(), 1)})
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    sys.exit(_serve(int(sys.argv[1])))
