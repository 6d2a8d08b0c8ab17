"""tuner.search.halving: ASHA's rungs and promotion rule, driven through the oracle on synthetic results (no training)."""

import json
import math
import os
import re
import statistics

import keras_tuner
import pytest

from tuner.search.halving import (
    BayesianSuccessiveHalvingOracle,
    NeighbourSuccessiveHalvingOracle,
    SuccessiveHalvingOracle,
    planned_configurations,
    rung_epochs,
)
from tuner.errors import TunerUsageError
from tuner.search.kerastuner import configure_keras_tuner
from tuner.search.oracles import planned_trials, repair_after_reload
from tuner.rundir import Run
from tuner.search.continuing import (
    LAST_EPOCH_WEIGHTS,
    ContinuingTuner,
    SourceWeightsError,
    source_weights_problems,
    weights_problem,
)
from tuner.trials.records import COMPLETED, IDLE, RUNNING, STOPPED, TrialRecord, scan_trials


@pytest.fixture(autouse=True)
def atomic_keras_tuner():
    configure_keras_tuner()


@pytest.mark.parametrize("epochs, rungs", [(9, (2, 3, 9)), (10, (2, 3, 10)), (20, (2, 7, 20)), (27, (2, 3, 9, 27)),
                                           (3, (2, 3)), (5, (2, 5)), (2, (2,)), (100, (2, 4, 11, 33, 100))])
def test_rungs_follow_the_epochs_by_factor_3_and_the_first_trains_at_least_2_epochs(epochs, rungs):
    assert rung_epochs(epochs) == rungs


def test_the_plan_keeps_a_third_at_each_rung():
    assert planned_configurations(27, 3) == [27, 9, 3]
    assert planned_configurations(10, 3) == [10, 3, 1]


def test_a_baseline_takes_one_place_at_every_rung_and_the_others_are_thinned_by_3():
    # 27 keeps the sizes it had without a baseline (26 others thinned to 8 and 2, the baseline beside them); 18, the
    # default, gives 18, 6 and 2.
    assert planned_configurations(27, 3, baseline=True) == [27, 9, 3]
    assert planned_configurations(18, 3, baseline=True) == [18, 6, 2]
    assert planned_configurations(10, 3, baseline=True) == [10, 4, 2]
    assert planned_configurations(1, 3, baseline=True) == [1, 1, 1]


def halving_oracle(directory, epochs=9, configurations=9, baseline=None):
    """An ASHA oracle over conv_layers 1 2 3 x nodes 4 8 16 (9 configurations) in `directory`, reloaded if saved."""
    oracle = SuccessiveHalvingOracle(objective=keras_tuner.Objective("val_loss", "min"), epochs=epochs,
                                     configurations=configurations, seed=1, baseline=baseline)
    oracle._set_project_dir(str(directory), "trials")
    space = keras_tuner.HyperParameters()
    space.Choice("conv_layers", [1, 2, 3])
    space.Choice("nodes", [4, 8, 16])
    oracle.update_space(space)
    if (directory / "trials" / "oracle.json").exists():
        oracle.reload()
    return oracle


def finish(oracle, trial, val_loss):
    oracle.update_trial(trial.trial_id, {"val_loss": val_loss})
    trial.status = COMPLETED
    oracle.end_trial(trial)


# A tuner id holds one trial at a time (KerasTuner hands it back its ongoing one): trials running at once
# are asked for by different workers.


def schedule(trial):
    values = trial.hyperparameters.values
    return (values.get("tuner/round"), values.get("tuner/initial_epoch"), values.get("tuner/epochs"),
            values.get("tuner/trial_id"))


def configuration(trial):
    return {name: value for name, value in trial.hyperparameters.values.items() if not name.startswith("tuner/")}


def test_the_best_third_of_a_rung_is_promoted_as_soon_as_it_is_known_and_continues_its_trial(tmp_path):
    oracle = halving_oracle(tmp_path)
    first = [oracle.create_trial(f"worker{index}") for index in range(3)]
    assert [schedule(trial) for trial in first] == [(0, 0, 2, None)] * 3
    for trial, loss in zip(first, (0.3, 0.1, 0.2)):
        finish(oracle, trial, loss)
    promoted = oracle.create_trial("tuner0")
    assert schedule(promoted) == (1, 2, 3, first[1].trial_id)
    assert configuration(promoted) == configuration(first[1])
    # Asynchronous: while the promoted trial trains, the next worker starts a new configuration.
    fresh = oracle.create_trial("tuner1")
    assert schedule(fresh) == (0, 0, 2, None) and configuration(fresh) not in [configuration(t) for t in first]


