"""The learner's own handwriting: labelled drawings kept on disk, to score models on real writing.

MNIST's test set is written by the same kind of people, on the same forms, as its training set; a
learner's mouse or finger is not. Scoring a run on this set beside its MNIST test accuracy shows
the gap as a number.

Layout (root: MNIST_LAB_HANDWRITING, default handwriting/): one PNG per sample,

    handwriting/<label>-<YYYYmmdd-HHMMSS>-<hex>.png      the 28x28 preprocessed image (white on black)
    handwriting/raw/<same id>.png                          the cropped ink as drawn, when kept

    handwriting/learners/<learner id>/...                 each learner's own set, laid out the same way
    handwriting/class/...                                  the class set the teacher pooled from them

The label is part of the file name, so the folder needs no index that could go out of step. A learner's
set is reached only through their own id, so nobody can read or delete another learner's samples.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_lab.errors import LabError, shown_value
from mnist_lab.runs import write_atomic

HANDWRITING_VARIABLE = "MNIST_LAB_HANDWRITING"
SAMPLE_ID = re.compile(r"^(\d)-(\d{8}-\d{6})-([0-9a-f]{6})$")
RAW_SIDE = 280
LEARNERS_FOLDER = "learners"
CLASS_FOLDER = "class"
OWNER_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Sample:
    id: str
    label: int
    created: datetime
    path: Path
    raw_path: Path | None


def default_handwriting_dir() -> Path:
    return Path(os.environ.get(HANDWRITING_VARIABLE) or "handwriting")


def _png(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class HandwritingSet:
    """A folder of labelled 28x28 drawings: the server's own (no owner), a learner's, or the class set."""

    def __init__(self, root: str | os.PathLike | None = None, owner: str | None = None):
        base = Path(root) if root is not None else default_handwriting_dir()
        if owner is not None and not OWNER_ID.match(owner):
            raise LabError(f"{shown_value(owner)} is not a learner id.")
        self.base = base
        self.owner = owner
        self.root = base / LEARNERS_FOLDER / owner if owner else base

    @classmethod
    def class_set(cls, root: str | os.PathLike | None = None) -> "HandwritingSet":
        """The class set: every learner's samples as the teacher last pooled them."""
        pooled = cls(root)
        pooled.root = pooled.base / CLASS_FOLDER
        return pooled

    def add(self, image: np.ndarray, label: int, raw: np.ndarray | None = None) -> Sample:
        """Keep a preprocessed 28x28 image (floats in [0, 1] or uint8) with its label, and the raw crop."""
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
            raise LabError(f"The label must be a digit from 0 to 9, not {shown_value(label)}.")
        image = np.asarray(image)
        if image.shape != (28, 28):
            raise LabError(f"A handwriting sample is a 28x28 image, not {image.shape}.")
        sample_id = f"{int(label)}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        write_atomic(self.root / f"{sample_id}.png", _png(image))
        raw_path = None
        if raw is not None and np.asarray(raw).size:
            picture = Image.open(io.BytesIO(_png(np.asarray(raw))))
            picture.thumbnail((RAW_SIDE, RAW_SIDE), Image.Resampling.BOX)
            raw_path = self.root / "raw" / f"{sample_id}.png"
            write_atomic(raw_path, _png(np.asarray(picture)))
        return self._sample(sample_id)

    def _sample(self, sample_id: str) -> Sample:
        match = SAMPLE_ID.match(sample_id)
        raw_path = self.root / "raw" / f"{sample_id}.png"
        return Sample(sample_id, int(match.group(1)), datetime.strptime(match.group(2), "%Y%m%d-%H%M%S"),
                      self.root / f"{sample_id}.png", raw_path if raw_path.is_file() else None)

    def samples(self) -> list[Sample]:
        """Every sample, oldest first; files that are not samples are ignored."""
        if not self.root.is_dir():
            return []
        found = [self._sample(path.stem) for path in self.root.glob("*.png") if SAMPLE_ID.match(path.stem)]
        return sorted(found, key=lambda sample: (sample.created, sample.id))

    def __len__(self) -> int:
        return len(self.samples())

    def load(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(images uint8 (n, 28, 28), labels uint8 (n,), ids); unreadable files are skipped."""
        images, labels, ids = [], [], []
        for sample in self.samples():
            try:
                with Image.open(sample.path) as picture:
                    array = np.asarray(picture.convert("L"))
            except (OSError, ValueError):
                continue
            if array.shape == (28, 28):
                images.append(array)
                labels.append(sample.label)
                ids.append(sample.id)
        return (np.array(images, np.uint8).reshape(-1, 28, 28), np.array(labels, np.uint8), ids)

    def delete(self, sample_id: str) -> None:
        if not SAMPLE_ID.match(sample_id or ""):
            raise LabError(f"{shown_value(sample_id)} is not a handwriting sample id.")
        path = self.root / f"{sample_id}.png"
        if not path.is_file():
            raise LabError(f"There is no handwriting sample {shown_value(sample_id)}.")
        path.unlink()
        (self.root / "raw" / f"{sample_id}.png").unlink(missing_ok=True)

    def learner_counts(self) -> dict[str, int]:
        """Samples per learner id, for the teacher."""
        folder = self.base / LEARNERS_FOLDER
        if not folder.is_dir():
            return {}
        return {entry.name: len(HandwritingSet(self.base, entry.name)) for entry in sorted(folder.iterdir())
                if entry.is_dir() and OWNER_ID.match(entry.name)}

    def pool_class_set(self) -> int:
        """Copy every learner's samples into the class set (ids are unique, so nothing clashes); returns
        how many were new."""
        pooled = HandwritingSet.class_set(self.base)
        present = set(pooled.version())
        added = 0
        for owner in self.learner_counts():
            for sample in HandwritingSet(self.base, owner).samples():
                if sample.id in present:
                    continue
                write_atomic(pooled.root / sample.path.name, sample.path.read_bytes())
                if sample.raw_path is not None:
                    (pooled.root / "raw").mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(sample.raw_path, pooled.root / "raw" / sample.raw_path.name)
                added += 1
        return added

    def version(self) -> tuple[str, ...]:
        """The sample ids: changes whenever a sample is added or deleted (a cache key)."""
        return tuple(sample.id for sample in self.samples())
