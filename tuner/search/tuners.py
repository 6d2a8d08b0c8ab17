"""What a trial is: the KerasTuner tuner over CNNHyperModel, its data pipeline, callbacks and records."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import shutil
from pathlib import Path
from typing import Any, Callable, ContextManager

import keras
import keras_tuner
import psutil
import tensorflow as tf

from tuner.data.cache import PreparedDataset
from tuner.config import SearchSettings
from tuner.config.spaces import MODERN, UNCOUNTABLE_SPACE, has_grid, modern_baseline
from tuner.files import read_json
from tuner.search.continuing import LAST_EPOCH_WEIGHTS, ContinuingTuner
from tuner.search.halving import (
    CONTINUES,
    DEFAULT_CONFIGURATIONS,
    EPOCHS,
    INITIAL_EPOCH,
    ROUND,
    BayesianSuccessiveHalvingOracle,
    NeighbourSuccessiveHalvingOracle,
    SuccessiveHalvingOracle,
    rung_epochs,
)
from tuner.model.hypermodel import CNNHyperModel
from tuner.search.kerastuner import HookedTuner, local_oracle, tensorboard_execution_dir
from tuner.search.oracles import ResumableGridOracle
from tuner.model.pipeline import search_pipelines
from tuner.search.progress import SearchProgress
from tuner.search.pruning import MedianPruner
from tuner.rundir import Run
from tuner.model.training import Rung, TrainingPlan, build_callbacks
from tuner.trials.records import COMPLETED, best_val_loss, failure_reason

log = logging.getLogger(__name__)
# TensorFlow warns about retracing when each trial builds a new model, which is by design here.
tf.get_logger().setLevel(logging.ERROR)

OBJECTIVE = keras_tuner.Objective("val_loss", direction="min")
# A failed configuration (e.g. too many conv blocks for tiny images) must not stop the search.
NEVER_STOP_ON_FAILURES = 10**9
# Random and Bayesian search try this many configurations unless --max-trials says otherwise.
DEFAULT_SAMPLED_TRIALS = 10

# The oracles that need only a trial budget; hyperband and asha are built with the run's epochs by make_tuner.
ORACLES: dict[str, type[keras_tuner.Oracle]] = {
    "grid": ResumableGridOracle,
    "random": keras_tuner.oracles.RandomSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
}


class _SearchMixin(HookedTuner):
    """What every tuner of this tool adds to KerasTuner's: per-trial seeds and data, curves, progress, cleanup.

    The space is declared by the hypermodel, without building a default model first (see
    HookedTuner). `trial_guard(trial_id)` wraps each trial's training; a worker of a
    distributed search sets it to a heartbeat that tells the chief it is still alive.
    """

    def __init__(self, *args: Any, run: Run, base_seed: int, batch_size: int,
                 progress: SearchProgress | None = None, pruner: MedianPruner | None = None, **kwargs: Any) -> None:
        self.run = run
        self.base_seed = base_seed
        self.batch_size = batch_size
        self.progress = progress
        self.pruner = pruner
        self.trial_guard: Callable[[str], ContextManager[Any]] = lambda trial_id: contextlib.nullcontext()
        super().__init__(*args, **kwargs)

    def declare_space(self, space: keras_tuner.HyperParameters) -> None:
        self.hypermodel.declare_hyperparameters(space)

    def run_trial(self, trial: Any, dataset: PreparedDataset, epochs: int, patience: int = 0,
                  verbose: Any = None) -> Any:
        # search()'s keywords arrive here; `verbose` is KerasTuner's own (the trainer is always silent).
        trial_id = trial.trial_id
        # Seeding per trial makes a trial's result independent of which trials ran before it,
        # so a resumed search gives the same numbers as an uninterrupted one.
        trial_seed = (self.base_seed + int(trial_id)) % 2**32  # NumPy's seeds stop below 2**32
        keras.utils.set_random_seed(trial_seed)
        train, validation = search_pipelines(dataset, self.batch_size, trial_seed)
        # A re-run of an interrupted trial starts its curves afresh instead of appending to them,
        # and a stale curve from an interrupted attempt must not be read as this attempt's.
        shutil.rmtree(self.run.trial_tensorboard(trial_id), ignore_errors=True)
        self.run.history(trial_id).unlink(missing_ok=True)
        plan = trial_plan(self.run, trial_id, patience, self.pruner, self.rung_of(trial, epochs))
        callbacks, _ = build_callbacks(plan)
        # KerasTuner adds the trial's TensorBoard folder with its HParams and its checkpoint, then
        # trains through CNNHyperModel.fit, which is training.fit.
        with self.trial_guard(trial_id):
            return super().run_trial(trial, train, validation_data=validation, epochs=epochs, callbacks=callbacks)

    def rung_of(self, trial: Any, epochs: int) -> Rung | None:
        """A successive-halving trial's rung (None for any other tuner's), with the curve of the trial it continues."""
        return None

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        if self.progress is not None:
            history = read_json(self.run.history(trial.trial_id), kind="curve")
            history = history if isinstance(history, dict) else {}
            # A continued trial's curve starts with the earlier rungs' epochs; its own result is its own epochs'.
            values = trial.hyperparameters.values
            own = [row for row in history.get("epochs", []) if row.get("epoch", 0) > values.get(INITIAL_EPOCH, 0)]
            val_loss = best_val_loss(own)
            pruned_at = history["pruned"].get("epoch") if isinstance(history.get("pruned"), dict) else None
            reason = failure_reason(trial.message) if trial.status != COMPLETED else None
            promoted = (values[CONTINUES], values[ROUND], values[EPOCHS]) if CONTINUES in values else None
            self.progress.trial_ended(trial.trial_id, trial.status, dict(values), val_loss, reason, pruned_at, promoted)
        # KerasTuner clears the Keras session and collects garbage before it builds the next model,
        # so the finished model is released there; collecting here too would only cost time.
        log.debug("rss %.1f MB after trial %s", psutil.Process().memory_info().rss / 2**20, trial.trial_id)


class SearchTuner(_SearchMixin, keras_tuner.Tuner):
    """A plain KerasTuner Tuner driven by one of ORACLES."""


class HyperbandSearchTuner(_SearchMixin, keras_tuner.Hyperband):
    """KerasTuner's Hyperband (which continues promising trials from their checkpoints)."""


