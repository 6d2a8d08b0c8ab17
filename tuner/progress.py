"""What a search records and says while it runs: each trial's per-epoch curve and one progress line per trial."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import keras

from tuner.files import atomic_write_json
from tuner.footprint import measure_footprint, write_footprint_summary
from tuner.rundir import Run
from tuner.pruning import MedianPruner, Verdict
from tuner.trials import COMPLETED, FINISHED, RANKED, iter_trials

log = logging.getLogger(__name__)


class EpochHistory(keras.callbacks.Callback):
    """Writes a trial's per-epoch metrics to RUN/history/trial_<id>.json after every epoch, and prunes.

    KerasTuner keeps only the best epoch's metrics, so the curves are recorded here; each
    write is atomic, so a kill leaves the curve up to the last finished epoch. (KerasTuner
    deep-copies callbacks, so the file, not this object, is what the tuner reads back.)
    With a pruner, a trial it judges hopeless stops after this epoch, and its verdict is
    written into the same file, in the same write as the epoch that decided it. With
    `footprint_tensorboard`, the trained model's size and speed (footprint.measure_footprint)
    are added to the file when training ends, and written there for TensorBoard's HParams view.
    """

    def __init__(self, path: Path, trial_id: str, pruner: MedianPruner | None = None,
                 tensorboard_dir: Path | None = None, footprint_tensorboard: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.trial_id = trial_id
        self.pruner = pruner
        self.tensorboard_dir = tensorboard_dir
        self.footprint_tensorboard = footprint_tensorboard
        self.epochs: list[dict[str, float]] = []
        self.record: dict[str, Any] = {}
        self.started = time.monotonic()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()
        self.epochs = []
        self.record = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch + 1, **{name: float(value) for name, value in (logs or {}).items()}}
        row["seconds"] = round(time.monotonic() - self.started, 3)
        self.epochs.append(row)
        self.record = record = {"trial_id": self.trial_id, "epochs": self.epochs, "seconds": row["seconds"]}
        # A trial at its last epoch has finished anyway: it is completed, and counts in later medians.
        last_epoch = epoch + 1 >= (self.params or {}).get("epochs", float("inf"))
        verdict = self.pruner.verdict(self.trial_id, self.epochs) if self.pruner is not None and not last_epoch else None
        if verdict is not None:
            record["pruned"] = verdict.to_json()
        atomic_write_json(self.path, record)
        if verdict is not None:
            self.model.stop_training = True
            self._tell_tensorboard(verdict)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # Measured after the curve's last write, so the trial's seconds are its training alone.
        if self.footprint_tensorboard is None or not self.record:
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
        if self.tensorboard_dir is None:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(self.tensorboard_dir / "pruned"))
        with writer.as_default():
            tf.summary.text("pruned", verdict.describe(), step=verdict.epoch)
            tf.summary.scalar("pruned_at_epoch", verdict.epoch, step=verdict.epoch)
        writer.close()


class SearchProgress:
    """Logs one line per finished trial: its number, hyperparameters, result, best so far and time left.

    Counts come from the run directory, so they are right after a resume and across workers;
    the time left is the run's pace since this process started (every worker's trials count).
    """

    def __init__(self, run: Run, total: int | None = None) -> None:
        self.run = run
        self.total = total
        self.finished, self.best = _finished_so_far(run)
        self.finished_at_start = self.finished
        self.started = time.monotonic()

    def trial_ended(self, trial_id: str, status: str, values: dict[str, Any], val_loss: float | None,
                    reason: str | None, pruned_at: int | None = None) -> None:
        self.finished, self.best = _finished_so_far(self.run)
        shown = " ".join(f"{name}={value}" for name, value in values.items() if not name.startswith("tuner/"))
        number = f"{self.finished}/{self.total}" if self.total else str(self.finished)
        if status == COMPLETED and val_loss is not None:
            outcome = f"val_loss {val_loss:.4f}" + (f" (pruned at epoch {pruned_at})" if pruned_at else "")
        else:
            outcome = f"FAILED: {reason}"
        best = f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else "best -"
        elapsed = time.monotonic() - self.started
        left = ""
        finished_since_start = max(self.finished - self.finished_at_start, 1)
        if self.total:
            remaining = max(self.total - self.finished, 0)
            left = f", ~{_clock(elapsed / finished_since_start * remaining)} left"
        log.info("[%s] trial %s %s: %s | %s | %s elapsed%s", number, trial_id, shown, outcome, best, _clock(elapsed), left)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _finished_so_far(run: Run) -> tuple[int, tuple[float, str] | None]:
    finished, best = 0, None
    for record in iter_trials(run):
        if record.status not in FINISHED:
            continue
        finished += 1
        loss = record.best_val_loss
        if record.status in RANKED and loss is not None and (best is None or loss < best[0]):
            best = (loss, record.trial_id)
    return finished, best
