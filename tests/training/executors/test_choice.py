"""Choosing the executor: the command line names the one it trained with, and an unknown or missing one is a
clear error (executors/choice.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mnist_lab import training
from mnist_lab.runs import RunStore

from helpers import ROOT


def test_the_command_line_names_its_executor(synthetic_data, isolated_storage):
    result = subprocess.run([sys.executable, "-m", "mnist_lab", "train", "--arch", "quick-cnn", "--epochs", "1",
                             "--train-size", "200", "--executor", "process"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["executor"] == "process" and summary["status"] == "completed"
    assert RunStore(isolated_storage / "runs").get(summary["run_id"])["pid"] != os.getpid()


def test_an_unknown_or_missing_executor_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MNIST_LAB_EXECUTOR", "spark")
    with pytest.raises(training.ExecutorUnavailable, match="ask your teacher") as refused:
        training.executor_name()
    assert "MNIST_LAB" not in str(refused.value) and "Unknown executor 'spark'" in refused.value.detail
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(training.ExecutorUnavailable) as missing:
        training.make_executor("ray")
    assert "Ray is not installed" in missing.value.detail
