"""The run directory: its layout, atomic JSON files, the single-writer lock, and reading trials back."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tuner.config import DEFAULT_RUNS_DIR
from tuner.errors import TunerUsageError

SETTINGS_FILE = "settings.json"
PROJECT_NAME = "trials"  # KerasTuner's project folder: RUN/trials/trial_*/trial.json
HISTORY_DIR = "history"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = ".search.lock"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so that a crash at any moment leaves either the old content or the new, never half.

    The data goes to a temporary file in the same folder, is flushed to disk, and then
    replaces the target with one rename, which POSIX makes atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
            temp_file.write(text)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (see atomic_write_text)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any | None:
    """Read a JSON file, or None if it is missing or not valid JSON (e.g. written by an older crash)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class RunPaths:
    """Where each part of a run lives, relative to its root."""

    root: Path

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def project(self) -> Path:
        return self.root / PROJECT_NAME

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    def history(self, trial_id: str) -> Path:
        return self.root / HISTORY_DIR / f"trial_{trial_id}.json"

    def trial_dir(self, trial_id: str) -> Path:
        return self.project / f"trial_{trial_id}"


class RunLock:
    """An exclusive lock on a run directory, held for the life of a search process.

    It is an flock(2) on a file in the run directory: the kernel drops it when the process
    ends in any way, kill -9 included, so a crashed search never leaves a stale lock.
    """

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.paths.lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise TunerUsageError(
                    f"run directory '{self.paths.root}' is in use by {owner}; wait for that search to "
                    f"finish, stop it, or pass another --run-dir."
                ) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None


def latest_run(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """The run under `runs_dir` whose settings were written most recently."""
    candidates = sorted(Path(runs_dir).glob(f"*/{SETTINGS_FILE}"), key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise TunerUsageError(
            f"found no run under '{runs_dir}/' (a folder with {SETTINGS_FILE}); run python search.py "
            f"first or pass --run-dir."
        )
    return candidates[-1].parent


def open_run(run_dir: str | os.PathLike | None) -> tuple[RunPaths, dict[str, Any]]:
    """Find a finished or running run directory and read its settings.

    Args:
        run_dir: the run's folder; None means the most recent run under runs/.

    Returns:
        The run's paths and its settings.json contents.
    """
    root = Path(run_dir) if run_dir is not None else latest_run()
    if not root.is_dir():
        raise TunerUsageError(f"run directory '{root}' does not exist; pass the --run-dir of a search.")
    paths = RunPaths(root)
    settings = read_json(paths.settings)
    if not isinstance(settings, dict) or "search" not in settings:
        raise TunerUsageError(
            f"'{root}' is not a run directory (no readable {SETTINGS_FILE}); pass the --run-dir a search wrote."
        )
    return paths, settings


def best_val_loss(history: list[dict[str, float]]) -> float | None:
    """The lowest finite val_loss of a per-epoch history, or None if no epoch has one."""
    losses = [row["val_loss"] for row in history if isinstance(row.get("val_loss"), (int, float))
              and math.isfinite(row["val_loss"])]
    return min(losses) if losses else None


@dataclass(frozen=True)
class TrialRecord:
    """One trial as read back from disk: KerasTuner's trial.json plus the tool's per-epoch history."""

    trial_id: str
    status: str
    hyperparameters: dict[str, Any]
    message: str | None
    history: list[dict[str, float]]
    seconds: float | None

    @property
    def best_val_loss(self) -> float | None:
        return best_val_loss(self.history)


def iter_trials(paths: RunPaths) -> Iterator[TrialRecord]:
    """Yield every trial whose trial.json is readable, in trial-id order (read-only, safe during a search)."""
    for trial_file in sorted(paths.project.glob("trial_*/trial.json")):
        state = read_json(trial_file)
        if not isinstance(state, dict) or "trial_id" not in state:
            continue
        trial_id = str(state["trial_id"])
        history = read_json(paths.history(trial_id)) or {}
        values = state.get("hyperparameters", {}).get("values", {})
        yield TrialRecord(
            trial_id=trial_id,
            status=str(state.get("status", "UNKNOWN")),
            hyperparameters={name: value for name, value in values.items() if not name.startswith("tuner/")},
            message=state.get("message"),
            history=list(history.get("epochs", [])),
            seconds=history.get("seconds"),
        )


def failure_reason(message: str | None) -> str:
    """The last line of a failed trial's traceback, without the exception's module path."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return "unknown reason"
    last = lines[-1]
    head, separator, rest = last.partition(": ")
    # "keras_tuner.src.errors.FailedTrialError: 3 conv+pool blocks need ..." -> the message.
    if separator and " " not in head:
        return rest
    return last