class HalvingSearchTuner(_SearchMixin, ContinuingTuner):
    """Successive halving (asha): a promoted trial continues its earlier rung's last epoch, curve and clock."""

    def rung_of(self, trial: Any, epochs: int) -> Rung | None:
        values = trial.hyperparameters.values
        if ROUND not in values:
            return None
        earlier = values.get(CONTINUES)
        history = read_json(self.run.history(earlier), kind="curve") if earlier is not None else None
        history = history if isinstance(history, dict) else {}
        # Only the epochs the earlier rung trained (a resumed trial's file is complete, but never longer).
        rows = [row for row in history.get("epochs", []) if isinstance(row, dict)
                and isinstance(row.get("epoch"), int) and row["epoch"] <= values[INITIAL_EPOCH]]
        seconds = history.get("seconds") if isinstance(history.get("seconds"), (int, float)) else 0.0
        return Rung(values[ROUND], rung_epochs(epochs) if epochs else (), earlier, tuple(rows), float(seconds))


def make_tuner(settings: SearchSettings, hypermodel: CNNHyperModel, run: Run,
               progress: SearchProgress | None = None) -> keras_tuner.Tuner:
    """Build the tuner named by settings.tuner over `hypermodel`, reloading the run if it exists.

    Args:
        settings: the search settings (tuner, max_trials, epochs, seed).
        hypermodel: the search space.
        run: the run directory; its KerasTuner project is reloaded if present.
        progress: receives one call per finished trial.

    Returns:
        A KerasTuner tuner whose search() takes `dataset=` instead of x/y arrays.
    """
    pruner = MedianPruner(run, settings.prune_warmup_trials, settings.prune_warmup_epochs) if settings.median_pruning else None
    common: dict[str, Any] = dict(
        hypermodel=hypermodel, directory=str(run.project.parent), project_name=run.project.name,
        overwrite=False, run=run, base_seed=settings.seed, batch_size=settings.batch_size, progress=progress,
        pruner=pruner,
    )
    failures = dict(max_retries_per_trial=0, max_consecutive_failed_trials=NEVER_STOP_ON_FAILURES)
    # KerasTuner 1.4.8 prints "Reloading Tuner from ..." to stdout; our own resume line says it better.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        if settings.tuner == "hyperband":
            tuner = HyperbandSearchTuner(objective=OBJECTIVE, max_epochs=settings.epochs, factor=3,
                                         seed=settings.seed, **failures, **common)
            # --max-trials caps Hyperband's schedule: the base Oracle's create_trial stops once it has
            # created max_trials trials (a continued trial counts again). Set on the oracle built here,
            # which on a worker is the one its client wraps, before any trial is created.
            local_oracle(tuner.oracle).max_trials = settings.max_trials
        elif settings.tuner == "asha":
            # --max-trials counts new configurations here; their promotions are further trials.
            halving = dict(objective=OBJECTIVE, epochs=settings.epochs, seed=settings.seed, baseline=baseline_of(hypermodel),
                           configurations=settings.max_trials or DEFAULT_CONFIGURATIONS, **failures)
            if settings.proposals == "neighbours":
                oracle = NeighbourSuccessiveHalvingOracle(image_side=min(hypermodel.input_shape[:2]), **halving)
            elif settings.proposals == "bayesian":
                oracle = BayesianSuccessiveHalvingOracle(**halving)
            else:
                oracle = SuccessiveHalvingOracle(**halving)
            tuner = HalvingSearchTuner(oracle=oracle, **common)
        else:
            max_trials = settings.max_trials
            if max_trials is None:
                # The grid's size is known up front; giving it also makes trial ids as wide as needed.
                max_trials = space_size(settings) if settings.tuner == "grid" else DEFAULT_SAMPLED_TRIALS
            oracle = ORACLES[settings.tuner](objective=OBJECTIVE, max_trials=max_trials, seed=settings.seed, **failures)
            tuner = SearchTuner(oracle=oracle, **common)
    for line in printed.getvalue().splitlines():
        log.debug("keras_tuner: %s", line)
    return tuner


