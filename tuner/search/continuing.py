"""A trial that continues an earlier trial's training: from its last epoch, with the optimizer's state it had."""

from __future__ import annotations

import os
from typing import Any

import keras_tuner

from tuner.search.halving import CONTINUES, EPOCHS, INITIAL_EPOCH
from tuner.search.kerastuner import HookedTuner, checkpoint_path

# The weights and optimizer state of a trial's last epoch, beside KerasTuner's best-epoch checkpoint.
LAST_EPOCH_WEIGHTS = "last_epoch.weights.h5"


class ContinuingTuner(HookedTuner):
    """A tuner over any oracle in which a trial with `tuner/trial_id` continues that trial.

    The trial trains from `tuner/initial_epoch` to `tuner/epochs`, as in KerasTuner's Hyperband,
    but goes on from where the earlier trial stopped. Hyperband loads the earlier trial's BEST
    epoch's weights into a model whose optimizer is not built yet, so Keras skips the saved
    optimizer state (a warning) and Adam starts again with empty moments. Here the optimizer is
    built first and the earlier trial's LAST epoch (weights, optimizer moments and step count) is
    loaded, so the training goes on as if it had never stopped; KerasTuner's best-epoch
    checkpoint is the fallback for a trial without one.
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
        if not os.path.exists(path):
            path = str(checkpoint_path(self.get_trial_dir(earlier)))
        # Built before loading, the optimizer takes the saved moments and step count instead of skipping them.
        model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
