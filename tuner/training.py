"""How a configuration is trained: the one fit, and the callbacks a search trial, a confirm run and the retrain share.

A search trial (through KerasTuner, whose hook CNNHyperModel.fit calls `fit`), a confirm run
(confirm.train_configuration) and the retrain of the winner (winner.retrain_best) differ only in
what `TrainingPlan` names: where TensorBoard writes, the patience of early stopping, whether the
curve goes to a file, pruning, the footprint measurement and progress lines. Everything else
(silent, no reshuffling by Keras, one curve row per epoch with the same keys) is decided here once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tuner.files import atomic_write_json
from tuner.footprint import measure_footprint, write_footprint_summary
from tuner.pruning import MedianPruner, Verdict

log = logging.getLogger(__name__)


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
        pruned_tensorboard: where a pruning verdict is written as text, beside the trial's curves.
        footprint_tensorboard: measure the trained model's size and speed when training ends, add
            them to the curve file and write them here for TensorBoard's HParams view.
        progress_label: log one line per epoch, starting with this label (e.g. "retrain").
    """

    tensorboard_dir: Path | None = None
    patience: int = 0
    curve_file: Path | None = None
    trial_id: str | None = None
    pruner: MedianPruner | None = None
    pruned_tensorboard: Path | None = None
    footprint_tensorboard: Path | None = None
    progress_label: str | None = None


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
    curve = CurveWriter(plan.curve_file, plan.trial_id, plan.pruner, plan.pruned_tensorboard, plan.footprint_tensorboard)
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
        initial_epoch: where a continued training starts (Hyperband's later rounds).

    Returns:
        Keras' History, which KerasTuner reads a trial's objective from.
    """
    # The pipelines are already shuffled by tf.data (Keras would only warn about shuffle=True), and
    # the tool logs its own lines instead of Keras' progress bars.
    return model.fit(train, validation_data=validation_data, epochs=epochs, initial_epoch=initial_epoch,
                     callbacks=callbacks, verbose=0, shuffle=False)


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

    def __init__(self, path: Path | None = None, trial_id: str | None = None, pruner: MedianPruner | None = None,
                 pruned_tensorboard: Path | None = None, footprint_tensorboard: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.trial_id = trial_id
        self.pruner = pruner
        self.pruned_tensorboard = pruned_tensorboard
        self.footprint_tensorboard = footprint_tensorboard
        self.epochs: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self.started = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()
        self.epochs = []
        self.record = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = curve_row(epoch, logs, time.monotonic() - self.started)
        self.epochs.append(row)
        if self.path is None:
            return
        self.record = record = {"trial_id": self.trial_id, "epochs": self.epochs, "seconds": row["seconds"]}
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

    def _tell_tensorboard(self, verdict: Verdict) -> None:
        # A text entry in the trial's own TensorBoard folder (TEXT tab), beside its curves.
        if self.pruned_tensorboard is None:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(self.pruned_tensorboard / "pruned"))
        with writer.as_default():
            tf.summary.text("pruned", verdict.describe(), step=verdict.epoch)
            tf.summary.scalar("pruned_at_epoch", verdict.epoch, step=verdict.epoch)
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
