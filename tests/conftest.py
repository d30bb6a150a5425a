"""Shared fixtures: isolated run/architecture folders, real MNIST when available, a live app in Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnist_lab.training.executors.process import WORKER_NICENESS_VARIABLE

from app_server import CHROMIUM, CHROMIUM_ARGS, AppServer
from helpers import ARTIFACTS, HeldExecutor, fail_on_logged_traceback

# The suite's training workers, its app servers' and its command lines' included, run at its own priority.
# The product's default (niceness 10) yields to the server, but on a machine loaded by others a nice-10
# worker gets a tenth of each other process's share: under two CPU-bound processes the suite took 67 min
# instead of 21. The default itself is tested in tests/training/executors/test_executors.py. Ray's own
# workers run at niceness 15 unless told otherwise, which starved its tests the same way.
os.environ[WORKER_NICENESS_VARIABLE] = "0"
os.environ["RAY_worker_niceness"] = "0"


@pytest.fixture(autouse=True)
def isolated_storage(tmp_path, monkeypatch):
    """Every test gets its own run store, saved-architecture folder and handwriting set."""
    monkeypatch.setenv("MNIST_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MNIST_LAB_ARCHITECTURES", str(tmp_path / "architectures"))
    monkeypatch.setenv("MNIST_LAB_HANDWRITING", str(tmp_path / "handwriting"))
    return tmp_path


@pytest.fixture(autouse=True)
def managers_shut_down():
    """Every training manager a test made, the app's own included (one per run folder, held by the app's
    cache), is shut down after it: otherwise each keeps its warm pool workers, and a whole suite piles up
    dozens of idle processes of several hundred MB."""
    import sys

    background = sys.modules.get("mnist_lab.training.background")
    before = background._managers() if background else []
    yield
    background = sys.modules.get("mnist_lab.training.background")  # imported by the test, perhaps
    for manager in background._managers() if background else ():
        if not any(manager is earlier for earlier in before):
            manager.shut_down(timeout=60)


@pytest.fixture
def class_runs(isolated_storage):
    """A posed three-value experiment in the test's run store: two finished runs of batch size 16, one of 32
    training, one of 64 waiting. (ExperimentStore, experiment)"""
    from mnist_lab import experiments
    from mnist_lab.architecture import sources
    from mnist_lab.classroom.learners import Actor
    from mnist_lab.runs import RunStatus, RunStore

    store = RunStore()
    class_experiments = experiments.ExperimentStore(store)
    experiment = class_experiments.pose("Does batch size matter?", sources.preset_architecture("quick-cnn"),
                                        {"epochs": 2, "train_size": 100}, "batch_size", "16,32,64",
                                        by=Actor.operator(), data_sizes=(600, 200))
    for index, status, accuracy, owner in ((0, RunStatus.COMPLETED, 0.95, "ada"), (0, RunStatus.COMPLETED, 0.97, "bo"),
                                           (1, RunStatus.RUNNING, None, "cy"), (2, RunStatus.QUEUED, None, "di")):
        meta = store.create(f"run of {owner}", experiment["base"]["architecture"], {"epochs": 2}, owner=owner,
                            owner_name=owner.capitalize(), experiment={"id": experiment["id"], "index": index,
                                                                       "value": experiment["labels"][index]})
        store.update(meta["id"], status=status, test_accuracy=accuracy)
        if status != RunStatus.QUEUED:
            store.write_live(meta["id"], {"curve": [[0.5, 1.2, 0.6], [1.0, 0.8, 0.8], [1.5, 0.5, None]]})
        if status == RunStatus.COMPLETED:
            store.append_epoch(meta["id"], {"epoch": 1, "val_accuracy": 0.9})
            store.append_epoch(meta["id"], {"epoch": 2, "val_accuracy": accuracy})
    return class_experiments, experiment


@pytest.fixture
def real_mnist():
    """The real MNIST arrays; skipped when MNIST_LAB_DATA is not set (CI sets it)."""
    if not os.environ.get("MNIST_LAB_DATA"):
        pytest.skip("MNIST_LAB_DATA is not set")
    from mnist_lab import data

    return data.load_mnist()


@pytest.fixture
def synthetic_npz(tmp_path):
    """A tiny file in MNIST's layout: digits are bright squares at a position that depends on the label."""
    rng = np.random.default_rng(0)

    def make(count):
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        images = np.zeros((count, 28, 28), np.uint8)
        for index, label in enumerate(labels):
            row, column = divmod(int(label), 5)
            images[index, 4 + row * 12: 12 + row * 12, 2 + column * 5: 6 + column * 5] = 255
        return images, labels

    x_train, y_train = make(600)
    x_test, y_test = make(200)
    path = tmp_path / "synthetic.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def held_manager(synthetic_npz, isolated_storage, monkeypatch):
    """A manager on the synthetic data whose runs never train (HeldExecutor), one slot."""
    from mnist_lab import training
    from mnist_lab.runs import RunStore

    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    made = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor=HeldExecutor())
    yield made
    made.shut_down(5)


@pytest.fixture
def synthetic_data(synthetic_npz, monkeypatch):
    """The app, the command line and the workers this test starts read the synthetic file as MNIST."""
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    return synthetic_npz


@pytest.fixture
def app_server(isolated_storage, request):
    """A live app with this test's isolated storage. Extra env: mark the test with
    @pytest.mark.app_env(KEY="value")."""
    env = dict(os.environ)
    marker = request.node.get_closest_marker("app_env")
    if marker:
        env.update(marker.kwargs)
    ARTIFACTS.mkdir(exist_ok=True)
    server = AppServer(env, ARTIFACTS / f"{request.node.name}.server.log")
    yield server
    server.stop()
    fail_on_logged_traceback(server.log_path)


@pytest.fixture
def synthetic_app_server(synthetic_npz, monkeypatch, request):
    """A live app on the tiny synthetic data set (its path is only known once that fixture ran)."""
    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    return request.getfixturevalue("app_server")


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page; a screenshot of it is kept in test-artifacts/ after the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()


