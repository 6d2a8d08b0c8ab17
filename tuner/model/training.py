"""How a configuration is trained: the one fit, and the callbacks a search trial, a confirm run and the retrain share.

A search trial (through KerasTuner, whose hook CNNHyperModel.fit calls `fit`), a confirm run
(confirm.runs.train_configuration) and the retrain of the winner (winner.retrain.retrain_best) differ only in
what `TrainingPlan` names: where TensorBoard writes, the patience of early stopping, whether the
curve goes to a file, pruning, the footprint measurement and progress lines. Everything else
(silent, no reshuffling by Keras, one curve row per epoch with the same keys) is decided here once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras

from tuner.files import atomic_write_json
from tuner.model.footprint import measure_footprint, write_footprint_summary

log = logging.getLogger(__name__)


class PruneVerdict(Protocol):
    """Why a training was stopped early: the epoch that decided it, as JSON for its curve file and as a sentence."""

    epoch: int

    def to_json(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


class Pruner(Protocol):
    """Judges a training from its curve so far, once per epoch (the search's is search/pruning.MedianPruner)."""

    def verdict(self, trial_id: str, epochs: list[dict[str, Any]]) -> PruneVerdict | None: ...


@dataclass(frozen=True)
class TrainingPlan:
    """What differs between the trainings of a configuration; build_callbacks turns it into callbacks.

    Attributes:
        tensorboard_dir: where TensorBoard writes, None for no TensorBoard. For a search trial this
            is the run's TensorBoard root: KerasTuner adds the trial's folder and its HParams.
        patience: epochs without a better val_loss before training stops; 0 never stops early
            (the retrain has no validation split to watch).
        curve_file: the per-epoch curve, rewritten atomically after every epoch (a search trial's
            history file); None keeps the rows in memory only.
        trial_id: the trial the curve file belongs to.
        pruner: judges the curve after every epoch and stops a hopeless training.
        pruned_tensorboard: the trial's own TensorBoard folder, where a pruning verdict or a
            promotion (successive halving) is written as text, beside its curves.
        footprint_tensorboard: measure the trained model's size and speed when training ends, add
            them to the curve file and write them here for TensorBoard's HParams view.
        progress_label: log one line per epoch, starting with this label (e.g. "retrain").
        rung: a successive-halving trial's place in its schedule, recorded in the curve file.
        last_weights: save the last epoch's weights and optimizer state here when training ends,
            for a later rung to continue from.
    """

    tensorboard_dir: Path | None = None
    patience: int = 0
    curve_file: Path | None = None
    trial_id: str | None = None
    pruner: Pruner | None = None
    pruned_tensorboard: Path | None = None
    footprint_tensorboard: Path | None = None
    progress_label: str | None = None
    rung: Rung | None = None
    last_weights: Path | None = None


@dataclass(frozen=True)
class Rung:
    """A successive-halving trial's place: its rung, every rung's epochs, and the trial it continues.

    A continued trial's curve starts with the earlier trial's rows and clock (`earlier_rows`,
    `earlier_seconds`), so each configuration's curve file is one curve from its first epoch.
    """

    rung: int
    epochs: tuple[int, ...]
    continues: str | None = None
    earlier_rows: tuple[dict[str, Any], ...] = ()
    earlier_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"rung": self.rung, "epochs": list(self.epochs), "continues": self.continues}

    def describe(self) -> str:
        return (f"promoted trial {self.continues} to rung {self.rung} ({self.epochs[self.rung]} epochs): "
                f"trains epochs {self.epochs[self.rung - 1] + 1} to {self.epochs[self.rung]} from its last epoch")


