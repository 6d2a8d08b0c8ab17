"""Confirm runs: the top configurations trained again under further seeds, so the winner is not one lucky draw.

The search trains each configuration once, and the lowest of many noisy val_loss values is
usually lower than its configuration deserves (the winner's curse). So the top K configurations
are trained R more times each, on the same train/validation split and with the search's epochs
and early stopping, and report.py ranks them by the mean of their best val_loss over all seeds
(the search's own run is one of them, unless it was truncated).

This module says which runs there are, trains and saves one, and reads them back; execution/ runs
them: the search on its own worker processes once its trials are done (distributed/confirm_service.py),
report.py only those still missing (a larger --confirm, another budget, a run of settings.json format 1
whose search trained none), in its own process or on its job pool (execution/confirming.py). Each confirm run is saved to RUN/confirm/trial_<id>/seed_<n>.json in one atomic write when it
has finished, so a killed search or report re-runs only the missing ones and the next one reuses
them. Each is seeded on its own, so its numbers do not depend on which process trained it.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from tuner.data.cache import PreparedDataset
from tuner.config import SearchSettings
from tuner.confirm.selection import beats_champion, seed_noise
from tuner.errors import TunerUsageError
from tuner.files import atomic_write_json, read_json
from tuner.trials.rows import TrialRow
from tuner.rundir import Run, RunRecord
from tuner.rundir.checks import RunLimits, curve_problem, metric_problem, shown_number
from tuner.stats import mean_and_std
from tuner.trials.records import best_epoch, is_finite_number, iter_trials

log = logging.getLogger(__name__)

# What to do about a damaged confirm run record: it is only a saved result, which the next step trains again.
CONFIRM_REMEDY = "delete it, and the next search.py or report.py on this run retrains it"
# Confirm seeds sit this far above the search's trial seeds (seed + trial number), so none repeats a trial's.
SEED_STRIDE = 100_003


@dataclass(frozen=True)
class Confirmation:
    """One configuration's best val_loss (and its epoch) under every seed: the search's run first, unless it was
    truncated (pruned, or a low rung), then the confirm runs only."""

    trial_id: str
    val_losses: list[float]
    best_epochs: list[int]

    @property
    def mean(self) -> float:
        # A seed that diverged (no finite val_loss) makes the configuration untrustworthy: it ranks last.
        finite = bool(self.val_losses) and all(map(math.isfinite, self.val_losses))
        return mean_and_std(self.val_losses)[0] if finite else math.inf

    @property
    def std(self) -> float | None:
        return mean_and_std(self.val_losses)[1] if math.isfinite(self.mean) else None

    @property
    def median_best_epoch(self) -> int:
        return int(round(statistics.median(self.best_epochs))) if self.best_epochs else 0


def confirm_seed(base_seed: int, trial_id: str, index: int) -> int:
    """The seed of confirm run `index` (1, 2, ...) of a trial: never one a search's trial used."""
    return (base_seed + int(trial_id) + SEED_STRIDE * index) % 2**32


def missing_jobs(run: Run, record: RunRecord, chosen: Sequence[TrialRow], seeds: int) -> list[dict[str, Any]]:
    """The confirm runs of `chosen` under seeds 1..`seeds` that are not saved yet, as jobs for train_confirm_run;
    says how many when there are any.

    Raises:
        TunerUsageError: a saved confirm run is damaged (read_confirm_run).
    """
    jobs = [{"trial": row.trial, "hyperparameters": row.configuration(), "index": index}
            for row in chosen for index in range(1, seeds + 1) if read_confirm_run(run, row, index, record) is None]
    if jobs:
        log.info("Confirming the top %d configuration(s) with %d more seed(s) each: %d run(s) to train, %d saved.",
                 len(chosen), seeds, len(jobs), len(chosen) * seeds - len(jobs))
    return jobs


def train_confirm_run(run: Run, record: RunRecord, dataset: PreparedDataset, job: dict[str, Any]) -> dict[str, Any]:
    """Train one confirm run and save it in one atomic write when it has finished, in this process or a worker.

    Args:
        run: the run directory.
        record: the run's settings.json.
        dataset: the run's prepared dataset.
        job: {"trial": id, "hyperparameters": the configuration, "index": the seed's number, 1, 2, ...}.

    Returns:
        The record written to RUN/confirm/trial_<id>/seed_<n>.json.
    """
    started = time.monotonic()
    trial, values, index = job["trial"], job["hyperparameters"], job["index"]
    seed = confirm_seed(record.search.seed, trial, index)
    epochs = train_configuration(record.search, dataset, values, seed, run.confirm_tensorboard(trial, index))
    saved = {"trial": trial, "index": index, "seed": seed, "hyperparameters": values, "epochs": epochs,
             "seconds": round(time.monotonic() - started, 3)}
    atomic_write_json(run.confirm_record(trial, index), saved)
    return saved