BASELINE = {"conv_layers": 3, "nodes": 16}


def test_the_baseline_is_proposed_first_and_continued_to_the_top_rung_whatever_its_rank(tmp_path):
    oracle = halving_oracle(tmp_path, baseline=BASELINE)
    rung0 = [oracle.create_trial(f"worker{index}") for index in range(4)]
    assert configuration(rung0[0]) == BASELINE and BASELINE not in [configuration(t) for t in rung0[1:]]
    # The baseline starts slowest (the worst of its rung); of the 3 others, the best third (one) goes on too.
    for trial, loss in zip(rung0, (0.9, 0.3, 0.1, 0.2)):
        finish(oracle, trial, loss)
    promoted = [oracle.create_trial("a"), oracle.create_trial("b")]
    assert [schedule(trial) for trial in promoted] == [(1, 2, 3, rung0[0].trial_id), (1, 2, 3, rung0[2].trial_id)]
    fresh = oracle.create_trial("c")
    assert schedule(fresh) == (0, 0, 2, None)  # nothing else earned it
    for trial, loss in zip([*promoted, fresh], (0.5, 0.05, 0.95)):
        finish(oracle, trial, loss)
    # A reload (kill -9, a chief restart) knows the baseline by its values: it goes on to the full epochs.
    oracle = halving_oracle(tmp_path, baseline=BASELINE)
    assert repair_after_reload(oracle) == []
    top = oracle.create_trial("d")
    assert schedule(top) == (2, 3, 9, promoted[0].trial_id) and configuration(top) == BASELINE


def test_without_a_baseline_the_first_configuration_is_a_random_draw(tmp_path):
    assert configuration(halving_oracle(tmp_path / "random").create_trial("tuner0")) != BASELINE  # seed 1 draws another
    assert configuration(halving_oracle(tmp_path / "baseline", baseline=BASELINE).create_trial("tuner0")) == BASELINE


def test_a_run_started_without_the_baseline_is_refused_when_resumed_with_one(tmp_path):
    oracle = halving_oracle(tmp_path)
    finish(oracle, oracle.create_trial("tuner0"), 0.3)
    before = {path: path.read_bytes() for path in (tmp_path / "trials").rglob("*.json")}
    with pytest.raises(TunerUsageError, match="started without the recipe's baseline configuration"):
        repair_after_reload(halving_oracle(tmp_path, baseline=BASELINE))
    assert {path: path.read_bytes() for path in (tmp_path / "trials").rglob("*.json")} == before
    # The run the baseline started resumes.
    fresh = tmp_path / "fresh"
    oracle = halving_oracle(fresh, baseline=BASELINE)
    finish(oracle, oracle.create_trial("tuner0"), 0.3)
    assert repair_after_reload(halving_oracle(fresh, baseline=BASELINE)) == []


def test_the_highest_rung_goes_first_and_a_new_result_can_earn_a_promotion_later(tmp_path):
    oracle = halving_oracle(tmp_path)
    rung0 = [oracle.create_trial(f"worker{index}") for index in range(6)]
    for trial, loss in zip(rung0[:3], (0.5, 0.4, 0.6)):
        finish(oracle, trial, loss)
    to_rung1 = [oracle.create_trial("a")]
    assert schedule(to_rung1[0])[3] == rung0[1].trial_id
    # Three more results: the top third of six is two, and rung0[4] (0.1) is in it and not promoted yet.
    for trial, loss in zip(rung0[3:], (0.9, 0.1, 0.8)):
        finish(oracle, trial, loss)
    to_rung1.append(oracle.create_trial("b"))
    assert schedule(to_rung1[1]) == (1, 2, 3, rung0[4].trial_id)
    for trial, loss in zip(to_rung1, (0.3, 0.2)):
        finish(oracle, trial, loss)
    # Rung 1 has two results: none is in its top third yet, so rung 0 is looked at; nothing there either.
    assert schedule(oracle.create_trial("c")) == (0, 0, 2, None)