def build_callbacks(plan: TrainingPlan) -> tuple[list[keras.callbacks.Callback], CurveWriter]:
    """The callbacks of one training, in order: TensorBoard, early stopping, the curve writer, progress lines.

    Args:
        plan: what this training watches and records.

    Returns:
        The callbacks to give `fit`, and the curve writer among them, whose `epochs` holds the
        rows after training (KerasTuner trains deep copies of a trial's callbacks, so for a
        search trial the curve file, not this object, is what counts).
    """
    callbacks: list[keras.callbacks.Callback] = []
    if plan.tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(plan.tensorboard_dir), write_graph=False, profile_batch=0))
    if plan.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=plan.patience))
    curve = CurveWriter(plan.curve_file, plan.trial_id, plan.pruner, plan.pruned_tensorboard, plan.footprint_tensorboard,
                        plan.rung, plan.last_weights)
    callbacks.append(curve)
    if plan.progress_label:
        callbacks.append(EpochProgress(plan.progress_label))
    return callbacks, curve


def fit(model: keras.Model, train: Any, validation_data: Any = None, *, epochs: int,
        callbacks: list[keras.callbacks.Callback], initial_epoch: int = 0) -> keras.callbacks.History:
    """Train a compiled model: the one place the tool calls model.fit.

    Args:
        model: the configuration's compiled model, built after its seed was set.
        train: the training pipeline (pipeline.search_pipelines or retraining_pipeline).
        validation_data: the validation pipeline, None for the retrain on train + validation.
        epochs: the epoch to stop after (counted from 0, as Keras does, so with `initial_epoch`).
        callbacks: build_callbacks' list (plus, for a search trial, what KerasTuner adds).
        initial_epoch: where a continued training starts (a later rung of successive halving, Hyperband's later rounds).

    Returns:
        Keras' History, which KerasTuner reads a trial's objective from.
    """
    if initial_epoch > 0:
        continue_schedule(model, train, initial_epoch)
    # The pipelines are already shuffled by tf.data (Keras would only warn about shuffle=True), and
    # the tool logs its own lines instead of Keras' progress bars.
    return model.fit(train, validation_data=validation_data, epochs=epochs, initial_epoch=initial_epoch,
                     callbacks=callbacks, verbose=0, shuffle=False)


def continue_schedule(model: keras.Model, train: Any, initial_epoch: int) -> None:
    """Set the optimizer's step count to where `initial_epoch` epochs of `train` leave it.

    A learning-rate schedule (e.g. a cosine decay over all the epochs) reads the step count, so a
    training continued at a later epoch goes on along the full-length schedule instead of
    starting it again. Unchanged when the pipeline's length is unknown.
    """
    steps = steps_per_epoch(train)
    if steps is None:
        log.warning("cannot continue the learning-rate schedule at epoch %d: the training pipeline's length is unknown",
                    initial_epoch)
        return
    model.optimizer.iterations.assign(initial_epoch * steps)


def steps_per_epoch(train: Any) -> int | None:
    """Batches in one pass over a tf.data pipeline, None if it does not know (infinite or unknown)."""
    cardinality = getattr(train, "cardinality", None)
    steps = int(cardinality()) if cardinality is not None else -1
    return steps if steps > 0 else None