def confirmations(run: Run, record: RunRecord, chosen: Sequence[TrialRow], seeds: int) -> list[Confirmation]:
    """Each of `chosen` with its search run and its confirm runs under seeds 1..`seeds`, a missing one as inf."""
    return [_confirmation(run, record, row, range(1, seeds + 1)) for row in chosen]


def saved_confirmations(run: Run, record: RunRecord, ranked: Sequence[TrialRow]) -> list[Confirmation]:
    """The configurations of `ranked` that have saved confirm runs, each with its seeds 1, 2, ... saved so far.

    Reads only files, so it never trains: what trials_dataframe shows of a past report.
    """
    found = []
    for row in ranked:
        count = 0
        while run.confirm_record(row.trial, count + 1).exists():
            count += 1
        if count:
            found.append(_confirmation(run, record, row, range(1, count + 1)))
    return found


def _confirmation(run: Run, record: RunRecord, row: TrialRow, indexes: Iterable[int]) -> Confirmation:
    # A truncated search run (pruned, or stopped at a low rung of successive halving) never trained to the
    # full epochs, so its val_loss says little of the configuration: only the full-length confirm runs count.
    truncated = row.pruned is not None
    losses = [] if truncated else [float(row.val_loss)]
    epochs = [] if truncated else [int(row.best_epoch or record.search.epochs)]
    for index in indexes:
        best = read_confirm_run(run, row, index, record)
        losses.append(float(best["val_loss"]) if best else math.inf)
        if best:
            epochs.append(int(best["epoch"]))
    return Confirmation(row.trial, losses, epochs)


def read_confirm_run(run: Run, row: TrialRow, index: int, record: RunRecord | None = None) -> dict[str, Any] | None:
    """The saved confirm run's best epoch row ({} when it diverged), or None if it has not run yet.

    Its epochs are checked against the run's (settings.json: `record`, read from the run when not given).

    Raises:
        TunerUsageError: the file exists but is not a finished confirm run of this configuration.
    """
    path = run.confirm_record(row.trial, index)
    if not path.exists():
        return None
    data = read_json(path, kind="confirm")
    problem = record_problem(data, row.trial, index, row.configuration(), record if record is not None else run.read_record())
    if problem:
        raise TunerUsageError(f"'{path}' is damaged: {problem}; {CONFIRM_REMEDY}.")
    return best_epoch(data["epochs"]) or {}


def refuse_damaged_records(run: Run, record: RunRecord) -> None:
    """Refuse a saved confirm run that is not a whole run of its trial's configuration before a resume writes
    anything (read_confirm_run checks the chosen ones again when it reads them, after the trials). A search that
    confirms nothing reads none; a record of a trial whose file is damaged is left to that file's refusal.

    Raises:
        TunerUsageError: naming the first damaged record.
    """
    if record.search.confirm_counts == (0, 0):
        return
    configurations = {trial.trial_id: trial.hyperparameters for trial in iter_trials(run)}
    for path in run.confirm_records():
        trial, index = path.parent.name.removeprefix("trial_"), path.stem.removeprefix("seed_")
        if trial in configurations and index.isdigit():
            problem = record_problem(read_json(path, kind="confirm"), trial, int(index), configurations[trial], record)
            if problem:
                raise TunerUsageError(f"'{path}' is damaged: {problem}; {CONFIRM_REMEDY}.")


def record_problem(data: Any, trial: str, index: int, configuration: dict[str, Any], record: RunRecord | None) -> str | None:
    """What is wrong with a saved confirm run of `trial`'s `configuration` under seed `index`, or None.

    Checked against the run's settings (`record`; its epochs, patience and seed) where known.
    """
    epochs = data.get("epochs") if isinstance(data, dict) else None
    if not isinstance(epochs, list) or not all(_is_epoch_row(item) for item in epochs):
        return "it is not a confirm run's record (an object with a list of epochs)"
    if data.get("hyperparameters") != configuration:
        return f"it holds another configuration than trial {trial}'s"
    if data.get("trial") != trial or data.get("index") != index:
        return f"it names trial {data.get('trial')!r} seed {data.get('index')!r}, not trial {trial} seed {index}"
    whole = _completeness_problem(data, record.search, trial, index) if record is not None else None
    return curve_problem(epochs, RunLimits.of(record)) or whole or metric_problem("seconds", data.get("seconds"))