def test_with_the_budget_used_a_worker_waits_while_others_train_then_the_search_stops(tmp_path):
    oracle = halving_oracle(tmp_path, epochs=3, configurations=3)
    trials = [oracle.create_trial(f"tuner{index}") for index in range(3)]
    assert oracle.create_trial("tuner3").status == IDLE  # the budget is used, results may still earn a promotion
    for trial, loss in zip(trials, (0.2, 0.1, 0.3)):
        finish(oracle, trial, loss)
    last = oracle.create_trial("tuner0")
    assert schedule(last) == (1, 2, 3, trials[1].trial_id)
    assert oracle.create_trial("tuner1").status == IDLE
    finish(oracle, last, 0.05)
    assert oracle.create_trial("tuner0").status == STOPPED
    assert planned_trials(oracle, space_size=9) == 4 and len(oracle.trials) == 4


def test_with_2_epochs_one_rung_trains_each_configuration_to_the_end_and_nothing_is_promoted(tmp_path):
    oracle = halving_oracle(tmp_path, epochs=2, configurations=3)
    assert oracle.rungs == (2,) and planned_trials(oracle, space_size=9) == 3
    trials = [oracle.create_trial(f"tuner{index}") for index in range(3)]
    assert [schedule(trial) for trial in trials] == [(0, 0, 2, None)] * 3
    for trial, loss in zip(trials, (0.2, 0.1, 0.3)):
        finish(oracle, trial, loss)
    assert oracle.create_trial("tuner0").status == STOPPED and len(oracle.trials) == 3


def test_a_reloaded_oracle_decides_as_the_one_before_the_kill(tmp_path):
    oracle = halving_oracle(tmp_path)
    trials = [oracle.create_trial(f"worker{index}") for index in range(3)]
    for trial, loss in zip(trials, (0.3, 0.1, 0.2)):
        finish(oracle, trial, loss)
    interrupted = oracle.create_trial("tuner0")  # the process dies while it trains the promotion
    oracle = halving_oracle(tmp_path)
    assert repair_after_reload(oracle) == [interrupted.trial_id]
    again = oracle.create_trial("tuner0")
    assert again.trial_id == interrupted.trial_id and again.status == RUNNING
    assert schedule(again) == (1, 2, 3, trials[1].trial_id)
    # Nothing is promoted twice: the next trial is a new configuration.
    assert schedule(oracle.create_trial("tuner1")) == (0, 0, 2, None)


def test_a_failed_or_diverged_trial_is_never_promoted(tmp_path):
    oracle = halving_oracle(tmp_path, epochs=3, configurations=4)
    trials = [oracle.create_trial(f"worker{index}") for index in range(4)]
    trials[0].status = "FAILED"
    oracle.end_trial(trials[0])
    for trial, loss in zip(trials[1:], (0.4, 0.3, 0.5)):
        finish(oracle, trial, loss)
    assert schedule(oracle.create_trial("tuner0"))[3] == trials[2].trial_id


def test_a_space_smaller_than_the_budget_runs_no_configuration_twice_at_a_rung(tmp_path):
    oracle = halving_oracle(tmp_path, epochs=3, configurations=20)
    seen = []
    trial = oracle.create_trial("tuner0")
    while trial.status != STOPPED:
        seen.append((schedule(trial)[0], tuple(sorted(configuration(trial).items()))))
        finish(oracle, trial, 0.1 + 0.01 * len(seen))
        trial = oracle.create_trial("tuner0")
    assert len(seen) == len(set(seen))
    # Random draws give up after KerasTuner's 20 collisions in a row, so the last configuration may stay untried;
    # results that only get worse promote no configuration by mistake: the plan, exactly.
    started = sum(rung == 0 for rung, _ in seen)
    assert started in (8, 9) and len(seen) == started + started // 3
    assert planned_trials(oracle, space_size=9) == 12


def run_to_the_end(oracle, loss_of):
    """Drive `oracle` as one worker would, each trial scoring loss_of(its configuration); the trials in order."""
    trials = []
    trial = oracle.create_trial("tuner0")
    while trial.status != STOPPED:
        trials.append(trial)
        finish(oracle, trial, loss_of(configuration(trial)))
        trial = oracle.create_trial("tuner0")
    return trials