def curve_row(epoch: int, logs: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """One epoch's row of a curve: epoch (from 1), every metric and its val_ twin, and the seconds so far.

    A non-finite value (a diverged epoch) is None, so the row is strict JSON; a metric without
    validation (the retrain's) has its val_ twin as None, so every use writes the same keys.
    """
    row: dict[str, Any] = {"epoch": epoch + 1}
    for name, value in (logs or {}).items():
        number = float(value)
        row[name] = number if math.isfinite(number) else None
    for name in [name for name in row if name != "epoch" and not name.startswith("val_")]:
        row.setdefault(f"val_{name}", None)
    row["seconds"] = round(seconds, 3)
    return row


class CurveWriter(keras.callbacks.Callback):
    """Keeps a training's per-epoch rows (curve_row); with a file, writes them there after every epoch, and prunes.

    KerasTuner keeps only the best epoch's metrics, so a trial's curve is recorded here; each
    write is atomic, so a kill leaves the curve up to the last finished epoch. With a pruner, a
    training it judges hopeless stops after this epoch, and its verdict is written into the same
    file, in the same write as the epoch that decided it. With `footprint_tensorboard`, the
    trained model's size and speed (footprint.measure_footprint) are added to the file when
    training ends, and written there for TensorBoard's HParams view.
    """

    def __init__(self, path: Path | None = None, trial_id: str | None = None, pruner: Pruner | None = None,
                 pruned_tensorboard: Path | None = None, footprint_tensorboard: Path | None = None,
                 rung: Rung | None = None, last_weights: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.rung = rung
        self.last_weights = last_weights
        self.trial_id = trial_id
        self.pruner = pruner
        self.pruned_tensorboard = pruned_tensorboard
        self.footprint_tensorboard = footprint_tensorboard
        self.epochs: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self.started = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # A continued trial's clock and curve go on from the trial it continues.
        earlier = self.rung.earlier_seconds if self.rung else 0.0
        self.started = time.monotonic() - earlier
        self.epochs = [dict(row) for row in self.rung.earlier_rows] if self.rung else []
        self.record = {}
        if self.rung is not None and self.rung.continues is not None:
            self._tell_tensorboard_text("promoted", self.rung.describe(), self.rung.epochs[self.rung.rung - 1])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = curve_row(epoch, logs, time.monotonic() - self.started)
        self.epochs.append(row)
        if self.path is None:
            return
        self.record = record = {"trial_id": self.trial_id, "epochs": self.epochs, "seconds": row["seconds"]}
        if self.rung is not None:
            record["halving"] = self.rung.to_json()
        # A training at its last epoch has finished anyway: it is completed, and counts in later medians.
        last_epoch = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        verdict = None
        if self.pruner is not None and not last_epoch:
            verdict = self.pruner.verdict(str(self.trial_id), self.epochs)
        if verdict is not None:
            record["pruned"] = verdict.to_json()
        atomic_write_json(self.path, record)
        if verdict is not None:
            self.model.stop_training = True
            self._tell_tensorboard(verdict)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.last_weights is not None:
            # Weights and optimizer state (Keras saves both), written whole or not at all, for the next rung.
            partial = self.last_weights.with_name(f"partial.{self.last_weights.name}")
            self.model.save_weights(str(partial))
            os.replace(partial, self.last_weights)
        # Measured after the curve's last write, so the trial's seconds are its training alone.
        if self.footprint_tensorboard is None or self.path is None or not self.record:
            return
        try:
            footprint = measure_footprint(self.model)
        except Exception as error:  # a trial's result must not be lost to its measuring (e.g. out of memory)
            log.warning("trial %s: could not measure its size and speed (%s); it is ranked without them.",
                        self.trial_id, " ".join(str(error).split())[:160] or type(error).__name__)
            return
        self.record["footprint"] = footprint.to_json()
        atomic_write_json(self.path, self.record)
        write_footprint_summary(self.footprint_tensorboard, footprint)

    def _tell_tensorboard(self, verdict: PruneVerdict) -> None:
        self._tell_tensorboard_text("pruned", verdict.describe(), verdict.epoch, ("pruned_at_epoch", verdict.epoch))

    def _tell_tensorboard_text(self, name: str, text: str, step: int, scalar: tuple[str, int] | None = None) -> None:
        # A text entry in the trial's own TensorBoard folder (TEXT tab), beside its curves.
        if self.pruned_tensorboard is None:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(self.pruned_tensorboard / name))
        with writer.as_default():
            tf.summary.text(name, text, step=step)
            if scalar is not None:
                tf.summary.scalar(scalar[0], scalar[1], step=step)
        writer.close()


class EpochProgress(keras.callbacks.Callback):
    """Logs one line per epoch: "<label> epoch i/n: loss ..., accuracy ... (elapsed)", for trainings run alone."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.started = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        log.info("%s epoch %d/%d: loss %.4f, accuracy %.4f (%.0fs)", self.label, epoch + 1,
                 (self.params or {}).get("epochs", epoch + 1), logs.get("loss", math.nan), logs.get("accuracy", math.nan),
                 time.monotonic() - self.started)
