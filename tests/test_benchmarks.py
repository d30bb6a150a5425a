"""The benchmark report runs end to end at tiny sizes, so that it cannot rot. No timing is asserted."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from mnist_lab import architectures


@pytest.mark.long
@pytest.mark.browser
def test_run_all_in_quick_mode_reports_every_part(tmp_path, real_mnist):
    output = tmp_path / "results.json"
    completed = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--json", str(output)],
                               cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["quick"] is True
    assert set(results["training"]["results"]) == set(architectures.PRESETS)
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
    assert "7. The Train page's estimate" in completed.stdout and "8. One move of the Draw page's epoch slider" in completed.stdout
