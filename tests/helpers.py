"""What tests share that is not a fixture: the app's paths, AppTest openers, the live app server, the
browser's waits, stored runs, the layers the architecture tests write and the tiny net the training tests
train. Fixtures that use them live in conftest.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.presets import preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.data import to_model_input
from mnist_lab.evaluation import comparison
from mnist_lab.runs import RunStore, now_iso
from mnist_lab.training.executors.base import ProgressBoard, RunHandle

from app_server import ROOT, AppServer

ARTIFACTS = ROOT / "test-artifacts"


def app_test(timeout: float = 60):
    """An AppTest of the whole app (router included); switch pages with at.switch_page("pages/x.py")."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    # Learners see no error details (.streamlit/config.toml); a failing test shows them in full.
    config.set_option("client.showErrorDetails", "full")
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)


def open_app_page(page_file: str, timeout: float = 120, **session):
    """Run the app on one page (e.g. "pages/draw.py") with the given session state; fail on an exception."""
    at = app_test(timeout)
    for key, value in session.items():
        at.session_state[key] = value
    at.switch_page(page_file)
    at.run()
    assert not at.exception, at.exception
    return at


def page_texts(at) -> str:
    """Every text element of an AppTest page, joined: what a learner reads."""
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                    + [w.value for w in at.warning] + [e.value for e in at.error] + [s.value for s in at.success])


def without_closed_tab_noise(log: str) -> str:
    """The log less Streamlit's own "Exception in ASGI application" tracebacks whose every exception is a
    WebSocketDisconnected: a browser tab that closed while its connection was opening, not the app failing."""
    kept, block, previous = [], None, ""
    for line in log.splitlines(keepends=True):
        if line.startswith("Exception in ASGI application"):
            block = [line]
        elif block is None:
            kept.append(line)
        elif (not line.strip() or line.startswith((" ", "Traceback", "During handling"))
              or line.startswith("starlette.websockets.WebSocketDisconnected")):
            block.append(line)
        else:  # the block has ended: an exception of another kind keeps it, the next log line ends it
            kept.extend(block if previous.startswith(" ") else [])
            kept.append(line)
            block = None
        if line.strip():
            previous = line
    if block and not previous.startswith("starlette.websockets.WebSocketDisconnected"):
        kept.extend(block)  # the log ended inside a block of another kind
    return "".join(kept)


def fail_on_logged_traceback(log_path: Path):
    """Learners see no error details, so an exception in a browser test shows only in the server's log."""
    log = log_path.read_text(errors="replace")
    log = log.split("\n  Stopping...\n")[0]  # what the server logs while the test shuts it down is not the app's
    log = without_closed_tab_noise(log)
    if "Traceback" in log:
        start = log.index("Traceback")
        pytest.fail(f"the server logged a traceback ({log_path}):\n{log[max(0, start - 300): start + 3000]}")


def open_page(page, server: AppServer, path: str = ""):
    """Open an app page (a deep link, even as the server's first request) and wait until Streamlit
    has finished running its script."""
    page.goto(f"{server.url}/{path}")
    page.wait_for_selector("[data-testid='stApp']")
    wait_idle(page)


def wait_for(condition, what: str, alive=lambda: True, timeout: float = 300):
    """Poll another thread's or process' state until `condition()` is true (returned); `alive()` fails it
    early. Files another process writes send no event to wait on."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert alive(), f"ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)
    return value


def wait_idle(page, timeout: float = 60_000):
    """Wait until the app reports that no script run is in progress."""
    page.wait_for_function(
        "() => { const app = document.querySelector(\"[data-testid='stApp']\");"
        " return app && app.getAttribute('data-test-script-state') !== 'running'"
        " && !document.querySelector(\"[data-testid='stStatusWidget'] [data-testid='stStatusWidgetRunningIcon']\"); }",
        timeout=timeout,
    )


# ---- Stored runs made without the app ----------------------------------------------------------

def stored_run(store: RunStore, name: str, history=(), status: str = "completed", architecture: str = "seed-3layer",
               layers=None, settings=None, **fields) -> dict:
    """A run as the training code stores it, without training: metadata and a given history."""
    layers = layers if layers is not None else preset_layers("seed-3layer")
    report = analyze(layers)
    settings = {"epochs": max(len(history), 1), "batch_size": 128, "optimizer": "adam", "learning_rate": 0.001,
                "train_size": 600, "validation": "holdout", "validation_size": 100, "seed": 0, "augment": False,
                **(settings or {})}
    meta = store.create(name, {"name": architecture, "source": "preset", "layers": layers}, settings,
                        parameters=report.total_parameters, multiply_adds=report.multiply_adds,
                        device="CPU only (2 cores)", backend="tensorflow")
    for epoch in history:
        store.append_epoch(meta["id"], epoch)
    return store.update(meta["id"], status=status, started=now_iso(),
                        finished=None if status in ("queued", "running") else now_iso(), **fields)


def train_model(x_train, y_train, epochs: int = 1, seed: int = 0, layers=None, x_val=None, y_val=None):
    """The notebook's 3-layer net (or `layers`), compiled as the notebook does and fitted briefly."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model(layers or preset_layers("seed-3layer"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    validation = (to_model_input(x_val), y_val) if x_val is not None else None
    fitted = model.fit(to_model_input(x_train), y_train, batch_size=64, epochs=epochs, verbose=0,
                       validation_data=validation)
    return model, fitted.history


