"""A trial that continues an earlier trial's training: from its last epoch, with the optimizer's state it had."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import keras_tuner

from tuner.errors import TunerUsageError
from tuner.files import UnreadableFileError, check_regular_file
from tuner.rundir import Run
from tuner.search.halving import CONTINUES, EPOCHS, INITIAL_EPOCH
from tuner.search.kerastuner import HookedTuner
from tuner.trials.records import FINISHED, RANKED, DamagedFile, TrialRecord

# The weights and optimizer state of a trial's last epoch, beside KerasTuner's best-epoch checkpoint.
LAST_EPOCH_WEIGHTS = "last_epoch.weights.h5"
# What to do about a source's weights that are missing or damaged: the trials that continue it cannot run without them.
REMEDY = "restore it from a backup, or start the search afresh with --overwrite (its trials so far are lost)"


class SourceWeightsError(TunerUsageError, keras_tuner.errors.FatalError):
    """A promoted trial's source weights are missing or damaged: bad input (exit 2), and fatal to KerasTuner, which
    would otherwise record a failed trial with h5py's message and go on."""


def weights_problem(path: Path) -> str | None:
    """What is wrong with a Keras weights file (.weights.h5) as a promoted trial would load it, or None.

    Every array is read, as load_weights does, so a file cut short or overwritten in the middle is found here,
    before a trial is handed out, rather than half-way into loading a model.
    """
    try:
        check_regular_file(path, "checkpoint")  # h5py would block on a FIFO and read a device without end
    except FileNotFoundError:
        return "missing"
    except UnreadableFileError as error:
        return error.problem
    import h5py

    def read(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as weights:
            weights.visititems(read)
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError or ValueError for a damaged file
        return f"not a readable weights file: {' '.join(str(error).split())[:120] or type(error).__name__}"
    return None


def source_weights_problems(run: Run, trials: Sequence[TrialRecord], top_epochs: int) -> list[DamagedFile]:
    """The last-epoch weights a resumed successive halving would load and cannot: missing or damaged, each named.

    Those of the earlier trial of every promoted trial not finished yet, and those of every result below the top
    rung (`top_epochs`) that no trial continues yet, which a promotion may pick. A weights file a resume needs is
    refused before any trial runs: KerasTuner would record a failed trial with h5py's message, and falling back to
    another checkpoint would continue from an epoch the curve does not end at.
    """
    continued = {trial.schedule.get(CONTINUES) for trial in trials}
    needed: dict[str, str] = {}
    for trial in trials:
        source = trial.schedule.get(CONTINUES)
        if source is not None and trial.status not in FINISHED:
            needed.setdefault(source, f"trial {trial.trial_id} continues from it")
        elif (trial.status in RANKED and trial.score is not None and trial.trial_id not in continued
              and trial.schedule.get(EPOCHS, top_epochs) < top_epochs):
            needed.setdefault(trial.trial_id, "a promotion may continue from it")
    damaged = []
    for trial_id, why in sorted(needed.items()):
        path = run.trial_dir(trial_id) / LAST_EPOCH_WEIGHTS
        problem = weights_problem(path)
        if problem:
            damaged.append(DamagedFile(path, f"{problem}; {why}"))
    return damaged


class ContinuingTuner(HookedTuner):
    """A tuner over any oracle in which a trial with `tuner/trial_id` continues that trial.

    The trial trains from `tuner/initial_epoch` to `tuner/epochs`, as in KerasTuner's Hyperband,
    but goes on from where the earlier trial stopped. Hyperband loads the earlier trial's BEST
    epoch's weights into a model whose optimizer is not built yet, so Keras skips the saved
    optimizer state (a warning) and Adam starts again with empty moments. Here the optimizer is
    built first and the earlier trial's LAST epoch (weights, optimizer moments and step count) is
    loaded, so the training goes on as if it had never stopped. Without that file, or with a damaged one, the
    search stops with an error naming it (SourceWeightsError): another checkpoint would continue from an epoch
    the curve does not end at, and a failed trial would carry h5py's message.
    """

    def last_epoch_weights(self, trial_id: str) -> str:
        """Where a trial's last epoch is saved (training.CurveWriter writes it)."""
        return os.path.join(self.get_trial_dir(trial_id), LAST_EPOCH_WEIGHTS)

    def run_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
        values = trial.hyperparameters.values
        if EPOCHS in values:
            fit_kwargs["epochs"], fit_kwargs["initial_epoch"] = values[EPOCHS], values[INITIAL_EPOCH]
        return super().run_trial(trial, *fit_args, **fit_kwargs)

    def model_built(self, model: Any, hp: keras_tuner.HyperParameters) -> None:
        earlier = hp.values.get(CONTINUES)
        if earlier is None:
            return
        path = self.last_epoch_weights(earlier)
        problem = weights_problem(Path(path))
        if problem is None:
            # Built before loading, the optimizer takes the saved moments and step count instead of skipping them.
            model.optimizer.build(model.trainable_variables)
            try:
                model.load_weights(path)
            except Exception as error:  # weights of another model, read whole but not loadable into this one
                problem = f"not this configuration's weights: {' '.join(str(error).split())[:120]}"
        if problem:
            raise SourceWeightsError(f"'{path}' is damaged ({problem}; a promoted trial continues trial {earlier} "
                                     f"from it); {REMEDY}.")
