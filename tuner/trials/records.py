"""A run's trials read back from disk: statuses, per-epoch curves, and the finite-val_loss rule (report rows: tuner.trials.rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tuner.files import read_json_or_problem
from tuner.model.footprint import Footprint, footprint_problem
from tuner.rundir import Run, RunRecord
from tuner.rundir.checks import (
    TUNER_VALUE_PREFIX,
    RunLimits,
    curve_problem,
    epoch_problem,
    is_finite_real,
    metric_problem,
    score_problem,
    values_problem,
)
from tuner.trials.schedule import halving_problem, place_disagreement, schedule_problems

# KerasTuner 1.4.8's trial statuses (keras_tuner.engine.trial.TrialStatus holds these same strings); they are
# written here once so that reading a run back never needs to import KerasTuner and TensorFlow.
RUNNING = "RUNNING"
IDLE = "IDLE"
INVALID = "INVALID"
STOPPED = "STOPPED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
# This tool's own status: a trial stopped by the pruner. KerasTuner records it as COMPLETED, with its
# best val_loss so far as the score, so every oracle learns from it and no resume runs it again; the
# pruner's verdict is kept in the trial's curve file, where TrialRecord reads it.
PRUNED = "PRUNED"
# Every status KerasTuner writes into a trial.json.
STATUSES = (RUNNING, IDLE, INVALID, STOPPED, COMPLETED, FAILED)
# Trials with a result, ranked together by their best val_loss.
RANKED = (COMPLETED, PRUNED)
# A finished trial is never run again, by a resume, a restarted chief or another worker.
FINISHED = (COMPLETED, PRUNED, FAILED)


def is_finite_number(value: Any) -> bool:
    """True for a real, finite number: a val_loss of NaN or infinity (a diverged epoch) never counts, nor an int
    beyond a float's range (math.isfinite would raise on it)."""
    return is_finite_real(value)


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch row with the lowest finite val_loss of a per-epoch history, or None if no epoch has one."""
    epochs = [row for row in history if is_finite_number(row.get("val_loss"))]
    return min(epochs, key=lambda row: row["val_loss"]) if epochs else None


def best_val_loss(history: list[dict[str, Any]]) -> float | None:
    """The lowest finite val_loss of a per-epoch history, or None if no epoch has one."""
    best = best_epoch(history)
    return None if best is None else float(best["val_loss"])


@dataclass(frozen=True)
class TrialRecord:
    """One trial as read back from disk: KerasTuner's trial.json plus the tool's per-epoch history.

    `status` is KerasTuner's, except PRUNED for a trial the pruner stopped; `pruned` is then
    the pruner's verdict (epoch, best_val_loss, median, trials). `footprint` is the trained
    model's size and speed, None where it was not measured (a run from before it was).
    `score` and `best_step` are KerasTuner's own record of the best epoch, which still ranks
    a trial whose history file is gone. `halving` is a successive-halving trial's place (rung,
    every rung's epochs, the trial it continues; its history then starts with that trial's). `schedule` is the
    trial's `tuner/` values (Hyperband's and asha's place: round, epochs, the trial it continues), {} for others.
    """

    trial_id: str
    status: str
    hyperparameters: dict[str, Any]
    message: str | None
    history: list[dict[str, Any]]
    seconds: float | None
    score: float | None = None
    best_step: int | None = None
    pruned: dict[str, Any] | None = None
    footprint: Footprint | None = None
    halving: dict[str, Any] | None = None
    schedule: dict[str, Any] = field(default_factory=dict)

    @property
    def continues(self) -> str | None:
        """The trial this one continues at a higher rung of successive halving, None for any other."""
        return self.halving.get("continues") if self.halving else None

    @property
    def below_top_rung(self) -> bool:
        """True for a successive-halving trial trained to a rung below the full epochs."""
        return bool(self.halving) and self.halving["rung"] < len(self.halving["epochs"]) - 1

    @property
    def best_val_loss(self) -> float | None:
        return best_val_loss(self.history)

    def best_epoch(self) -> dict[str, Any] | None:
        """The best epoch's row (epoch, val_loss, ...), from the history or else from KerasTuner's score."""
        best = best_epoch(self.history)
        if best is None and is_finite_number(self.score):
            best = {"val_loss": float(self.score), "epoch": self.best_step + 1 if self.best_step is not None else None}
        return best


@dataclass(frozen=True)
class DamagedFile:
    """A state file of a run that cannot be read as what it should be."""

    path: Path
    problem: str

    def describe(self) -> str:
        return f"'{self.path}' is damaged ({self.problem})"


def trial_state_problem(state: Any, limits: RunLimits = RunLimits(), folder: Path | None = None) -> str | None:
    """What is wrong with the contents of a KerasTuner trial.json, or None if this tool can read it.

    Its shape first; then, against the run's `limits` and its `folder` (trials/trial_<id>) where
    given, its values: the id is the folder's, the status one KerasTuner writes, the
    hyperparameters within the run's space, the best epoch within its epochs.
    """
    if state is None:
        return "not valid JSON"
    if not isinstance(state, dict):
        return "not a JSON object"
    if not isinstance(state.get("trial_id"), str) or not state["trial_id"]:
        return "no trial_id"
    if not isinstance(state.get("status"), str):
        return "no status"
    hyperparameters = state.get("hyperparameters")
    if not isinstance(hyperparameters, dict) or not isinstance(hyperparameters.get("values"), dict):
        return "no hyperparameter values"
    if folder is not None and folder.name != f"trial_{state['trial_id']}":
        return f"its trial_id {state['trial_id']!r} is not its folder's ({folder.name})"
    if state["status"] not in STATUSES:
        return f"status {state['status']!r} is none of KerasTuner's ({', '.join(STATUSES)})"
    return values_problem(hyperparameters["values"], limits) or score_problem(state.get("score"), state.get("best_step"), limits)


def curve_file_problems(data: Any, trial_id: str, limits: RunLimits) -> dict[str, str]:
    """What is wrong with each part of a trial's history file (a part -> the problem); {} for a sound one.

    The parts are "file" (not a history of this trial: nothing of it is used), "epochs", "seconds",
    "pruned", "footprint" and "halving"; a trial is still read with the parts that are sound.
    """
    if not isinstance(data, dict) or not isinstance(data.get("epochs", []), list):
        return {"file": "not a per-epoch history"}
    if "trial_id" in data and data["trial_id"] != trial_id:
        return {"file": f"it is the curve of trial {data['trial_id']!r}, not {trial_id!r}"}
    problems = {
        "epochs": curve_problem(data.get("epochs", []), limits),
        "seconds": metric_problem("seconds", data.get("seconds")),
        "pruned": None if data.get("pruned") is None else
        epoch_problem(data["pruned"].get("epoch"), limits, "pruned epoch") if isinstance(data["pruned"], dict)
        else "its pruning verdict is not an object",
        "footprint": footprint_problem(data["footprint"]) if "footprint" in data else None,
        "halving": halving_problem(data["halving"], limits) if "halving" in data else None,
    }
    return {part: problem for part, problem in problems.items() if problem}


def scan_trials(run: Run, record: RunRecord | None = None) -> tuple[list[TrialRecord], list[DamagedFile]]:
    """Every trial of a run, in trial-id order, and the trial files that could not be read (read-only).

    KerasTuner's files are written atomically (search/kerastuner.py: configure_keras_tuner), so a file that
    does not parse, or holds a value the run could not have written (an epoch past its
    --epochs, a hyperparameter outside its space, another trial's id), was damaged after the
    fact: it is returned, never skipped silently. A damaged history file (the tool's per-epoch
    curve) is returned too; its trial is still read with the parts that are sound, ranked by
    KerasTuner's own record of its best epoch if the curve is lost.

    Args:
        run: the run directory.
        record: its settings.json (read from the run when not given), whose epochs and space bound the values.
    """
    limits = RunLimits.of(record if record is not None else run.read_record())
    records: list[TrialRecord] = []
    damaged: list[DamagedFile] = []
    states: dict[str, dict[str, Any]] = {}
    unreadable: set[str] = set()
    for trial_file in sorted(run.project.glob("trial_*/trial.json")):
        state, problem = read_json_or_problem(trial_file, "trial")
        problem = problem or trial_state_problem(state, limits, trial_file.parent)
        if problem:
            damaged.append(DamagedFile(trial_file, problem))
            unreadable.add(trial_file.parent.name.removeprefix("trial_"))
        else:
            states[state["trial_id"]] = state
    # A curve file is written while its trial trains, long after KerasTuner wrote the trial's file: a curve
    # without one is a trial whose file was lost, never a trial a kill interrupted.
    for history_file in sorted(run.history_dir.glob("trial_*.json")) if run.history_dir.is_dir() else []:
        trial_id = history_file.stem.removeprefix("trial_")
        if trial_id not in states and trial_id not in unreadable:
            problem = f"missing, but the trial has a curve ({history_file.name})"
            damaged.append(DamagedFile(run.trial_state(trial_id), problem))
            unreadable.add(trial_id)
    # Likewise the trial's folder: KerasTuner writes trial.json first, the checkpoints only once the trial trains (a
    # kill between making the folder and writing the file leaves it empty, which is no damage).
    for folder in sorted(run.project.glob("trial_*")) if run.project.is_dir() else []:
        trial_id = folder.name.removeprefix("trial_")
        if trial_id not in states and trial_id not in unreadable and folder.is_dir() and any(folder.iterdir()):
            damaged.append(DamagedFile(folder / "trial.json", "missing, but the trial's folder holds its other files"))
            unreadable.add(trial_id)
    completed = {trial_id for trial_id, state in states.items() if state["status"] == COMPLETED}
    schedule = schedule_problems({trial_id: state["hyperparameters"]["values"] for trial_id, state in states.items()},
                                 completed, unreadable)
    for trial_id, state in sorted(states.items()):
        if trial_id in schedule:
            damaged.append(DamagedFile(run.trial_state(trial_id), schedule[trial_id]))
            continue
        history_file = run.history(trial_id)
        history, unread = read_json_or_problem(history_file, "curve") if history_file.exists() else ({}, None)
        problems = {"file": unread} if unread else curve_file_problems(history, trial_id, limits)
        if "file" not in problems and "halving" not in problems and "halving" in history:
            problems.update(halving=place_disagreement(history["halving"], state["hyperparameters"]["values"]))
            problems = {part: problem for part, problem in problems.items() if problem}
        if problems:
            damaged.append(DamagedFile(history_file, "; ".join(problems.values())))
        history = {} if "file" in problems else {part: value for part, value in history.items() if part not in problems}
        values = state["hyperparameters"]["values"]
        step = state.get("best_step")
        status = state["status"]
        pruned = history.get("pruned")
        records.append(TrialRecord(
            trial_id=trial_id,
            status=PRUNED if status == COMPLETED and pruned else status,
            hyperparameters={name: value for name, value in values.items() if not name.startswith(TUNER_VALUE_PREFIX)},
            message=state.get("message") if isinstance(state.get("message"), str) else None,
            history=history.get("epochs", []),
            seconds=history.get("seconds"),
            score=state.get("score") if is_finite_number(state.get("score")) else None,
            best_step=step,
            pruned=pruned,
            footprint=Footprint.from_json(history.get("footprint")),
            halving=history.get("halving"),
            schedule={name: value for name, value in values.items() if name.startswith(TUNER_VALUE_PREFIX)},
        ))
    return records, damaged


def iter_trials(run: Run) -> Iterator[TrialRecord]:
    """Yield every readable trial, in trial-id order (read-only, safe during a search); see scan_trials for the rest."""
    yield from scan_trials(run)[0]


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