def learning_rate_oracle(directory, proposals, configurations=15):
    """An ASHA oracle (rungs 1, 3) over a log-scale learning rate and a Choice, as the modern space has."""
    oracle = proposals(objective=keras_tuner.Objective("val_loss", "min"), epochs=3, configurations=configurations, seed=3)
    oracle._set_project_dir(str(directory), "trials")
    space = keras_tuner.HyperParameters()
    space.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    space.Choice("nodes", [8, 16, 32])
    oracle.update_space(space)
    return oracle


def near_best_learning_rate(values):
    """A smooth synthetic loss: best at learning_rate 0.002 with 32 nodes."""
    return abs(math.log10(values["learning_rate"] / 0.002)) + (32 - values["nodes"]) / 100


def test_bayesian_proposals_start_random_then_follow_the_first_rung_results(tmp_path):
    random_trials = run_to_the_end(learning_rate_oracle(tmp_path / "random", SuccessiveHalvingOracle), near_best_learning_rate)
    oracle = learning_rate_oracle(tmp_path / "bayesian", BayesianSuccessiveHalvingOracle)
    bayesian_trials = run_to_the_end(oracle, near_best_learning_rate)
    # Both keep the schedule: 15 configurations, at least the best 5 continued to the second rung (an early
    # promotion can turn out not to be in the final top third), none twice at a rung.
    for trials in (random_trials, bayesian_trials):
        assert [schedule(trial)[0] for trial in trials].count(0) == 15
        assert [schedule(trial)[0] for trial in trials].count(1) >= 5
        assert len({(schedule(t)[0], tuple(sorted(configuration(t).items()))) for t in trials}) == len(trials)
    # A random start of 5 (a third of 15): the same draws as the random oracle's with the same seed.
    def first_rung(trials):
        return [configuration(t) for t in trials if schedule(t)[0] == 0]

    assert first_rung(bayesian_trials)[:5] == first_rung(random_trials)[:5]
    assert first_rung(bayesian_trials)[5:] != first_rung(random_trials)[5:]

    def proposals_after_the_random_start(trials):
        return [near_best_learning_rate(configuration(t)) for t in trials if schedule(t)[0] == 0][5:]

    # The Gaussian process, fitted on the first rung, proposes configurations nearer the optimum than random draws.
    assert statistics.mean(proposals_after_the_random_start(bayesian_trials)) < 0.6 * statistics.mean(
        proposals_after_the_random_start(random_trials))


def test_bayesian_proposals_fit_the_first_rung_only_and_never_repeat_a_configuration(tmp_path):
    oracle = learning_rate_oracle(tmp_path, BayesianSuccessiveHalvingOracle, configurations=12)
    trials = run_to_the_end(oracle, lambda values: 0.5)  # a flat objective: the GP's optimum is the same point each time
    first_rung = [tuple(sorted(configuration(t).items())) for t in trials if schedule(t)[0] == 0]
    assert len(first_rung) == len(set(first_rung)) == 12


NEIGHBOUR_BASELINE = {"conv_layers": 2, "nodes": 8, "learning_rate": 0.003}


def neighbour_oracle(directory, image_side=None, configurations=12):
    """An ASHA oracle (rungs 2, 3, 9) proposing neighbours, over conv_layers 1 2 3 x nodes 4 8 16 x a log-scale
    learning rate, with a baseline; reloaded if saved."""
    oracle = NeighbourSuccessiveHalvingOracle(objective=keras_tuner.Objective("val_loss", "min"), epochs=9,
                                              configurations=configurations, seed=5, baseline=NEIGHBOUR_BASELINE,
                                              image_side=image_side)
    oracle._set_project_dir(str(directory), "trials")
    space = keras_tuner.HyperParameters()
    space.Choice("conv_layers", [1, 2, 3])
    space.Choice("nodes", [4, 8, 16])
    space.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    oracle.update_space(space)
    if (directory / "trials" / "oracle.json").exists():
        oracle.reload()
    return oracle


