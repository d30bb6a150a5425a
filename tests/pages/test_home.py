"""Home page: content at once, no server paths, machine facts at once, device details once Keras has started."""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import ROOT, app_test, open_page, page_texts
from mnist_lab import data, system


def home(at=None):
    at = at or app_test()
    at.run()
    assert not at.exception, at.exception
    return at


def test_home_shows_lab_data(real_mnist):
    at = home()
    assert at.title[0].value == "MNIST Lab"
    assert any("70,000 handwritten digits" in header.value for header in at.subheader)
    assert any("MNIST (60,000 training and 10,000 test images)" in caption.value for caption in at.caption)


def test_home_names_no_server_path(synthetic_npz, monkeypatch):
    monkeypatch.setenv(data.DATA_VARIABLE, str(synthetic_npz))
    at = home()
    texts = page_texts(at) + " ".join(header.value for header in at.subheader)
    assert "MNIST (600 training and 200 test images)" in texts and "800 handwritten digits" in texts
    assert str(synthetic_npz.parent) not in texts and ".npz" not in texts and data.DATA_VARIABLE not in texts


def test_damaged_data_is_a_message_for_the_learner(tmp_path, monkeypatch):
    damaged = tmp_path / "mnist.npz"
    damaged.write_text("not an npz file")
    monkeypatch.setenv(data.DATA_VARIABLE, str(damaged))
    at = home()
    assert [error.value for error in at.error] == [data.DAMAGED]
    assert str(tmp_path) not in page_texts(at) and data.DATA_VARIABLE not in page_texts(at)


def test_home_first_render_imports_neither_keras_nor_pandas(tmp_path):
    """With every import of Keras, TensorFlow, pandas or Arrow failing, the first render still shows the
    page, its chart included: each costs a fresh server's first page a noticeable part of a second."""
    script = textwrap.dedent(f"""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("keras", "tensorflow", "jax", "torch", "pandas", "pyarrow", "altair"):
                    raise ImportError("refused by the test: " + name)
        sys.meta_path.insert(0, Refuse())
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        assert at.title[0].value == "MNIST Lab"
        assert len(at.get("vega_lite_chart")) == 1
        texts = " ".join(m.value for m in at.markdown)
        from mnist_lab import system
        if system.nvidia_gpus():  # only the workers can say whether the backend uses the cards
            assert f"**This machine:** {{system.machine_facts().description}}" in texts, texts
        else:  # no card: the runs train on the CPU, and the page says so at once
            assert f"**This machine trains on:** CPU only ({{system.cpu_cores()}} core" in texts, texts
        assert not any(n.split(".")[0] in ("keras", "tensorflow") for n in sys.modules)
        print("first render ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "first render ok" in result.stdout


def test_home_shows_device_once_keras_is_ready(real_mnist):
    info = system.device_info(timeout=120)
    at = app_test()
    at.run()
    assert not at.exception
    texts = " ".join(m.value for m in at.markdown)
    assert f"**This machine trains on:** {info.description}" in texts
    assert any(info.keras_version in caption.value for caption in at.caption)


def test_with_nvidia_cards_home_waits_for_what_the_runs_train_on(real_mnist, isolated_storage, monkeypatch):
    """Cards in the driver's list: whether the backend uses them is known only once Keras has started
    (here the thread executor's, in this process); until then the page shows the machine's facts."""
    monkeypatch.setattr(system, "nvidia_gpus", lambda folder=None: ("NVIDIA H200",))
    monkeypatch.setenv("MNIST_LAB_EXECUTOR", "thread")
    at = home()
    texts = " ".join(m.value for m in at.markdown)
    assert "**This machine:** " in texts and "GPU: NVIDIA H200" in texts
    assert any("Starting Keras" in caption.value for caption in at.caption)
    info = system.device_info(timeout=120)
    home(at)  # the next timer tick
    home(at)  # known: the page reruns once and stops polling
    texts = " ".join(m.value for m in at.markdown)
    assert f"**This machine trains on:** {info.description}" in texts


def label_rows_and_columns(grid: np.ndarray) -> tuple[int, int, int]:
    """Under the tiles (rows mostly black), the label strip: (height of its ink in rows, number of
    separate labels across, darkest ink value)."""
    gray = grid.mean(axis=2)
    tile_rows = np.flatnonzero((gray < 60).mean(axis=1) > 0.5)
    strip = gray[tile_rows.max() + 1:]
    ink = strip < 128
    ink_columns = ink.any(axis=0).astype(int)
    labels = int(np.sum(np.diff(np.concatenate([[0], ink_columns])) == 1))
    return int(ink.any(axis=1).sum()), labels, int(strip[ink].min())


@pytest.mark.browser
def test_home_in_browser(app_server, page, real_mnist):
    from PIL import Image

    open_page(page, app_server)
    page.get_by_role("heading", name="MNIST Lab").wait_for()
    page.get_by_text("Three training images of each digit").wait_for()
    for name in ("Architecture", "Train", "Compare", "Draw"):
        assert page.get_by_role("link", name=name).first.is_visible()
    grid = page.get_by_test_id("stImage").locator("img").first
    grid.wait_for()
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=grid.element_handle())
    natural, shown = grid.evaluate("image => [image.naturalWidth, image.getBoundingClientRect().width]")
    pixels = np.asarray(Image.open(io.BytesIO(page.request.get(grid.evaluate("image => image.src")).body()))
                        .convert("RGB"))
    ink_height, labels, darkest = label_rows_and_columns(pixels)
    assert labels == 10 and darkest < 70  # one dark label per column, on white
    assert ink_height * shown / natural >= 14  # digits at least 14 px tall on screen
    assert str(ROOT) not in page.get_by_test_id("stApp").inner_text()
    page.get_by_text("This machine trains on").wait_for(timeout=120_000)