def trained_run(store: RunStore, mnist, name: str, epochs: int = 1, seed: int = 0, train_size: int = 600,
                layers=None, architecture: str = "seed-3layer") -> str:
    """A completed run with a real model file and a real history, trained on the first `train_size` images."""
    x_train, y_train = mnist.x_train[:train_size], mnist.y_train[:train_size]
    x_val, y_val = mnist.x_train[-200:], mnist.y_train[-200:]
    started = time.perf_counter()
    model, history = train_model(x_train, y_train, epochs, seed, layers, x_val, y_val)
    seconds = (time.perf_counter() - started) / epochs
    rows = [{"epoch": number + 1, "loss": history["loss"][number], "accuracy": history["accuracy"][number],
             "val_loss": history["val_loss"][number], "val_accuracy": history["val_accuracy"][number],
             "seconds": seconds} for number in range(epochs)]
    test_loss, test_accuracy = model.evaluate(to_model_input(mnist.x_test), mnist.y_test, verbose=0)
    meta = stored_run(store, name, rows, architecture=architecture, layers=layers,
                      settings={"epochs": epochs, "train_size": train_size, "batch_size": 64},
                      test_loss=float(test_loss), test_accuracy=float(test_accuracy))
    model.save(store.model_path(meta["id"]))
    return meta["id"]


def epochs(losses, val_losses, accuracies=None, val_accuracies=None, seconds=2.0):
    """History rows from parallel lists (None = unreadable)."""
    count = len(losses)
    accuracies = accuracies or [0.9] * count
    val_accuracies = val_accuracies or [0.9] * count
    return [{"epoch": n + 1, "loss": losses[n], "accuracy": accuracies[n], "val_loss": val_losses[n],
             "val_accuracy": val_accuracies[n], "seconds": seconds} for n in range(count)]


def entries_of(store, references=()) -> list:
    """The comparison's entries of a store, with the given notebook results only."""
    return comparison.entries_from_store(store, references=list(references))


# ---- A manager's bookkeeping without Keras ---------------------------------------------------------------

class HeldHandle(RunHandle):
    """A run that trains until stopped, reporting a fixed time left."""

    def __init__(self, store, run_id, remaining):
        super().__init__(run_id, ProgressBoard({"run_id": run_id, "status": "running", "remaining": remaining}))
        self.store = store
        store.update(run_id, status="running")

    def stop(self):
        self.store.update(self.run_id, status="stopped")
        self._finish("stopped", "")

    shut_down = stop


class HeldExecutor:
    """Runs that never train: the manager's bookkeeping without Keras."""

    name = "held"

    def __init__(self, remaining=30.0):
        self.remaining = remaining

    def submit(self, store, run_id, architecture, settings):
        return HeldHandle(store, run_id, self.remaining)

    def close(self):
        pass


# ---- Layers as the architecture tests write them ---------------------------------------------------------

def refused(layers) -> ArchitectureError:
    with pytest.raises(ArchitectureError) as caught:
        analyze(layers)
    return caught.value


def conv(filters=8, kernel=3, **settings):
    return {"type": "Conv2D", "filters": filters, "kernel_size": kernel, **settings}


def pool(size=2, **settings):
    return {"type": "MaxPooling2D", "pool_size": size, **settings}


FLATTEN = {"type": "Flatten"}
TINY = [FLATTEN, {"type": "Dense", "units": 16, "activation": "relu"}]


def tiny() -> dict:
    """The smallest net that trains: one Dense layer on the pixels, for tests of the training machinery."""
    return custom_architecture(TINY, label="tiny")