def one_or_two_steps_from(values, parent):
    """Whether `values` is a neighbour of `parent` over the test space: one or two dimensions moved, each by one step."""
    moved = [name for name in parent if values[name] != parent[name]]
    steps = {"conv_layers": [1, 2, 3], "nodes": [4, 8, 16]}
    for name in moved:
        if name in steps and abs(steps[name].index(values[name]) - steps[name].index(parent[name])) != 1:
            return False
        if name == "learning_rate" and not parent[name] / 3.0001 <= values[name] <= parent[name] * 3.0001:
            return False
    return 1 <= len(moved) <= 2


def test_neighbour_proposals_start_next_to_the_baseline_before_any_result(tmp_path):
    oracle = neighbour_oracle(tmp_path)
    trials = [oracle.create_trial(f"worker{index}") for index in range(6)]
    assert configuration(trials[0]) == NEIGHBOUR_BASELINE
    proposed = [configuration(trial) for trial in trials[1:]]
    assert all(one_or_two_steps_from(values, NEIGHBOUR_BASELINE) for values in proposed)
    assert len({tuple(sorted(values.items())) for values in [NEIGHBOUR_BASELINE, *proposed]}) == 6


def test_neighbour_proposals_follow_the_best_at_the_highest_rung_any_trial_finished(tmp_path):
    oracle = neighbour_oracle(tmp_path)
    baseline, challenger, other = (oracle.create_trial(f"worker{index}") for index in range(3))
    for trial, loss in ((baseline, 0.5), (challenger, 0.2), (other, 0.6)):
        finish(oracle, trial, loss)
    # Rung 0 is the highest finished: the challenger, best there, is the parent.
    assert oracle.parent() == configuration(challenger)
    assert one_or_two_steps_from(oracle.propose("next")["values"], configuration(challenger))
    promoted = oracle.create_trial("worker0")  # the baseline, continued whatever its rank
    assert schedule(promoted)[0] == 1 and configuration(promoted) == NEIGHBOUR_BASELINE
    finish(oracle, promoted, 0.4)
    # The baseline alone has reached rung 1: it is the parent again, until a challenger beats it there.
    assert oracle.parent() == NEIGHBOUR_BASELINE
    assert one_or_two_steps_from(oracle.propose("next")["values"], NEIGHBOUR_BASELINE)


def test_neighbour_proposals_never_have_more_conv_blocks_than_the_images_allow(tmp_path):
    # 10 px fit 2 blocks of one unpadded convolution and a pool (smallest_side_for(2) == 10), not 3.
    oracle = neighbour_oracle(tmp_path, image_side=10, configurations=30)
    trials = run_to_the_end(oracle, lambda values: 0.1 * values["conv_layers"] + values["learning_rate"])
    assert trials and all(configuration(trial)["conv_layers"] <= 2 for trial in trials)
    started = [tuple(sorted(configuration(trial).items())) for trial in trials if schedule(trial)[0] == 0]
    assert len(started) == len(set(started)) == 30


def test_a_reloaded_neighbour_oracle_proposes_what_the_one_before_the_kill_would_have(tmp_path):
    oracle = neighbour_oracle(tmp_path)
    for index, loss in enumerate((0.4, 0.3, 0.5)):
        finish(oracle, oracle.create_trial(f"worker{index}"), loss)
    before = oracle.populate_space("next")
    assert before == neighbour_oracle(tmp_path).populate_space("next")


def test_a_run_whose_rungs_are_not_the_current_ones_is_refused_before_anything_is_rewritten(tmp_path):
    oracle = halving_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, 0.3)
    # A run started before settings.json's format 2, with a first rung of 1 epoch.
    state = tmp_path / "trials" / f"trial_{trial.trial_id}" / "trial.json"
    saved = json.loads(state.read_text())
    saved["hyperparameters"]["values"]["tuner/epochs"] = 1
    state.write_text(json.dumps(saved))
    before = {path: path.read_bytes() for path in (tmp_path / "trials").rglob("*.json")}
    with pytest.raises(TunerUsageError, match="trained trial .* to 1 epochs at rung 0, but the rungs of every search since settings.json's format 2 are 2, 3, 9"):
        repair_after_reload(halving_oracle(tmp_path))
    assert {path: path.read_bytes() for path in (tmp_path / "trials").rglob("*.json")} == before