def baseline_of(hypermodel: CNNHyperModel) -> dict[str, Any] | None:
    """The configuration successive halving tries first and continues to the full epochs: the modern space's
    baseline (config.spaces.modern_baseline); the tutorial's grid has none."""
    if hypermodel.space != MODERN:
        return None
    return modern_baseline(hypermodel.conv_layers, hypermodel.nodes, hypermodel.dense_layers, min(hypermodel.input_shape[:2]))


def space_size(settings: SearchSettings) -> int:
    """How many configurations the settings' search space holds (the grid's count); UNCOUNTABLE_SPACE for a space
    with a continuous dimension (the modern space's learning rate), which no search exhausts."""
    if not has_grid(settings.space):
        return UNCOUNTABLE_SPACE
    size = len(settings.conv_layers) * len(settings.nodes) * len(settings.dense_layers)
    return size * max(len(settings.learning_rates), 1) * max(len(settings.dropouts), 1) * max(len(settings.augment), 1)


def trial_plan(run: Run, trial_id: str, patience: int, pruner: MedianPruner | None = None,
               rung: Rung | None = None) -> TrainingPlan:
    """How a search trial is trained: TensorBoard under the run's root (KerasTuner adds the trial's folder),
    early stopping, its curve in RUN/history, pruning if asked, and its size and speed measured at the end;
    a successive-halving trial also saves its last epoch for the next rung (`rung`: its place)."""
    last_weights = run.trial_dir(trial_id) / LAST_EPOCH_WEIGHTS if rung is not None else None
    return TrainingPlan(tensorboard_dir=run.tensorboard, patience=patience, curve_file=run.history(trial_id),
                        trial_id=trial_id, pruner=pruner, pruned_tensorboard=run.trial_tensorboard(trial_id),
                        footprint_tensorboard=footprint_tensorboard(run, trial_id), rung=rung,
                        last_weights=last_weights)


def footprint_tensorboard(run: Run, trial_id: str) -> Path:
    """A trial's size and speed as TensorBoard scalars, inside the folder where KerasTuner writes the trial's HParams
    session, so the HParams dashboard shows them as metrics beside the trial's hyperparameters."""
    return tensorboard_execution_dir(run.trial_tensorboard(trial_id)) / "footprint"


def run_trials(tuner: keras_tuner.Tuner, settings: SearchSettings, run: Run, dataset: PreparedDataset) -> None:
    """Run trials with `tuner` until its oracle has none left to hand out."""
    # TensorFlow's modules make a heap of millions of objects that live as long as the process;
    # KerasTuner collects garbage twice per trial, and without this each collection walks them
    # all (0.25 s each here). Frozen objects are left out of collections.
    gc.freeze()
    # Each trial builds its own callbacks (run_trial); verbose=0 keeps KerasTuner's own trial printout off.
    tuner.search(dataset=dataset, epochs=settings.epochs, patience=settings.patience, verbose=0)
