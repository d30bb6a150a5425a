"""How the store writes and reads a file: atomically, under a folder's lock, and never trusting what it reads."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see either the old or the new content, never a mix.

    The temporary file is opened with mode 0666, which the kernel narrows by the umask (mkstemp's
    0600 would hide the file from a server running as another user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


try:
    import fcntl
except ImportError:  # Windows: the lock serializes the threads of one process only
    fcntl = None

_FOLDER_LOCKS: dict[str, threading.RLock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()


@contextlib.contextmanager
def locked_folder(folder: Path):
    """Hold a folder's lock while its files are read, changed and written back, so that two writers at once
    (a worker and the server, two threads of a server) never lose each other's change: a lock per folder
    among this process' threads, and flock on the folder itself among processes. Re-entrant."""
    key = os.path.abspath(folder)
    with _FOLDER_LOCKS_GUARD:
        lock = _FOLDER_LOCKS.setdefault(key, threading.RLock())
    with lock:
        held = _HELD.__dict__.setdefault("folders", set())
        if key in held or fcntl is None:
            yield
            return
        handle = os.open(key, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.add(key)
            yield
        finally:
            held.discard(key)
            os.close(handle)  # closing releases the flock


def write_json(path: Path, value) -> None:
    write_atomic(path, json.dumps(value, indent=1, default=_json_default))


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: Path, default=None):
    """The file's JSON value, or `default` when it is missing, unreadable or not JSON."""
    value, problem = read_stored(Path(path))
    return default if value is MISSING or problem else value


MISSING = object()


def read_stored(path: Path):
    """(value, problem): the file's JSON value and None; MISSING and None when there is no file;
    None and a sentence's end saying why it cannot be used ("history.json is not valid JSON")."""
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return MISSING, None
    except IsADirectoryError:
        return None, f"{path.name} is a folder, not a file"
    except PermissionError:
        return None, f"{path.name} cannot be read (permission denied)"
    except OSError as error:
        return None, f"{path.name} cannot be read ({error.strerror or type(error).__name__})"
    try:
        return json.loads(text), None
    except (ValueError, RecursionError):
        return None, f"{path.name} is not valid JSON"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True


# ---- What run.json and history.json may hold ------------------------------------------------------