def test_every_place_the_oracle_gives_passes_the_schedule_check(tmp_path):
    # The run checks (trials/schedule.py) read back what the oracle wrote: none of its own promotions is damage.
    oracle = halving_oracle(tmp_path, baseline={"conv_layers": 3, "nodes": 4})
    trials = run_to_the_end(oracle, lambda values: 0.1 * values["conv_layers"] + 0.01 * values["nodes"])
    records, damaged = scan_trials(Run(tmp_path))
    assert damaged == [] and len(records) == len(trials)
    assert sum(1 for record in records if record.schedule.get("tuner/trial_id")) >= 3


def write_weights(path, values=(1.0, 2.0)):
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as weights:
        weights.create_dataset("layers/dense/vars/0", data=list(values))


def halving_record(trial_id, status, epochs, continues=None, score=0.5):
    schedule = {"tuner/epochs": epochs, "tuner/round": 0 if continues is None else 1}
    if continues is not None:
        schedule["tuner/trial_id"] = continues
    return TrialRecord(trial_id=trial_id, status=status, hyperparameters={}, message=None, history=[], seconds=None,
                       score=score, schedule=schedule)


def test_the_weights_a_resume_needs_are_checked_and_only_those(tmp_path):
    run = Run(tmp_path)
    # Rungs of 2 and 6 epochs: 0 is continued by 1 (still running), 2 may be promoted, 3 failed, 4 is continued by a
    # finished trial 5, 6 is at the top rung.
    trials = [halving_record("0", COMPLETED, 2), halving_record("1", RUNNING, 6, "0"), halving_record("2", COMPLETED, 2),
              halving_record("3", "FAILED", 2, score=None), halving_record("4", COMPLETED, 2),
              halving_record("5", COMPLETED, 6, "4"), halving_record("6", COMPLETED, 6)]
    assert [(item.path, item.problem) for item in source_weights_problems(run, trials, top_epochs=6)] == [
        (run.trial_dir("0") / LAST_EPOCH_WEIGHTS, "missing; trial 1 continues from it"),
        (run.trial_dir("2") / LAST_EPOCH_WEIGHTS, "missing; a promotion may continue from it")]
    write_weights(run.trial_dir("0") / LAST_EPOCH_WEIGHTS)
    write_weights(run.trial_dir("2") / LAST_EPOCH_WEIGHTS)
    assert source_weights_problems(run, trials, top_epochs=6) == []


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.unlink(), "missing"),
    (lambda path: path.write_bytes(path.read_bytes()[:1000]), "not a readable weights file: .*truncated file"),
    (lambda path: path.write_bytes(b"not HDF5 at all"), "not a readable weights file"),
    (lambda path: (path.unlink(), os.mkfifo(path)), "a FIFO"),
])
def test_damaged_weights_are_named_without_blocking_or_a_library_traceback(tmp_path, damage, problem):
    path = tmp_path / LAST_EPOCH_WEIGHTS
    write_weights(path)
    assert weights_problem(path) is None
    damage(path)
    assert re.search(problem, weights_problem(path))


def test_a_promoted_trial_whose_source_weights_are_damaged_stops_the_search_naming_them(tmp_path):
    import keras

    class Tuner:  # what ContinuingTuner.model_built reads of its tuner
        def last_epoch_weights(self, trial_id):
            return str(tmp_path / f"trial_{trial_id}" / LAST_EPOCH_WEIGHTS)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    hp = keras_tuner.HyperParameters()
    hp.values["tuner/trial_id"] = "0"
    with pytest.raises(SourceWeightsError, match=re.escape(f"'{tmp_path / 'trial_0' / LAST_EPOCH_WEIGHTS}' is damaged "
                                                           "(missing; a promoted trial continues trial 0 from it)")):
        ContinuingTuner.model_built(Tuner(), model, hp)
    # Weights of another model: read whole, but not loadable into this one.
    write_weights(tmp_path / "trial_0" / LAST_EPOCH_WEIGHTS)
    with pytest.raises(SourceWeightsError, match="not this configuration's weights"):
        ContinuingTuner.model_built(Tuner(), model, hp)
    # KerasTuner lets a FatalError end the search instead of recording a failed trial; scripts map it to exit 2.
    assert issubclass(SourceWeightsError, (keras_tuner.errors.FatalError)) and issubclass(SourceWeightsError, TunerUsageError)
