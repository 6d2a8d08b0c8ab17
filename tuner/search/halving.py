"""Asynchronous successive halving (ASHA): one bracket, reduction factor 3, as a KerasTuner oracle.

Li et al. 2018, "A System for Massively Parallel Hyperparameter Tuning" (Algorithm 2): whenever
a worker asks for a trial, promote a configuration from the highest rung that has one in the
top third of its finished configurations not promoted yet; otherwise start a new configuration
at the first rung. No worker waits for a rung to fill. A promoted configuration is a new trial
that continues the earlier one's training (continuing.ContinuingTuner), named by the schedule
values KerasTuner's Hyperband uses (`tuner/trial_id`, `tuner/epochs`, ...). A baseline
configuration, if given, is the first one started and is promoted at every rung whatever its rank:
a configuration known to train well but slowly, which low rungs alone would drop.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import keras_tuner

from tuner.config.spaces import smallest_side_for
from tuner.errors import TunerUsageError
from tuner.search.kerastuner import (
    ConfigurationHashMixin,
    already_tried,
    configuration_hash,
    held_trials,
    observe_trials,
)
from tuner.search.neighbours import neighbour
from tuner.rundir.checks import BRACKET, CONTINUES, EPOCHS, INITIAL_EPOCH, ROUND, TUNER_VALUE_PREFIX
from tuner.trials.records import COMPLETED, IDLE, RUNNING, STOPPED, is_finite_number

# A trial's place in the schedule, kept in its hyperparameter values under the names KerasTuner's Hyperband gives
# them (its oracle's docstring), so that the report and the run checks read both tuners' trials alike: the trial it
# continues, the epochs it trains to and from, its bracket (one here) and its round (our rung). They are named where
# the run checks read them back (rundir/checks.py), and trials/schedule.py checks the places this oracle gives.
SCHEDULE_PREFIX = TUNER_VALUE_PREFIX
REDUCTION_FACTOR = 3
# New configurations when --max-trials is not given, sized so that search + report take under half the tutorial
# loop's time on 2 cores. In the modern space: 18 (the baseline and 17 proposed), 6 continued (the baseline and the
# best 5), 2 trained to the full epochs (the baseline and the best other); without a baseline, 18, 6 and 2 as well.
# With --epochs 10 (rungs of 2, 3 and 10 epochs) that is 18 * 2 + 6 * 1 + 2 * 7 = 56 epochs of training, a fifth of
# the grid's 270. 27 (the grid's count) took 0.54x the loop's time on the sample (before the longer retrain) for
# about as many test errors (BENCHMARKS.md, "Better models").
DEFAULT_CONFIGURATIONS = 18
# Epochs of the first rung, at least: after one epoch of a small image set (tens of steps), batch norm, global
# average pooling and low learning rates still score as chance, so one epoch ranks slow starters last, not worst
# (BENCHMARKS.md, "Better models").
MIN_FIRST_RUNG = 2
# Random configurations before Bayesian proposals start, at least (a Gaussian process on fewer points says little).
RANDOM_START = 5


def rung_epochs(epochs: int, factor: int = REDUCTION_FACTOR) -> tuple[int, ...]:
    """The epochs a configuration has trained when it finishes each rung, the last one `epochs`.

    As many rungs as keep the first at least one epoch before rounding (factor**K <= epochs); rung k
    trains to epochs / factor**(K - k), rounded to the nearest epoch (halves up), and the first rung
    to at least MIN_FIRST_RUNG epochs, dropping a rung that would then not be above the one before:
    --epochs 9 gives 2 3 9, 10 gives 2 3 10, 20 gives 2 7 20, 27 gives 2 3 9 27, 5 gives 2 5, 2 gives
    one rung of 2 (a plain random search).
    """
    top = 0
    while factor ** (top + 1) <= epochs:
        top += 1
    rungs: list[int] = []
    for rung in range(top + 1):
        trained = max(MIN_FIRST_RUNG, int(epochs / factor ** (top - rung) + 0.5))
        if not rungs or trained > rungs[-1]:
            rungs.append(min(trained, epochs))
    return tuple(rungs)


def planned_configurations(configurations: int, rungs: int, factor: int = REDUCTION_FACTOR,
                           baseline: bool = False) -> list[int]:
    """How many configurations reach each rung when every one finishes: n, n // 3, n // 9, ...

    With a baseline (one of the n, continued to every rung), the others are thinned: n, (n - 1) // 3 + 1, ...
    """
    kept = 1 if baseline and configurations else 0
    others, sizes = configurations - kept, [configurations]
    for _ in range(rungs - 1):
        others //= factor
        sizes.append(others + kept)
    return sizes


class SuccessiveHalvingOracle(ConfigurationHashMixin, keras_tuner.oracles.RandomSearchOracle):
    """ASHA over KerasTuner's random proposals: `configurations` new ones, each promoted as it earns it.

    NeighbourSuccessiveHalvingOracle proposes near the best so far instead, BayesianSuccessiveHalvingOracle with
    KerasTuner's Bayesian optimisation (`propose`).

    The oracle keeps no state of its own: a trial's rung and the trial it continues are in its
    values (`tuner/round`, `tuner/trial_id`), which KerasTuner saves in each trial.json, so a
    reload after kill -9 (oracles.repair_after_reload), a chief restart or a worker's copy
    decides exactly as the oracle before it would have.

    Args:
        epochs: the full training of a configuration (the top rung); the rungs follow (rung_epochs).
        configurations: new configurations to try (--max-trials).
        baseline: a configuration (hyperparameter values) to propose first and continue to every rung, whatever its
            rank (config.spaces.modern_baseline); None for none. It counts among `configurations`, and the others
            are thinned by the reduction factor beside it (planned_configurations).
        objective, seed, max_retries_per_trial, max_consecutive_failed_trials: as KerasTuner's.
    """

    def __init__(self, objective: Any, epochs: int, configurations: int = DEFAULT_CONFIGURATIONS,
                 seed: int | None = None, baseline: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.rungs = rung_epochs(epochs)
        self.configurations = configurations
        self.baseline = dict(baseline) if baseline else None
        # The base Oracle stops at max_trials trials: no configuration trains twice at a rung, so
        # configurations x rungs is never reached; it also sets the width of the trial ids.
        super().__init__(objective=objective, max_trials=configurations * len(self.rungs), seed=seed, **kwargs)
        # Hashed once: is_baseline compares it with every trial's each time a worker asks for one.
        self._baseline_hash = configuration_hash(self, self.baseline) if self.baseline else None

    def hashed_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """A trial's configuration without its schedule values: the base Oracle never hands out a hash twice, and
        a first-rung trial carries its schedule, so otherwise a random draw could repeat a trained configuration."""
        return configuration_of(values)

    def planned_trials(self, space_size: int | None = None) -> int:
        """Trials in all if every configuration finishes and none is promoted by mistake (the synchronous plan).

        A space smaller than the budget (`space_size` configurations) runs each of its configurations.

        An asynchronous promotion can turn out, once more results are in, not to be in the top
        third ("mispromotions" in Li et al.): a search may then run a few trials more, never
        more than configurations x rungs.
        """
        configurations = min(self.configurations, space_size) if space_size else self.configurations
        return sum(planned_configurations(configurations, len(self.rungs), baseline=self.baseline is not None))

    # populate_space is KerasTuner's hook for a subclass: the base Oracle calls it for each new trial.

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        promotion = self.next_promotion()
        if promotion is not None:
            earlier, rung = promotion
            values = dict(earlier.hyperparameters.values)
            values.update(self.schedule(rung, continues=earlier.trial_id))
            return {"status": RUNNING, "values": values}
        started = [trial for trial in self.trials.values() if rung_of(trial) == 0]
        if len(started) < self.configurations:
            if self.baseline is not None and not any(map(self.is_baseline, started)):
                return {"status": RUNNING, "values": {**self.baseline, **self.schedule(0)}}
            proposal = self.propose(trial_id)
            if proposal["status"] == RUNNING:
                return {"status": RUNNING, "values": {**proposal["values"], **self.schedule(0)}}
        # Nothing to promote now, and no new configuration left (the budget is used, or the space is).
        if held_trials(self):
            return {"status": IDLE, "values": None}
        return {"status": STOPPED, "values": None}

    def propose(self, trial_id: str) -> dict[str, Any]:
        """A new configuration for the first rung: KerasTuner's random draw, never one tried before."""
        return super().populate_space(trial_id)

    def schedule(self, rung: int, continues: str | None = None) -> dict[str, Any]:
        """The `tuner/` values of a trial at `rung`: what it trains, and the trial it continues."""
        values: dict[str, Any] = {EPOCHS: self.rungs[rung], INITIAL_EPOCH: self.rungs[rung - 1] if rung else 0,
                                  BRACKET: 0, ROUND: rung}
        if continues is not None:
            values[CONTINUES] = continues
        return values

    def check_schedule(self) -> None:
        """Refuse a reloaded run whose trials trained other rungs than these (a run started before settings.json's
        format 2 may have a first rung of 1 epoch): a promotion would start from an epoch its earlier trial never
        reached. Refuse one that started without the baseline (possible before format 2), too: it would arrive in
        the middle of the run, and the run's budget was planned without it."""
        if self.baseline is not None and self.trials and not any(map(self.is_baseline, self.trials.values())):
            raise TunerUsageError(
                "this run's successive halving started without the recipe's baseline configuration, which every search "
                "since settings.json's format 2 proposes first; search again with --overwrite (or another --run-dir), "
                "or resume it with the release that made it.")
        for trial in self.trials.values():
            rung, trained = rung_of(trial), trial.hyperparameters.values.get(EPOCHS)
            if rung is not None and (rung >= len(self.rungs) or trained != self.rungs[rung]):
                raise TunerUsageError(
                    f"this run's successive halving trained trial {trial.trial_id} to {trained} epochs at rung {rung}, but "
                    f"the rungs of every search since settings.json's format 2 are {', '.join(map(str, self.rungs))} "
                    f"epochs; search again with --overwrite (or another --run-dir), or resume it with the release that "
                    f"made it.")

    def next_promotion(self) -> tuple[Any, int] | None:
        """(the trial to continue, the rung it goes to), from the highest rung that has one; None if none has."""
        return next_promotion(list(self.trials.values()), len(self.rungs), self.objective.direction == "max",
                              always=self.is_baseline)

    def is_baseline(self, trial: Any) -> bool:
        """Whether `trial` trains the baseline configuration (at any rung: its schedule values aside)."""
        return self._baseline_hash is not None and (
            configuration_hash(self, trial.hyperparameters.values) == self._baseline_hash)


