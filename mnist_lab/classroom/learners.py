"""Learners without accounts, and the teacher.

A learner's browser keeps a random secret key (a cookie). Runs, saved architectures and handwriting record
the learner's public id, a hash of that key, so that nothing stored on the server lets one learner pose as
another. The learner book maps ids to the friendly names learners see and may change. The teacher is whoever
knows the key the teacher set for the server; only a run's owner or the teacher may stop or delete it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.errors import LabError, shown_value

COOKIE = "mnist_lab_learner"
TEACHER_KEY_VARIABLE = "MNIST_LAB_TEACHER_KEY"
MAX_NAME_LENGTH = 40
BOOK_FILE = ".learners.json"  # in the run store's folder; hidden, so never listed as a run
_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")

ADJECTIVES = (
    "Amber", "Bold", "Brave", "Bright", "Calm", "Clever", "Cosy", "Curious", "Daring", "Eager", "Gentle", "Golden",
    "Happy", "Jolly", "Keen", "Kind", "Lively", "Lucky", "Merry", "Nimble", "Patient", "Quick", "Quiet", "Sharp",
    "Shiny", "Steady", "Sunny", "Swift", "Tidy", "Wise", "Witty", "Zesty",
)
ANIMALS = (
    "Badger", "Beaver", "Crane", "Dolphin", "Falcon", "Fox", "Gecko", "Hare", "Hedgehog", "Heron", "Ibis", "Koala",
    "Lemur", "Lynx", "Marten", "Meerkat", "Newt", "Otter", "Owl", "Panda", "Puffin", "Quokka", "Raven", "Robin",
    "Seal", "Sparrow", "Stoat", "Swan", "Tapir", "Turtle", "Walrus", "Wren",
)


class NotYours(LabError):
    """A learner tried to stop or delete what belongs to someone else."""


def new_key() -> str:
    """A fresh secret key for a new browser."""
    return secrets.token_urlsafe(18)


def is_key(text) -> bool:
    """True for what new_key could have made: a browser's cookie is not trusted further than that."""
    return isinstance(text, str) and _KEY.fullmatch(text) is not None


def learner_id(key: str) -> str:
    """The public id of the learner holding `key`: stored with their runs, never usable as the key."""
    return hashlib.sha256(f"mnist-lab-learner:{key}".encode()).hexdigest()[:16]


def default_name(public_id: str, taken=()) -> str:
    """A friendly name chosen from the id, unlike any in `taken` while names are left ("Curious Otter")."""
    start = int(public_id, 16) if public_id and all(c in "0123456789abcdef" for c in public_id) else 0
    count = len(ADJECTIVES) * len(ANIMALS)
    taken = set(taken)
    for step in range(count):
        index = (start + step * 7919) % count
        name = f"{ADJECTIVES[index % len(ADJECTIVES)]} {ANIMALS[index // len(ADJECTIVES)]}"
        if name not in taken:
            return name
    return f"{ADJECTIVES[start % len(ADJECTIVES)]} {ANIMALS[start // len(ADJECTIVES) % len(ANIMALS)]} {start % 1000}"


def clean_name(text) -> str:
    """A name a learner typed, tidied; LabError with what to change when it cannot be a name."""
    if not isinstance(text, str):
        raise LabError("A name must be text.")
    name = " ".join("".join(c for c in text if unicodedata.category(c)[0] != "C").split())
    if not name:
        raise LabError("A name needs at least one letter or digit.")
    if len(name) > MAX_NAME_LENGTH:
        raise LabError(f"{shown_value(name)} is {len(name)} characters long: keep a name to {MAX_NAME_LENGTH}.")
    return name


@dataclass(frozen=True)
class Actor:
    """Who asks for a stop or a delete: a learner (by public id), the teacher, or the server's operator
    (the command line), who may act on every run like the teacher. `unowned`: may also act on runs of no
    learner (trained from the command line, or before runs had owners), as on a laptop without a teacher."""

    learner_id: str | None
    teacher: bool = False
    unowned: bool = False

    @classmethod
    def operator(cls) -> "Actor":
        return cls(None, teacher=True)

    def owns(self, record: dict) -> bool:
        return self.learner_id is not None and record.get("owner") == self.learner_id

    def may_change(self, record: dict) -> bool:
        return self.teacher or self.owns(record) or (self.unowned and not record.get("owner"))

    def check_may_change(self, record: dict, doing: str, what: str = "run") -> None:
        """NotYours unless this actor may `doing` (stop, delete) the record."""
        if not self.may_change(record):
            owner = record.get("owner_name") or "another learner"
            raise NotYours(f"This {what} belongs to {owner}: only they or the teacher can {doing} it.")


def is_teacher_key(given, expected) -> bool:
    """True when the teacher set a key and `given` is it (compared in constant time)."""
    if not isinstance(given, str) or not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def configured_teacher_key(secrets_value=None) -> str | None:
    """The teacher's key: the environment's, else the one the app read from its secrets."""
    key = os.environ.get(TEACHER_KEY_VARIABLE) or secrets_value
    return key if isinstance(key, str) and key else None


class LearnerBook:
    """The names of a server's learners, by public id, in one JSON file; safe between threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(value, dict):
            return {}
        return {str(key): name for key, name in value.items() if isinstance(name, str)}

    def _write(self, names: dict[str, str]) -> None:
        from mnist_lab.runs import write_json

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, names)

    def names(self) -> dict[str, str]:
        return self._read()

    def name(self, public_id: str) -> str:
        """The learner's name, giving a new learner a friendly one that nobody else has."""
        with self._lock:
            names = self._read()
            if public_id not in names:
                names[public_id] = default_name(public_id, taken=names.values())
                self._write(names)
            return names[public_id]

    def rename(self, public_id: str, text) -> str:
        """Set the learner's name; LabError if it cannot be a name or another learner has it."""
        name = clean_name(text)
        with self._lock:
            names = self._read()
            if any(other == name and key != public_id for key, other in names.items()):
                raise LabError(f"Someone in this class is already called {shown_value(name)}: add an initial.")
            names[public_id] = name
            self._write(names)
        return name
