"""The run directory: one Run names every artifact, settings.json is a typed RunRecord, and one search holds the lock."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import shutil
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.cache import PreparedDataset, dataset_identity, load_prepared
from tuner.config import DEFAULT_RUNS_DIR, RUN_DEFINING_FIELDS, SearchSettings, flag_of, settings_to_dict
from tuner.errors import TunerUsageError
from tuner.files import atomic_write_json, read_json

SETTINGS_FILE = "settings.json"
# What report.py saves for predict.py, in RUN/best or wherever a user copies that folder.
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
# report.py's LiteRT exports of the winner, beside model.keras (float, and full-integer with --int8).
FLOAT_FILE = "model.tflite"
INT8_FILE = "model_int8.tflite"
RESULTS_FORMATS = ("csv", "md", "json")


@dataclass(frozen=True)
class Run:
    """Where each part of a run lives. Every module finds a run's files through this one object."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def lock(self) -> Path:
        return self.root / ".search.lock"

    @property
    def project(self) -> Path:
        """KerasTuner's project folder: oracle.json, tuner files and trial_*/ (KerasTuner's project_name)."""
        return self.root / "trials"

    @property
    def oracle_state(self) -> Path:
        return self.project / "oracle.json"

    def tuner_state(self, tuner_id: str) -> Path:
        return self.project / f"{tuner_id}.json"

    def trial_dir(self, trial_id: str) -> Path:
        return self.project / f"trial_{trial_id}"

    def trial_state(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / "trial.json"

    def checkpoint(self, trial_id: str) -> Path:
        """KerasTuner's best-epoch weights of a trial (its Keras 3 file name)."""
        return self.trial_dir(trial_id) / "checkpoint.weights.h5"

    @property
    def history_dir(self) -> Path:
        return self.root / "history"

    def history(self, trial_id: str) -> Path:
        """The tool's per-epoch curve of a trial (KerasTuner keeps only the best epoch)."""
        return self.history_dir / f"trial_{trial_id}.json"

    @property
    def tensorboard(self) -> Path:
        """The TensorBoard root; KerasTuner adds one folder per trial, named by its id."""
        return self.root / "tensorboard"

    def trial_tensorboard(self, trial_id: str) -> Path:
        return self.tensorboard / str(trial_id)

    def trial_footprint_tensorboard(self, trial_id: str) -> Path:
        """A trial's size and speed as scalars, inside the folder where KerasTuner writes its HParams session
        (execution0), so the HParams dashboard shows them as metrics beside the trial's hyperparameters."""
        return self.trial_tensorboard(trial_id) / "execution0" / "footprint"

    @property
    def retrain_tensorboard(self) -> Path:
        return self.tensorboard / "best"

    @property
    def confirm_dir(self) -> Path:
        """report.py's confirm runs: the top configurations trained again under further seeds."""
        return self.root / "confirm"

    def confirm_record(self, trial_id: str, index: int) -> Path:
        """The per-epoch curve of confirm run `index` (1, 2, ...) of a trial's configuration."""
        return self.confirm_dir / f"trial_{trial_id}" / f"seed_{index}.json"

    def confirm_tensorboard(self, trial_id: str, index: int) -> Path:
        return self.tensorboard / "confirm" / f"trial_{trial_id}-seed_{index}"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def results(self, extension: str) -> Path:
        """RUN/results.csv (every ranked trial), RUN/results.md (ranking, failures, notes) or RUN/results.json (all of it and the winner's test score)."""
        if extension not in RESULTS_FORMATS:
            raise ValueError(f"results are written as {', '.join(RESULTS_FORMATS)}, not {extension!r}")
        return self.root / f"results.{extension}"

    @property
    def best(self) -> Path:
        """The published winner: model.keras and metadata.json, swapped in with one rename."""
        return self.root / "best"

    def clear(self) -> None:
        """Remove everything a search and a report wrote, for --overwrite (the lock file stays: it may be held)."""
        for part in (self.project, self.history_dir, self.tensorboard, self.best, self.plots, self.confirm_dir):
            shutil.rmtree(part, ignore_errors=True)
        for extension in RESULTS_FORMATS:
            self.results(extension).unlink(missing_ok=True)
        self.settings.unlink(missing_ok=True)

    def write_record(self, record: RunRecord) -> None:
        atomic_write_json(self.settings, record.to_json())

    def read_record(self) -> RunRecord | None:
        """The run's settings.json as a RunRecord, or None if there is none yet.

        Raises:
            TunerUsageError: settings.json exists but is damaged; it names the file and what to do.
        """
        if not self.settings.exists():
            return None
        data = read_json(self.settings)
        try:
            return RunRecord.from_json(data)
        except (TypeError, ValueError, KeyError) as error:
            raise TunerUsageError(
                f"'{self.settings}' is damaged ({_one_line(error)}), so what this run searched is unknown; "
                f"search it afresh with python search.py --overwrite, or pass another --run-dir."
            ) from None


@dataclass(frozen=True)
class DatasetRecord:
    """Which prepared dataset a run searched: where it was, its identity, and what its images look like."""

    path: str
    identity: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    img_size: int
    color: str

    @classmethod
    def of(cls, dataset: PreparedDataset, path: str | os.PathLike) -> DatasetRecord:
        """The record of a prepared dataset loaded from `path`."""
        return cls(path=str(Path(path).resolve()), identity=dataset_identity(dataset),
                   class_names=tuple(dataset.class_names), input_shape=tuple(dataset.input_shape),
                   img_size=dataset.img_size, color=dataset.color)


@dataclass(frozen=True)
class RunRecord:
    """settings.json: the search settings a run was made with and the dataset it ran on."""

    search: SearchSettings
    dataset: DatasetRecord

    def to_json(self) -> dict[str, Any]:
        return {"search": settings_to_dict(self.search), "dataset": settings_to_dict(self.dataset)}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse settings.json's contents, checking every field's type (raises TypeError/ValueError/KeyError)."""
        if not isinstance(data, dict) or not isinstance(data.get("search"), dict) or not isinstance(data.get("dataset"), dict):
            raise ValueError("expected an object with 'search' and 'dataset' objects")
        # How the search was executed (workers, quiet, ...) does not define the run: a value an older
        # version wrote in another type (e.g. workers as a number) falls back to today's default.
        execution_only = {item.name for item in dataclasses.fields(SearchSettings)} - set(RUN_DEFINING_FIELDS)
        return cls(search=_typed(SearchSettings, data["search"], ignore_unknown=True, lenient=execution_only),
                   dataset=_typed(DatasetRecord, data["dataset"]))

    def difference(self, other: RunRecord) -> str | None:
        """Why a search with `other` cannot resume this run (another space, tuner, training or dataset), or None."""
        for name in RUN_DEFINING_FIELDS:
            old, new = getattr(self.search, name), getattr(other.search, name)
            if old != new:
                return f"was made with {flag_of(name)} {_shown(old)}, not {_shown(new)}"
        if self.dataset.identity != other.dataset.identity:
            return f"was made from another prepared dataset than '{other.dataset.path}' holds now"
        return None


def _typed(record_class: type, values: dict[str, Any], ignore_unknown: bool = False,
           lenient: frozenset[str] | set[str] = frozenset()) -> Any:
    """Build a frozen dataclass from JSON values, refusing a value of the wrong type (lists become tuples).

    A field named in `lenient` with a value of the wrong type is left at its default instead.
    """
    hints = typing.get_type_hints(record_class)
    fields = {item.name: item for item in dataclasses.fields(record_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown and not ignore_unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name, item in fields.items() if name not in values
               and item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    converted = {}
    for name, value in values.items():
        if name not in fields:
            continue  # a field of a newer version: an older tool reads what it knows
        try:
            converted[name] = _as_type(name, value, hints[name])
        except TypeError:
            if name not in lenient:
                raise
    return record_class(**converted)


def _as_type(name: str, value: Any, kind: Any) -> Any:
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return None
    target = next(option for option in options if option is not type(None))
    if typing.get_origin(target) is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        return tuple(_as_type(name, item, typing.get_args(target)[0]) for item in value)
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # JSON's true/false are Python ints too; a flag that takes a number must not accept them.
    if not isinstance(value, target) or (isinstance(value, bool) and target is not bool):
        raise TypeError(f"{name} must be {target.__name__}, got {type(value).__name__} {value!r}")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class RunLock:
    """An exclusive lock on a run directory, held for the life of a search process.

    It is an flock(2) on a file in the run directory: the kernel drops it when the process
    ends in any way, kill -9 included, so a crashed search never leaves a stale lock.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        self.run.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.run.lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise TunerUsageError(
                    f"run directory '{self.run.root}' is in use by {owner}; wait for that search to "
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


def latest_run(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Run:
    """The run under `runs_dir` whose settings were written most recently."""
    candidates = sorted(Path(runs_dir).glob(f"*/{SETTINGS_FILE}"), key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise TunerUsageError(
            f"found no run under '{runs_dir}/' (a folder with {SETTINGS_FILE}); run python search.py "
            f"first or pass --run-dir."
        )
    return Run(candidates[-1].parent)


def open_run(run_dir: str | os.PathLike | None) -> tuple[Run, RunRecord]:
    """Find a finished or running run directory and read its record.

    Args:
        run_dir: the run's folder; None means the most recent run under runs/.

    Returns:
        The run and its settings.json as a RunRecord.
    """
    run = Run(run_dir) if run_dir is not None else latest_run()
    if not run.root.is_dir():
        raise TunerUsageError(f"run directory '{run.root}' does not exist; pass the --run-dir of a search.")
    if not run.settings.exists():
        raise TunerUsageError(
            f"'{run.root}' is not a run directory (no {SETTINGS_FILE}); pass the --run-dir a search wrote."
        )
    record = run.read_record()
    if record is None:  # removed since the check above
        raise TunerUsageError(f"'{run.settings}' disappeared while reading it; pass the --run-dir a search wrote.")
    return run, record


def load_run_dataset(record: RunRecord) -> PreparedDataset:
    """Load the prepared dataset a run was searched on, refusing it if it changed since."""
    try:
        dataset = load_prepared(record.dataset.path)
    except TunerUsageError as error:
        raise TunerUsageError(f"the dataset this run was searched on cannot be loaded: {error}") from None
    identity = dataset_identity(dataset)
    if identity != record.dataset.identity:
        raise TunerUsageError(
            f"the prepared dataset at '{record.dataset.path}' changed since this run's search (identity {identity}, "
            f"the run recorded {record.dataset.identity}); prepare it again as before, or search it anew with --overwrite."
        )
    return dataset
