"""How many runs train at once and wait: the defaults from this machine's cores and memory, and the limits a
teacher sets in the environment. Apart from manager.py, which applies them."""

from __future__ import annotations

import logging
import os

from mnist_lab import system
from mnist_lab.errors import LabError

MAX_CONCURRENT_VARIABLE = "MNIST_LAB_MAX_CONCURRENT_RUNS"
MAX_QUEUED_VARIABLE = "MNIST_LAB_MAX_QUEUED_RUNS"
DEFAULT_MAX_QUEUED = 100
MOST_CONCURRENT_BY_DEFAULT = 4  # measured up to 2 (a 2-core CPU); beyond 4 the teacher decides
MEMORY_PER_RUN_MB = 1500  # a worker with Keras, MNIST and a preset's run, with room to spare

logger = logging.getLogger(__name__)

MISCONFIGURED = "This server's training is set up wrongly, so no run can start: ask your teacher to look at its log."


def default_max_concurrent() -> int:
    """Runs that train at once unless the teacher says otherwise: one per CPU core, as far as memory allows.
    The small nets of a lesson leave cores idle: on a 2-core CPU ten 1,000-image runs ended at 0.99x the
    compute floor two at a time, against 1.35x one at a time (docs/performance.md)."""
    memory = system.memory_mb()
    by_memory = memory // MEMORY_PER_RUN_MB if memory else MOST_CONCURRENT_BY_DEFAULT
    return int(max(1, min(system.cpu_cores(), by_memory, MOST_CONCURRENT_BY_DEFAULT)))


def environment_limit(variable: str, default: int, minimum: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        detail = f"{variable} must be a whole number of at least {minimum}, not {text!r}."
        logger.error(detail)
        raise LabError(MISCONFIGURED, detail)
    return value
