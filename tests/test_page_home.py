"""Home page: content at once, device details once Keras has started."""

import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, app_test, open_page
from mnist_lab import system


def test_home_shows_lab_data_and_path(real_mnist):
    at = app_test()
    at.run()
    assert not at.exception
    assert at.title[0].value == "MNIST Lab"
    assert any("70,000 handwritten digits" in header.value for header in at.subheader)
    assert any("60,000 training and 10,000 test images" in caption.value for caption in at.caption)


def test_home_first_render_does_not_import_keras(tmp_path):
    """With every import of Keras or TensorFlow failing, the first render still shows the page."""
    script = textwrap.dedent(f"""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("keras", "tensorflow", "jax", "torch"):
                    raise ImportError("refused by the test: " + name)
        sys.meta_path.insert(0, Refuse())
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        assert at.title[0].value == "MNIST Lab"
        texts = " ".join(m.value for m in at.markdown)
        assert "starting Keras" in texts, texts
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


@pytest.mark.browser
def test_home_in_browser(app_server, page, real_mnist):
    open_page(page, app_server)
    page.get_by_role("heading", name="MNIST Lab").wait_for()
    page.get_by_text("Three training images of each digit").wait_for()
    page.get_by_text("This machine trains on").wait_for(timeout=60_000)
    for name in ("Architecture", "Train", "Compare", "Draw"):
        assert page.get_by_role("link", name=name).first.is_visible()
