"""What this machine trains on: Keras' own answer, and the facts known before Keras is imported."""

import json
import subprocess
import sys
from importlib import metadata

from helpers import ROOT
from mnist_lab import system


def test_device_info_describes_backend_and_cores():
    info = system.device_info(timeout=120)
    assert system.device_ready()
    assert info.backend in ("tensorflow", "jax", "torch")
    assert info.cpu_cores >= 1
    assert info.keras_version.startswith("3.")
    expected = f"GPU: {', '.join(info.gpus)}" if info.gpus else f"CPU only ({info.cpu_cores} core"
    assert info.description.startswith(expected)
    assert info.as_dict()["description"] == info.description


def test_machine_facts_need_no_keras():
    """The facts the home page shows at once are read without importing Keras (a fresh interpreter)."""
    script = ("import sys; from mnist_lab import system; facts = system.machine_facts(); "
              "assert not any(name.split('.')[0] in ('keras', 'tensorflow') for name in sys.modules); "
              "print(facts.description)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{system.cpu_cores()} CPU core" in result.stdout
    assert f"Keras {metadata.version('keras')}" in result.stdout


def test_backend_setting_is_found_as_keras_finds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert system.keras_backend_setting() == "tensorflow"  # no keras.json: Keras' default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert system.keras_backend_setting() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert system.keras_backend_setting() == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text("[not json")
    assert system.keras_backend_setting() == "tensorflow"


def test_nvidia_cards_are_read_from_the_driver_listing(tmp_path):
    assert system.nvidia_gpus(tmp_path / "no driver") == ()
    for index, model in enumerate(["NVIDIA H200", "NVIDIA T4"]):
        (tmp_path / f"0000:0{index}:00.0").mkdir()
        (tmp_path / f"0000:0{index}:00.0" / "information").write_text(f"Model: \t\t {model}\nIRQ:   42\n")
    assert system.nvidia_gpus(tmp_path) == ("NVIDIA H200", "NVIDIA T4")


def test_machine_facts_describe_cores_gpus_and_versions():
    facts = system.MachineFacts(cpu_cores=1, backend="jax", keras_version="3.15.1", framework_version="0.7.2",
                                nvidia_gpus=("NVIDIA H200",))
    assert facts.description == "1 CPU core · GPU: NVIDIA H200 · Keras 3.15.1 on the jax backend 0.7.2"
    assert system.MachineFacts(4, "tensorflow", "", "", ()).description == "4 CPU cores"


def test_without_nvidia_cards_the_device_is_known_without_keras(monkeypatch):
    monkeypatch.setattr(system, "nvidia_gpus", lambda folder=None: ())
    known = system.device_without_keras()
    assert known.gpus == () and known.description == f"CPU only ({system.cpu_cores()} core" + (
        "s)" if system.cpu_cores() != 1 else ")")
    assert known.keras_version == metadata.version("keras")
    monkeypatch.setattr(system, "nvidia_gpus", lambda folder=None: ("NVIDIA H200",))
    assert system.device_without_keras() is None  # the backend may or may not use the card


def test_a_device_report_reads_back_as_it_was_written():
    info = system.DeviceInfo("jax", "3.15.1", "0.7.2", ("NVIDIA H200", "NVIDIA H200"), 16)
    assert system.DeviceInfo.from_dict(json.loads(json.dumps(info.as_dict()))) == info
