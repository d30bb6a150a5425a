"""The benchmark report runs end to end at tiny sizes, so that it cannot rot. No timing is asserted."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT
from mnist_lab.architecture.presets import PRESETS


@pytest.mark.long
@pytest.mark.browser
def test_run_all_in_quick_mode_reports_every_part(tmp_path, real_mnist):
    output = tmp_path / "results.json"
    completed = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--json", str(output)],
                               cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["quick"] is True
    assert set(results["training"]["results"]) == set(PRESETS)
    for result in results["training"]["results"].values():
        assert result["median_ratio_app"] > 0 and result["median_seconds"]["bare"] > 0
    assert results["draw_latency"]["direct_call_ms"] > 0 and results["draw_latency"]["model_predict_ms"] > 0
    assert results["first_render"]["home_first_render_s"] > 0 and results["first_render"]["ratio"] > 0
    assert results["quick_cnn"]["epochs"] == 1 and 0 <= results["quick_cnn"]["test_accuracy"] <= 1
    assert results["quick_cnn"]["settings"]["schedule"] == "warmup-cosine"
    process = results["process_executor"]["results"]["quick-cnn"]
    assert process["ratio"] > 0 and process["seconds_to_first_batch"] > 0 and len(process["executor_seconds"]) == 2
    assert results["estimates"]["results"]["quick-cnn"]["ratio_run"] > 0
    scrubber = results["epoch_scrubber"]
    assert scrubber["stored_epochs"] == 2 and scrubber["slider_move"]["median_ms"] > 0
    assert "1. Seconds per epoch" in completed.stdout and "5. An epoch in a worker process" in completed.stdout
    for result in results["class_throughput"]["results"].values():
        assert result["ratio"] > 0 and len(result["first_batch_seconds"]) == results["class_throughput"]["learners"]
    experiment = results["class_experiment"]
    assert sum(experiment["runs"]["per_value"]) == experiment["learners"] and experiment["problems"] == []
    assert experiment["ratio"] > 0 and experiment["projector_refresh_s"]["count"] > 0
    assert experiment["train_it_accepted_s"]["count"] == experiment["learners"]  # each saw their run accepted
    assert "7. The Train page's estimate" in completed.stdout and "8. One move of the Draw page's epoch slider" in completed.stdout


def test_the_classroom_health_probe_returns_every_check_failures_included_on_this_process_clock(monkeypatch):
    """The class benchmark asks /_stcore/health from a process of its own (its learners' threads would
    delay the checks in this one): every check it made comes back, failures included, with times that
    fall between this process's start and stop."""
    import http.server
    import os
    import threading
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # where the probe's process finds it too
    import classroom

    asked = threading.Semaphore(0)

    class Health(http.server.BaseHTTPRequestHandler):
        answered = 0

        def do_GET(self):
            Health.answered += 1
            self.send_response(200 if Health.answered != 2 else 503)  # the second check fails
            self.end_headers()
            asked.release()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}",
                             process=SimpleNamespace(pid=os.getpid()))
    sampler = classroom.Sampler(server, health_every=0.05, memory_every=60)
    try:
        started = classroom.time.monotonic()
        sampler.start()
        for _ in range(3):
            assert asked.acquire(timeout=60), "the probe asked fewer than three times"
    finally:
        sampler.stop()
        stopped = classroom.time.monotonic()
        httpd.shutdown()
    assert len(sampler.health) == Health.answered >= 3
    assert [ok for _, _, ok in sampler.health[:3]] == [True, False, True]
    assert all(started <= moment <= stopped and seconds >= 0 for moment, seconds, _ in sampler.health)
    assert sampler.memory and sampler.memory[0][1] > 0
