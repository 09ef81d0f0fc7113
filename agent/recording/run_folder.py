"""A run folder and every file written into it: the run's own files (camera.png,
calibration.json, overlay.png, plan.json, result.json, final.png, the workcell's records such as
scene.json) and the flight record's under `record/`. Everything written is redacted first, so an
API key pasted anywhere never reaches a file.

A run folder belongs to one run (`RunFolder.claim`), so a record never mixes two runs' files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from erarm.agent import interrupts
from erarm.agent.overlay import save_png
from erarm.agent.redaction import redact
from erarm.robots.errors import ConfigError

RECORD = "record"
OWNER = ".erarm-run"  # created atomically by the one run a run folder belongs to
# what a run (or a bench) leaves: a folder holding any of them is another run's
RUN_FILES = ("result.json", "plan.json", "scene.json", "camera.png", "bench.json", RECORD)


class RunFolder:
    """A run folder, owned by one run: `claim` creates its owner file atomically (O_EXCL), so
    of two runs given one folder, at once or one after the other, only the first gets it."""

    def __init__(self, path: Path, created: bool = False):
        self.path, self.created = path, created

    @classmethod
    def claim(cls, path: Path) -> RunFolder:
        """Claim `path` for this run; a one-line `ConfigError` (nothing written) when it is a
        file, cannot be created or written, or holds another run."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"run folder {path} is a file, not a folder: choose another --out")
        created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create the run folder {path}: "
                              f"{err.strerror or err}") from None
        traces = [name for name in RUN_FILES if (path / name).exists()]
        if (path / OWNER).exists() or traces:
            what = ", ".join(traces) or OWNER
            raise ConfigError(f"run folder {path} holds another run ({what}): a run folder "
                              "belongs to one run, choose a new --out")
        try:
            descriptor = os.open(path / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConfigError(f"run folder {path} is being used by another run: a run folder "
                              "belongs to one run, choose a new --out") from None
        except OSError as err:
            raise ConfigError(f"cannot write to the run folder {path}: "
                              f"{err.strerror or err}") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as owner:
            owner.write(json.dumps({"pid": os.getpid(), "started": time.time()}) + "\n")
        return cls(path, created)

    def abandon(self) -> None:
        """Give the folder back when the run never started (its workcell could not be opened):
        the owner file goes, and the folder too if this run created it and it is empty."""
        (self.path / OWNER).unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.path.rmdir()

    @classmethod
    def claim_new(cls, path: Path) -> RunFolder:
        """A default run folder: `path`, or `path-2`, `path-3`, ... when runs started in the same
        second took the first."""
        for number in range(1, 1000):
            candidate = path if number == 1 else path.with_name(f"{path.name}-{number}")
            if (candidate.is_dir() and any(candidate.iterdir())) or candidate.is_file():
                continue
            try:
                return cls.claim(candidate)
            except ConfigError:
                if not (candidate / OWNER).exists():
                    raise  # not a race lost to another run: a real problem
        raise ConfigError(f"cannot find a free run folder next to {path}")

    # -- writing: the only place a run's files are written -----------------------------------

    def write_text(self, name: str, text: str) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text))

    def write_json(self, name: str, document: object) -> None:
        self.write_text(name, json.dumps(document, indent=2, default=str))

    def write_model(self, name: str, model: BaseModel) -> None:
        self.write_text(name, model.model_dump_json(indent=2))

    def append_line(self, name: str, record: dict) -> None:
        """One JSON line appended to a log (the flight record's JSONL files)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(redact(json.dumps(record, default=str)) + "\n")

    def write_bytes(self, name: str, data: bytes) -> None:
        """Media as sent (a JPEG frame, PCM audio): never text, so nothing in it to redact."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def write_png(self, name: str, rgb: np.ndarray) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(path, rgb)

    def write_result(self, result: BaseModel) -> None:
        """result.json; a signal waits until it is whole."""
        with interrupts.deferred():
            self.write_model("result.json", result)
