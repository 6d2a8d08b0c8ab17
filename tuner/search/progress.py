"""What a search says while it runs: one progress line per finished trial or confirm run (curves: training.CurveWriter)."""

from __future__ import annotations

import logging
import time
from typing import Any

from tuner.rundir import Run
from tuner.trials.records import COMPLETED, FINISHED, RANKED, best_epoch, iter_trials

log = logging.getLogger(__name__)


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
                    reason: str | None, pruned_at: int | None = None,
                    promoted: tuple[str, int, int] | None = None) -> None:
        """Log the line of a finished trial; `promoted` is (the trial it continues, its rung, epochs) for a continued one."""
        self.finished, self.best = _finished_so_far(self.run)
        shown = " ".join(f"{name}={_shown(value)}" for name, value in values.items() if not name.startswith("tuner/"))
        # Successive halving plans its trials as if no promotion were premature; a few more may run (halving.py).
        total = max(self.total, self.finished) if self.total else None
        number = f"{self.finished}/{total}" if total else str(self.finished)
        if status == COMPLETED and val_loss is not None:
            outcome = f"val_loss {val_loss:.4f}" + (f" (pruned at epoch {pruned_at})" if pruned_at else "")
        else:
            outcome = f"FAILED: {reason}"
        if promoted is not None:
            outcome = f"promoted trial {promoted[0]} to rung {promoted[1]} ({promoted[2]} epochs): {outcome}"
        best = f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else "best -"
        elapsed = time.monotonic() - self.started
        left = ""
        finished_since_start = max(self.finished - self.finished_at_start, 1)
        if total:
            remaining = max(total - self.finished, 0)
            left = f", ~{_clock(elapsed / finished_since_start * remaining)} left"
        log.info("[%s] trial %s %s: %s | %s | %s elapsed%s", number, trial_id, shown, outcome, best, _clock(elapsed), left)


def _shown(value: object) -> str:
    # A learning rate drawn on a log scale has 17 digits; 4 significant ones tell configurations apart.
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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


def log_confirm_run(saved: dict[str, Any], number: int, total: int) -> None:
    """One progress line for a finished confirm run (confirm.runs.train_confirm_run's record), the `number`th of `total`."""
    best = best_epoch(saved["epochs"])
    log.info("confirm %d/%d: trial %s seed %d: best val_loss %s at epoch %s (%.0fs)", number, total, saved["trial"],
             saved["index"], f"{best['val_loss']:.4f}" if best else "none (diverged)", best["epoch"] if best else "-",
             saved["seconds"])
