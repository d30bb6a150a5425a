"""The app shell (app.py): a page that Streamlit's folder mode runs alone is routed through the lab's
navigation, with its state defaults and the Keras clean-up switched off."""

import os
import subprocess
import sys
import textwrap

from conftest import ROOT


def test_a_page_chosen_by_folder_mode_gets_the_whole_app(synthetic_npz):
    """AppTest starts every run in folder mode, as a fresh server does. A fresh interpreter, so that no
    earlier test has switched the clean-up off already."""
    script = textwrap.dedent(f"""
        from streamlit.runtime.scriptrunner import script_runner
        from streamlit.testing.v1 import AppTest

        original_clean_up = script_runner._clean_problem_modules
        folder_mode_runs = []
        folder_mode = script_runner._mpa_v1
        script_runner._mpa_v1 = lambda path: (folder_mode_runs.append(path), folder_mode(path))[1]

        at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=120)
        at.switch_page("pages/compare.py")
        at.run()
        assert not at.exception, at.exception
        assert folder_mode_runs, "the page was not chosen by folder mode"
        assert [title.value for title in at.title] == ["Compare"]
        assert at.session_state["architecture_name"] == "seed-3layer"  # app.py's defaults
        assert at.session_state["selected_run_ids"] == []
        assert script_runner._clean_problem_modules is not original_clean_up
        print("routed")
    """)
    env = {**os.environ, "MNIST_LAB_DATA": str(synthetic_npz)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "routed" in result.stdout

