"""What this machine trains on: the Keras backend, its version, the GPU or the CPU cores.

Importing Keras takes seconds on a laptop, so the app never does it on its first render: it shows
`machine_facts()` (read without Keras, in milliseconds) at once, calls `start_warm_up()`, and fills the
device details in once `device_info()` is ready.
Before Keras is imported, `configure_gpu_memory()` asks each backend to claim GPU memory as needed
rather than all at once, so several runs (and several learners) can share one card.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

FRAMEWORK_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


@dataclass(frozen=True)
class DeviceInfo:
    backend: str
    keras_version: str
    framework_version: str
    gpus: tuple[str, ...]
    cpu_cores: int

    @property
    def description(self) -> str:
        if self.gpus:
            return f"GPU: {', '.join(self.gpus)}"
        return f"CPU only ({self.cpu_cores} core{'s' if self.cpu_cores != 1 else ''})"

    def as_dict(self) -> dict:
        return {**asdict(self), "description": self.description}

    @classmethod
    def from_dict(cls, values: dict) -> DeviceInfo:
        """The inverse of as_dict: how a worker process's report is read back."""
        return cls(str(values["backend"]), str(values["keras_version"]), str(values["framework_version"]),
                   tuple(values["gpus"]), int(values["cpu_cores"]))


@dataclass(frozen=True)
class MachineFacts:
    """What is known before Keras is imported: the cores, the installed versions, the backend Keras
    will choose and the NVIDIA cards the driver lists (whether Keras can use them is only known later)."""
    cpu_cores: int
    backend: str
    keras_version: str
    framework_version: str
    nvidia_gpus: tuple[str, ...]

    @property
    def description(self) -> str:
        parts = [f"{self.cpu_cores} CPU core{'s' if self.cpu_cores != 1 else ''}"]
        if self.nvidia_gpus:
            parts.append(f"GPU: {', '.join(self.nvidia_gpus)}")
        if self.keras_version:
            parts.append(f"Keras {self.keras_version} on the {self.backend} backend {self.framework_version}".rstrip())
        return " · ".join(parts)


def machine_facts() -> MachineFacts:
    """The machine's facts that need no Keras import (package metadata, /proc), in milliseconds."""
    backend = keras_backend_setting()
    return MachineFacts(cpu_cores(), backend, _installed_version("keras"),
                        _installed_version(FRAMEWORK_PACKAGES.get(backend, backend)), nvidia_gpus())


def device_without_keras() -> DeviceInfo | None:
    """The device, when it is certain without importing Keras: a machine whose driver lists no NVIDIA card
    trains on its CPU. None where there are cards (only the backend can say whether it uses them)."""
    facts = machine_facts()
    if facts.nvidia_gpus:
        return None
    return DeviceInfo(facts.backend, facts.keras_version, facts.framework_version, (), facts.cpu_cores)


def keras_backend_setting() -> str:
    """The backend Keras will load, found the way Keras finds it: KERAS_BACKEND, else keras.json in
    KERAS_HOME (or ~/.keras), else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    folder = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        backend = json.loads((folder / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def _installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def nvidia_gpus(folder: Path = NVIDIA_GPUS) -> tuple[str, ...]:
    """The NVIDIA cards the driver lists in /proc ("Model:" lines); empty without the driver."""
    names = []
    for information in sorted(folder.glob("*/information")):
        try:
            lines = information.read_text().splitlines()
        except OSError:
            continue
        names += [line.split(":", 1)[1].strip() for line in lines if line.startswith("Model:")]
    return tuple(names)


def configure_gpu_memory() -> None:
    """Grow GPU memory on demand (must run before the backend claims the card)."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def memory_mb() -> int | None:
    """This machine's memory in megabytes; None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (AttributeError, ValueError, OSError):
        return None


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _detect() -> DeviceInfo:
    configure_gpu_memory()
    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    framework_version = ""
    if backend == "tensorflow":
        import tensorflow as tf

        framework_version = tf.__version__
        for device in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(device, True)
            except RuntimeError:  # already initialised: growth was set by the variable above
                pass
            details = tf.config.experimental.get_device_details(device)
            gpus.append(details.get("device_name", device.name))
    elif backend == "jax":
        import jax

        framework_version = jax.__version__
        gpus = [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    elif backend == "torch":
        import torch

        framework_version = torch.__version__
        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return DeviceInfo(backend, keras.__version__, framework_version, tuple(gpus), cpu_cores())


_lock = threading.Lock()
_ready = threading.Event()
_result: dict = {}


def _warm_up() -> None:
    try:
        _result["info"] = _detect()
    except Exception as error:  # shown on the home page instead of device details
        _result["error"] = f"Keras could not start: {error}"
    finally:
        _ready.set()


def start_warm_up() -> None:
    """Import Keras and detect the device in a background thread, once per process."""
    with _lock:
        if not _result.get("started"):
            _result["started"] = True
            threading.Thread(target=_warm_up, name="keras-warm-up", daemon=True).start()


def device_ready() -> bool:
    """True once the warm-up has finished, successfully or not."""
    return _ready.is_set()


def device_info(timeout: float | None = None) -> DeviceInfo | None:
    """The device details, waiting up to `timeout` seconds (None = wait). None if not ready yet.

    Waiting starts the warm-up; timeout=0 only looks. Raises RuntimeError if Keras failed to start.
    """
    if timeout != 0:
        start_warm_up()
    if not _ready.wait(timeout):
        return None
    if "error" in _result:
        raise RuntimeError(_result["error"])
    return _result["info"]
