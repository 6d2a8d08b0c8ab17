"""Where each part of a run lives: one Run names every file of a run directory, with the names of the winner's files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tuner.errors import TunerUsageError
from tuner.files import atomic_write_json, read_json
from tuner.rundir.record import NewerFormatError, RunRecord

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
        """KerasTuner's project folder: the oracle's and the tuners' state, and trial_*/ (KerasTuner's project_name).

        The files KerasTuner names inside it (its oracle's state, a trial's checkpoint) are the KerasTuner adapter's
        to name (search/kerastuner.py: oracle_state_path, checkpoint_path).
        """
        return self.root / "trials"

    def tuner_state(self, tuner_id: str) -> Path:
        return self.project / f"{tuner_id}.json"

    def trial_dir(self, trial_id: str) -> Path:
        return self.project / f"trial_{trial_id}"

    def trial_state(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / "trial.json"

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

    @property
    def retrain_tensorboard(self) -> Path:
        return self.tensorboard / "best"

    @property
    def confirm_dir(self) -> Path:
        """The confirm runs (of the search, or of report.py): the top configurations trained again under further seeds."""
        return self.root / "confirm"

    def confirm_record(self, trial_id: str, index: int) -> Path:
        """The per-epoch curve of confirm run `index` (1, 2, ...) of a trial's configuration."""
        return self.confirm_dir / f"trial_{trial_id}" / f"seed_{index}.json"

    def confirm_records(self) -> list[Path]:
        """Every saved confirm run's record."""
        return sorted(self.confirm_dir.glob("trial_*/seed_*.json"))

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
    def html(self) -> Path:
        """RUN/report.html: the whole report in one self-contained page."""
        return self.root / "report.html"

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
        self.html.unlink(missing_ok=True)
        self.settings.unlink(missing_ok=True)

    def write_record(self, record: RunRecord) -> None:
        atomic_write_json(self.settings, record.to_json())

    def read_record(self) -> RunRecord | None:
        """The run's settings.json as a RunRecord, or None if there is none yet.

        Raises:
            TunerUsageError: settings.json exists but is damaged, or of a format_version newer than this
                code reads; it names the file and what to do.
        """
        if not self.settings.exists():
            return None
        data = read_json(self.settings, kind="settings")
        try:
            return RunRecord.from_json(data)
        except NewerFormatError as error:
            raise TunerUsageError(f"'{self.settings}' {error}") from None
        except (TypeError, ValueError, KeyError) as error:
            raise TunerUsageError(
                f"'{self.settings}' is damaged ({_one_line(error)}), so what this run searched is unknown; "
                f"search it afresh with python search.py --overwrite, or pass another --run-dir."
            ) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