def _completeness_problem(data: dict[str, Any], search: SearchSettings, trial: str, index: int) -> str | None:
    """What makes a confirm record (its epochs already checked one by one) not a whole run of its seed, or None.

    train_confirm_run saves a run only once its fit has ended, and the fit records every epoch from 1; it ends
    before --epochs only by early stopping, which needs --patience epochs without a better val_loss first. A
    record short of that, or with no epochs at all, would rank its configuration by a run that never was.
    """
    epochs = [item["epoch"] for item in data["epochs"]]
    if not epochs:
        return "it has no epochs"
    if epochs != list(range(1, len(epochs) + 1)):
        return f"its epochs {_shown_epochs(epochs)} are not 1, 2, ... with none missing"
    if len(epochs) < search.epochs and not (search.patience and len(epochs) > search.patience):
        stopping = f"--patience {search.patience} stops no earlier than epoch {search.patience + 1}" if search.patience \
            else "--patience 0 never stops early"
        return f"it ends at epoch {len(epochs)} of the run's {search.epochs}, but {stopping}"
    seed = confirm_seed(search.seed, trial, index)
    if data.get("seed") != seed or isinstance(data.get("seed"), bool):
        return f"its seed {shown_number(data.get('seed'))} is not {seed}, trial {trial}'s confirm seed {index}"
    return None


def _shown_epochs(epochs: list[int]) -> str:
    """A list of epoch numbers for a message, cut short past ten."""
    return " ".join(map(shown_number, epochs[:10])) + (" ..." if len(epochs) > 10 else "")


def rank_confirmed(ranked: Sequence[TrialRow], confirmations: Sequence[Confirmation],
                   champion: str | None = None) -> list[TrialRow]:
    """The ranking with the confirmed configurations first, ordered by their mean best val_loss over seeds, except
    that a confirmed `champion` (selection.champion_trial) comes before every challenger that does not beat it by
    more than the seed noise (selection.beats_champion).

    The rows not confirmed keep their order after them, as ranked by their one val_loss, and
    every row is numbered again 1, 2, 3... The confirmed rows carry their seeds, mean and std of
    val_loss and median best epoch (rows.CONFIRM_COLUMNS); the others None.
    """
    by_trial = {item.trial_id: item for item in confirmations}
    confirmed = sorted((row for row in ranked if row.trial in by_trial),
                       key=lambda row: (by_trial[row.trial].mean, row.rank))
    if champion in by_trial:
        confirmed = _champion_placed(confirmed, by_trial, champion)
    rest = [row for row in ranked if row.trial not in by_trial]
    result = []
    for position, row in enumerate([*confirmed, *rest], start=1):
        item = by_trial.get(row.trial)
        if item is None:
            result.append(replace(row, rank=position, seeds=None, mean_val_loss=None, std_val_loss=None,
                                  median_best_epoch=None))
        else:
            result.append(replace(row, rank=position, seeds=len(item.val_losses),
                                  mean_val_loss=item.mean if math.isfinite(item.mean) else None,
                                  std_val_loss=item.std, median_best_epoch=item.median_best_epoch))
    return result


def _champion_placed(confirmed: list[TrialRow], by_trial: dict[str, Confirmation], champion: str) -> list[TrialRow]:
    """`confirmed` (by mean) with the challengers that clearly beat the champion first, then the champion, then the
    others: a challenger with fewer runs (a truncated search run counts none) needs a larger margin, so one with a
    lower mean may not beat the champion where one after it does."""
    held = by_trial[champion].val_losses
    noise = seed_noise([item.val_losses for item in by_trial.values()], by_trial[champion].mean)
    challengers = [row for row in confirmed if row.trial != champion]
    beaten_by = [row for row in challengers if beats_champion(by_trial[row.trial].val_losses, held, noise)]
    champion_row = next(row for row in confirmed if row.trial == champion)
    return [*beaten_by, champion_row, *(row for row in challengers if row not in beaten_by)]


def train_configuration(search: SearchSettings, dataset: PreparedDataset, values: dict[str, Any], seed: int,
                        log_dir: Path | None = None) -> list[dict[str, Any]]:
    """Train one configuration on the train split as a search's trial is trained, under `seed`.

    Same epochs, batch size, pipeline, early stopping and trainer (training.fit) as the search;
    no pruning. Returns the per-epoch rows (training.curve_row: epoch, loss, accuracy, val_loss,
    val_accuracy, seconds), a non-finite value as None.
    """
    import keras

    from tuner.model.hypermodel import build_hypermodel, build_model
    from tuner.model.pipeline import search_pipelines
    from tuner.model.training import TrainingPlan, build_callbacks, fit

    keras.utils.set_random_seed(seed)
    model = build_model(build_hypermodel(search, dataset), values)
    train, validation = search_pipelines(dataset, search.batch_size, seed)
    if log_dir is not None:
        shutil.rmtree(log_dir, ignore_errors=True)  # a re-run replaces an interrupted run's curve
    callbacks, curve = build_callbacks(TrainingPlan(tensorboard_dir=log_dir, patience=search.patience))
    fit(model, train, validation, epochs=search.epochs, callbacks=callbacks)
    keras.backend.clear_session()
    return curve.epochs


def _is_epoch_row(item: Any) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("epoch"), int) and not isinstance(item.get("epoch"), bool)
            and (item.get("val_loss") is None or is_finite_number(item.get("val_loss"))))

