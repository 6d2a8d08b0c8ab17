"""make_tuner() and run_search(): a KerasTuner search over CNNHyperModel that resumes after any crash."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import psutil
import tensorflow as tf
from keras_tuner.src.distribute import oracle_client

from tuner.config import SearchSettings, settings_to_dict
from tuner.data import PreparedDataset, ensure_prepared
from tuner.distributed import (Heartbeat, configure_role, install_idle_wait, keep_ongoing_after_restart,
                               run_local_cluster, serve_oracle, wait_for_chief)
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.hypermodel import CNNHyperModel
from tuner.oracles import ResumableGridOracle, configure_keras_tuner, repair_after_reload
from tuner.progress import EpochHistory, SearchProgress
from tuner.rundir import (RunLock, RunPaths, atomic_write_json, best_val_loss, failure_reason, iter_trials,
                          read_json)

log = logging.getLogger(__name__)
# TensorFlow warns about retracing when each trial builds a new model, which is by design here.
tf.get_logger().setLevel(logging.ERROR)

OBJECTIVE = keras_tuner.Objective("val_loss", direction="min")
# A failed configuration (e.g. too many conv blocks for tiny images) must not stop the search.
NEVER_STOP_ON_FAILURES = 10**9
# Random and Bayesian search try this many configurations unless --max-trials says otherwise.
DEFAULT_SAMPLED_TRIALS = 10
# Settings that define what a run's trials mean; resuming with any of them changed would mix
# incomparable trials. --max-trials is not among them, so a finished search can be extended.
RUN_DEFINING_FIELDS = (
    "tuner", "conv_layers", "nodes", "dense_layers", "learning_rates", "dropouts",
    "epochs", "batch_size", "patience", "seed",
)

ORACLES: dict[str, type[keras_tuner.Oracle]] = {
    "grid": ResumableGridOracle,
    "random": keras_tuner.oracles.RandomSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
}


@dataclass(frozen=True)
class SearchSummary:
    """What a search left behind, for the script to print."""

    run_dir: Path
    resumed: bool
    completed: int
    failed: int
    total: int | None
    best_trial_id: str | None
    best_val_loss: float | None
    seconds: float


def dataset_identity(dataset: PreparedDataset) -> str:
    """A short hash of the prepared dataset's manifest, so a run notices when its data changed."""
    text = json.dumps(dataset.manifest, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_datasets(dataset: PreparedDataset, batch_size: int, seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """tf.data pipelines over the cached uint8 arrays (the model rescales, so nothing is copied to float)."""
    label_dtype = np.float32 if dataset.num_classes == 2 else np.int32
    train = (
        tf.data.Dataset.from_tensor_slices((dataset.x_train, dataset.y_train.astype(label_dtype)))
        .shuffle(len(dataset.y_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    # Validation only runs forward passes, so larger batches are just faster.
    validation = (
        tf.data.Dataset.from_tensor_slices((dataset.x_val, dataset.y_val.astype(label_dtype)))
        .batch(max(batch_size, 256))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, validation


class _SearchMixin:
    """What every tuner of this tool adds to KerasTuner's: per-trial seeds and data, curves, progress, cleanup."""

    def __init__(self, *args: Any, paths: RunPaths, base_seed: int, batch_size: int,
                 progress: SearchProgress | None = None, **kwargs: Any) -> None:
        self.paths = paths
        self.base_seed = base_seed
        self.batch_size = batch_size
        self.progress = progress
        super().__init__(*args, **kwargs)

    def _populate_initial_space(self) -> None:
        # KerasTuner builds the default model here to discover conditional hyperparameters;
        # this space has none, and that model may be impossible for the images (a failed trial
        # later, but a crash here), so declaring the space is enough.
        space = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(space)
        self.oracle.update_space(space)

    def run_trial(self, trial: Any, dataset: PreparedDataset, **fit_kwargs: Any) -> Any:
        # Seeding per trial makes a trial's result independent of which trials ran before it,
        # so a resumed search gives the same numbers as an uninterrupted one.
        trial_seed = self.base_seed + int(trial.trial_id)
        keras.utils.set_random_seed(trial_seed)
        train, validation = make_datasets(dataset, self.batch_size, trial_seed)
        # A re-run of an interrupted trial starts its curves afresh instead of appending to them.
        shutil.rmtree(self.paths.tensorboard / str(trial.trial_id), ignore_errors=True)
        # A stale curve from an interrupted attempt must not be read as this attempt's.
        self.paths.history(trial.trial_id).unlink(missing_ok=True)
        history = EpochHistory(self.paths.history(trial.trial_id), trial.trial_id)
        callbacks = list(fit_kwargs.pop("callbacks", [])) + [history]
        if isinstance(self.oracle, oracle_client.OracleClient):
            with Heartbeat(self.oracle, trial.trial_id):
                return super().run_trial(trial, train, validation_data=validation, callbacks=callbacks, **fit_kwargs)
        return super().run_trial(trial, train, validation_data=validation, callbacks=callbacks, **fit_kwargs)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        if self.progress is not None:
            history = read_json(self.paths.history(trial.trial_id)) or {}
            val_loss = best_val_loss(history.get("epochs", []))
            reason = failure_reason(trial.message) if trial.status != "COMPLETED" else None
            self.progress.trial_ended(trial.trial_id, trial.status, dict(trial.hyperparameters.values), val_loss, reason)
        # KerasTuner clears the Keras session and collects garbage before it builds the next model,
        # so the finished model is released there; collecting here too would only cost time.
        log.debug("rss %.1f MB after trial %s", psutil.Process().memory_info().rss / 2**20, trial.trial_id)


class SearchTuner(_SearchMixin, keras_tuner.Tuner):
    """A plain KerasTuner Tuner driven by one of ORACLES."""


class HyperbandSearchTuner(_SearchMixin, keras_tuner.Hyperband):
    """KerasTuner's Hyperband (which continues promising trials from their checkpoints)."""


def make_tuner(settings: SearchSettings, hypermodel: CNNHyperModel, paths: RunPaths,
               progress: SearchProgress | None = None) -> keras_tuner.Tuner:
    """Build the tuner named by settings.tuner over `hypermodel`, reloading the run if it exists.

    Args:
        settings: the search settings (tuner, max_trials, epochs, seed).
        hypermodel: the search space.
        paths: the run directory; its KerasTuner project is reloaded if present.
        progress: receives one call per finished trial.

    Returns:
        A KerasTuner tuner whose search() takes `dataset=` instead of x/y arrays.
    """
    common: dict[str, Any] = dict(
        hypermodel=hypermodel, directory=str(paths.root), project_name=paths.project.name,
        overwrite=False, paths=paths, base_seed=settings.seed, batch_size=settings.batch_size, progress=progress,
    )
    failures = dict(max_retries_per_trial=0, max_consecutive_failed_trials=NEVER_STOP_ON_FAILURES)
    if settings.tuner == "hyperband":
        return HyperbandSearchTuner(objective=OBJECTIVE, max_epochs=settings.epochs, factor=3,
                                    seed=settings.seed, **failures, **common)
    max_trials = settings.max_trials
    if max_trials is None:
        # The grid's size is known up front; giving it also makes trial ids as wide as needed.
        max_trials = space_size(settings) if settings.tuner == "grid" else DEFAULT_SAMPLED_TRIALS
    oracle = ORACLES[settings.tuner](objective=OBJECTIVE, max_trials=max_trials, seed=settings.seed, **failures)
    return SearchTuner(oracle=oracle, **common)


def space_size(settings: SearchSettings) -> int:
    """How many configurations the settings' search space holds."""
    size = len(settings.conv_layers) * len(settings.nodes) * len(settings.dense_layers)
    return size * max(len(settings.learning_rates), 1) * max(len(settings.dropouts), 1)


def planned_trials(tuner: keras_tuner.Tuner, settings: SearchSettings) -> int | None:
    """How many trials the search will run in all, for progress lines (None if unknown)."""
    oracle = tuner.oracle
    if settings.tuner == "hyperband":
        brackets = oracle._get_num_brackets()
        return sum(oracle._get_size(bracket, round_number)
                   for bracket in range(brackets) for round_number in range(oracle._get_num_rounds(bracket)))
    return min(space_size(settings), oracle.max_trials)


def build_hypermodel(settings: SearchSettings, dataset: PreparedDataset) -> CNNHyperModel:
    """The search space for this dataset, with the ranges from the settings."""
    return CNNHyperModel(
        dataset.input_shape, dataset.num_classes, conv_layers=settings.conv_layers, nodes=settings.nodes,
        dense_layers=settings.dense_layers, learning_rates=settings.learning_rates, dropouts=settings.dropouts,
    )


def _check_run_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise TunerUsageError(f"--run-dir '{root}' is a file, expected a folder; pass a folder path.")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise TunerUsageError(f"--run-dir '{root}' cannot be written ('{probe}' is not writable); pass another --run-dir.")


def _check_same_run(paths: RunPaths, run_settings: dict[str, Any]) -> None:
    """Refuse to resume a run that was made with another search space, tuner or dataset."""
    previous = read_json(paths.settings)
    if not isinstance(previous, dict):
        return
    old_search, new_search = previous.get("search", {}), run_settings["search"]
    for name in RUN_DEFINING_FIELDS:
        if old_search.get(name) != new_search.get(name):
            flag = "--" + name.replace("_", "-")
            raise TunerUsageError(
                f"run directory '{paths.root}' was made with {flag} {_flag_value(old_search.get(name))}, "
                f"not {_flag_value(new_search.get(name))}; pass --overwrite to start it afresh or another --run-dir."
            )
    if previous.get("dataset", {}).get("identity") != run_settings["dataset"]["identity"]:
        raise TunerUsageError(
            f"run directory '{paths.root}' was made from another prepared dataset than '{run_settings['dataset']['path']}' "
            f"holds now; pass --overwrite to start it afresh or another --run-dir."
        )


def _flag_value(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value)


def _clear_run(paths: RunPaths) -> None:
    for part in (paths.project, paths.root / "history", paths.tensorboard, paths.root / "best", paths.root / "plots"):
        shutil.rmtree(part, ignore_errors=True)
    paths.settings.unlink(missing_ok=True)


def run_search(settings: SearchSettings) -> SearchSummary:
    """Run (or resume) a search as the settings say and return what it found.

    With `workers`, this process launches a local chief and workers; with `role`, it is one
    of them; otherwise it searches on its own.

    Args:
        settings: validated search settings.

    Returns:
        A summary: counts of completed and failed trials and the best one.

    Raises:
        TunerUsageError: bad data, run directory or a changed search on resume.
        SearchFailedError: every trial failed, or a process of a distributed search did.
    """
    started = time.monotonic()
    paths = RunPaths(settings.resolved_run_dir())
    _check_run_dir(paths.root)
    dataset = ensure_prepared(settings.data)
    run_settings = _run_settings(settings, dataset)
    resumed = (paths.project / "oracle.json").exists() and not settings.overwrite
    if settings.workers:
        # Prepared once here, so the chief and workers don't all prepare the sample at once.
        run_local_cluster(settings)
    elif settings.role == "worker":
        _work_for_chief(settings, paths, dataset, run_settings)
    else:
        with RunLock(paths):
            if settings.overwrite:
                _clear_run(paths)
            _check_same_run(paths, run_settings)
            atomic_write_json(paths.settings, run_settings)
            _lead_search(settings, paths, dataset, resumed)
    return _summarise(paths, resumed, space_size(settings) if settings.tuner == "grid" else None,
                      time.monotonic() - started)


def _run_settings(settings: SearchSettings, dataset: PreparedDataset) -> dict[str, Any]:
    """What settings.json records: the search's settings and which dataset it ran on."""
    return {
        "search": settings_to_dict(settings),
        "dataset": {
            "path": str(Path(settings.data).resolve()),
            "identity": dataset_identity(dataset),
            "class_names": dataset.class_names,
            "input_shape": list(dataset.input_shape),
            "img_size": dataset.img_size,
            "color": dataset.color,
        },
    }


def _lead_search(settings: SearchSettings, paths: RunPaths, dataset: PreparedDataset, resumed: bool) -> None:
    """Own the oracle: search alone, or (as the chief) serve it to workers."""
    configure_keras_tuner()
    ongoing: dict[str, str] = {}
    if settings.role == "chief":
        configure_role("chief", settings.oracle or "")
        ongoing = (read_json(paths.project / "oracle.json") or {}).get("ongoing_trials", {})
    tuner_file = paths.project / f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json"
    if resumed and not tuner_file.exists():
        # KerasTuner reloads only if its tuner file exists; a kill can leave only the oracle's.
        atomic_write_json(tuner_file, {})
    keras.utils.set_random_seed(settings.seed)
    progress = SearchProgress(paths)
    tuner = make_tuner(settings, build_hypermodel(settings, dataset), paths, progress)
    progress.total = planned_trials(tuner, settings)
    if resumed:
        rerun = repair_after_reload(tuner.oracle)
        log.info("Resuming %s: %d trial(s) finished, %s to run again.", paths.root, progress.finished,
                 ", ".join(rerun) if rerun else "none")
    else:
        log.info("Starting %s: %s search, %s trials planned.", paths.root, settings.tuner, progress.total or "?")
    if settings.role == "chief":
        keep_ongoing_after_restart(tuner.oracle, ongoing)
        tuner.oracle.verbose = 0  # KerasTuner's own trial display; the workers print progress lines
        tuner.save()
        serve_oracle(tuner.oracle, settings.oracle or "")
        return
    _search(tuner, settings, paths, dataset)


def _work_for_chief(settings: SearchSettings, paths: RunPaths, dataset: PreparedDataset,
                    run_settings: dict[str, Any]) -> None:
    """Run trials handed out by a chief, writing into the shared run directory."""
    tuner_id = configure_role("worker", settings.oracle or "")
    wait_for_chief(settings.oracle or "", settings.connect_timeout)
    # The chief wrote settings.json before it started serving; a worker with other flags is refused.
    _check_same_run(paths, run_settings)
    configure_keras_tuner()
    progress = SearchProgress(paths)
    tuner = make_tuner(settings, build_hypermodel(settings, dataset), paths, progress)
    progress.total = planned_trials(tuner, settings)
    install_idle_wait(tuner)
    log.info("Worker %s joined the search at %s.", tuner_id, settings.oracle)
    _search(tuner, settings, paths, dataset)


def _search(tuner: keras_tuner.Tuner, settings: SearchSettings, paths: RunPaths, dataset: PreparedDataset) -> None:
    # TensorFlow's modules make a heap of millions of objects that live as long as the process;
    # KerasTuner collects garbage twice per trial, and without this each collection walks them
    # all (0.25 s each here). Frozen objects are left out of collections.
    gc.freeze()
    # The training pipeline is already shuffled by tf.data; Keras would only warn about shuffle=True.
    tuner.search(dataset=dataset, epochs=settings.epochs, callbacks=_callbacks(settings, paths), shuffle=False,
                 verbose=0)


def _callbacks(settings: SearchSettings, paths: RunPaths) -> list[keras.callbacks.Callback]:
    # KerasTuner gives each trial its own TensorBoard folder and adds the HParams callback.
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log_dir=str(paths.tensorboard), write_graph=False, profile_batch=0)
    ]
    if settings.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience))
    return callbacks


def _summarise(paths: RunPaths, resumed: bool, total: int | None, seconds: float) -> SearchSummary:
    records = list(iter_trials(paths))
    completed = [record for record in records if record.status == "COMPLETED"]
    failed = [record for record in records if record.status == "FAILED"]
    if failed and not completed:
        reasons: dict[str, int] = {}
        for record in failed:
            reason = failure_reason(record.message)
            reasons[reason] = reasons.get(reason, 0) + 1
        summary = "; ".join(f"{count}x {reason}" for reason, count in reasons.items())
        raise SearchFailedError(f"all {len(failed)} trials failed: {summary}")
    best = min(((record.best_val_loss, record.trial_id) for record in completed if record.best_val_loss is not None),
               default=(None, None))
    return SearchSummary(paths.root, resumed, len(completed), len(failed), total, best[1], best[0], seconds)