class BayesianSuccessiveHalvingOracle(SuccessiveHalvingOracle):
    """ASHA whose new configurations come from KerasTuner's Bayesian optimisation (a Gaussian process, UCB).

    The Gaussian process is fitted on the first rung only, where every configuration has a result
    after the same epochs; a later rung's lower losses come from longer training, not from a better
    configuration. After the baseline (if any), the first third of the configurations (at least
    RANDOM_START) are random draws, as KerasTuner's own Bayesian oracle starts with random points; so
    is any proposal that repeats a configuration already tried.
    """

    def propose(self, trial_id: str) -> dict[str, Any]:
        first_rung = [trial for trial in self.trials.values() if rung_of(trial) == 0
                      and (trial.status == RUNNING or trial.status == COMPLETED and is_finite_number(trial.score))]
        random_start = max(RANDOM_START, self.configurations // REDUCTION_FACTOR)
        return self.gaussian_process_proposal(trial_id, first_rung, random_start) or super().propose(trial_id)

    def gaussian_process_proposal(self, trial_id: str, observed: list[Any], random_start: int) -> dict[str, Any] | None:
        """KerasTuner's Bayesian proposal (BayesianOptimizationOracle.populate_space) fitted on `observed` only.

        KerasTuner fits its Gaussian process on every trial of its own oracle. Here a throwaway
        BayesianOptimizationOracle over this space holds only the `observed` trials (those still
        running counted at a pessimistic guess, as KerasTuner does), so this oracle's trials, which
        the chief's other threads read, are never touched. None (draw at random instead) until
        `random_start` of them have finished, and when the proposal is a configuration already tried
        (KerasTuner does not check: a Choice-only optimum often maps back to one).
        """
        if sum(trial.status == COMPLETED for trial in observed) < random_start:
            return None
        # Seeded by this oracle's seed and trial count: the same state proposes the same configuration after a reload.
        proposer = keras_tuner.oracles.BayesianOptimizationOracle(
            objective=self.objective, hyperparameters=self.get_space(), num_initial_points=random_start,
            seed=(self.seed + len(self.trials)) % 2**32)
        observe_trials(proposer, observed, running=RUNNING)
        proposal = proposer.populate_space(trial_id)
        if proposal["status"] != RUNNING or already_tried(self, proposal["values"]):
            return None
        return proposal


class NeighbourSuccessiveHalvingOracle(SuccessiveHalvingOracle):
    """ASHA whose new configurations are neighbours of the best so far (search.neighbours): one or two of its
    dimensions moved one step.

    The best so far is the best finished trial at the highest rung any trial has finished, so a configuration is
    compared with others trained as long; before any has finished, the baseline (or, with none, a random draw). As
    the baseline is continued at every rung, it is the parent until a challenger beats it at a rung both reached.
    A neighbour is never one tried before, nor one with more conv blocks than `image_side` px allow (it would fail
    at its build); when none is left near the parent, the proposal is a random draw.

    Args:
        image_side: the images' smaller side in pixels (None: any number of blocks fits).
        the rest: as SuccessiveHalvingOracle's.
    """

    def __init__(self, *args: Any, image_side: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.image_side = image_side

    def propose(self, trial_id: str) -> dict[str, Any]:
        parent = self.parent()
        if parent is not None:
            # Seeded by this oracle's seed and trial count: the same state proposes the same configuration after a reload.
            rng = random.Random((self.seed + len(self.trials)) % 2**32)
            values = neighbour(parent, self.get_space().space, rng, self.allowed)
            if values is not None:
                return {"status": RUNNING, "values": values}
        return super().propose(trial_id)

    def parent(self) -> dict[str, Any] | None:
        """The configuration new ones are drawn near: the best so far, or the baseline before any has finished."""
        finished = [trial for trial in self.trials.values() if rung_of(trial) is not None
                    and trial.status == COMPLETED and is_finite_number(trial.score)]
        if not finished:
            return dict(self.baseline) if self.baseline is not None else None
        top = max(map(rung_of, finished))
        sign = -1 if self.objective.direction == "max" else 1
        best = min((trial for trial in finished if rung_of(trial) == top),
                   key=lambda trial: (sign * trial.score, trial.trial_id))
        return configuration_of(best.hyperparameters.values)

    def allowed(self, values: dict[str, Any]) -> bool:
        """Whether a proposal is new and its conv blocks fit the images."""
        if already_tried(self, values):
            return False
        if self.image_side is None or "conv_layers" not in values:
            return True
        return smallest_side_for(values["conv_layers"], values.get("convs_per_block", 1)) <= self.image_side


def configuration_of(values: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameter values without the schedule's (`tuner/...`): the configuration it trains."""
    return {name: value for name, value in values.items() if not name.startswith(SCHEDULE_PREFIX)}


def rung_of(trial: Any) -> int | None:
    """The rung of a trial of this oracle (its `tuner/round`), None for a trial without one."""
    rung = trial.hyperparameters.values.get(ROUND)
    return rung if isinstance(rung, int) else None


def next_promotion(trials: list[Any], rungs: int, maximize: bool = False, factor: int = REDUCTION_FACTOR,
                   always: Callable[[Any], bool] = lambda trial: False) -> tuple[Any, int] | None:
    """ASHA's rule over KerasTuner trials: the best not-yet-promoted trial in the top 1/factor of its rung.

    A trial for which `always` says so (the baseline) is promoted whatever its rank, first, and left out of the
    others' ranking, so the top third of the others still goes on.

    Rungs are searched from the highest below the top down, so a configuration close to the full
    training goes on first. A trial counts at its rung once it is COMPLETED with a finite score;
    it is promoted once any trial continues it (a failed or interrupted continuation included:
    the retry queue, not a second promotion, runs it again). Ties go to the lower trial id.
    """
    continued = {trial.hyperparameters.values.get(CONTINUES) for trial in trials}
    for rung in reversed(range(rungs - 1)):
        finished = [trial for trial in trials if rung_of(trial) == rung and trial.status == COMPLETED
                    and is_finite_number(trial.score)]
        kept = [trial for trial in finished if always(trial)]
        ranked = sorted((trial for trial in finished if trial not in kept),
                        key=lambda trial: (-trial.score if maximize else trial.score, trial.trial_id))
        for trial in kept + ranked[:len(ranked) // factor]:
            if trial.trial_id not in continued:
                return trial, rung + 1
    return None
