"""tuner.trials.records: trials read back from a run directory, and the one rule for a usable val_loss."""

import json
import math

import pytest

from tuner.rundir import Run
from tuner.trials.records import (
    best_epoch,
    best_val_loss,
    failure_reason,
    is_finite_number,
    iter_trials,
    scan_trials,
)


def write_trial(run, trial_id, status="COMPLETED", values=None, history=None, **state):
    run.trial_dir(trial_id).mkdir(parents=True, exist_ok=True)
    values = values or {"conv_layers": 1, "tuner/epochs": 3}
    run.trial_state(trial_id).write_text(json.dumps({"trial_id": trial_id, "status": status,
                                                     "hyperparameters": {"values": values}, **state}))
    if history is not None:
        run.history_dir.mkdir(exist_ok=True)
        run.history(trial_id).write_text(json.dumps({"trial_id": trial_id, "epochs": history, "seconds": 4.5}))


@pytest.mark.parametrize("value, finite", [(0.3, True), (0, True), (math.nan, False), (math.inf, False),
                                           (True, False), ("0.3", False), (None, False), (10**400, False),
                                           (-10**400, False), (10**300, True)])
def test_only_real_finite_numbers_count(value, finite):
    assert is_finite_number(value) is finite


def test_the_best_epoch_skips_diverged_and_missing_losses():
    history = [{"epoch": 1, "val_loss": 0.6}, {"epoch": 2, "val_loss": math.nan}, {"epoch": 3, "val_loss": 0.4},
               {"epoch": 4}, {"epoch": 5, "val_loss": math.inf}]
    assert best_epoch(history) == {"epoch": 3, "val_loss": 0.4} and best_val_loss(history) == 0.4
    assert best_epoch([{"epoch": 1, "val_loss": math.nan}]) is None and best_val_loss([]) is None


def test_trials_are_read_in_id_order_with_their_curves(tmp_path):
    run = Run(tmp_path)
    write_trial(run, "1", history=[{"epoch": 1, "val_loss": 0.5}])
    write_trial(run, "0", status="FAILED", message="Traceback ...\nFailedTrialError: too small")
    records = list(iter_trials(run))
    assert [record.trial_id for record in records] == ["0", "1"]
    assert records[1].hyperparameters == {"conv_layers": 1}  # KerasTuner's own tuner/ values are left out
    assert records[1].best_val_loss == 0.5 and records[1].seconds == 4.5
    assert records[0].history == [] and failure_reason(records[0].message) == "too small"


def test_without_its_curve_a_trial_is_still_ranked_by_keras_tuners_score(tmp_path):
    run = Run(tmp_path)
    write_trial(run, "0", score=0.25, best_step=2)
    assert next(iter_trials(run)).best_epoch() == {"val_loss": 0.25, "epoch": 3}


def test_damaged_trial_files_are_returned_never_skipped_silently(tmp_path):
    run = Run(tmp_path)
    write_trial(run, "0", history=[{"epoch": 1, "val_loss": 0.5}])
    run.trial_dir("1").mkdir()
    run.trial_state("1").write_text('{"trial_id": "1", "sta')
    write_trial(run, "2")
    run.trial_state("2").write_text(json.dumps({"trial_id": "2", "status": "COMPLETED", "hyperparameters": []}))
    run.history("0").write_text("[1, 2")
    records, damaged = scan_trials(run)
    assert [record.trial_id for record in records] == ["0"] and records[0].history == []
    # The trial files first (a trial without one is not read at all), then the curves of the trials that are read.
    assert [(item.path, item.problem) for item in damaged] == [
        (run.trial_state("1"), "not valid JSON"), (run.trial_state("2"), "no hyperparameter values"),
        (run.history("0"), "not a per-epoch history")]
    assert [record.trial_id for record in iter_trials(run)] == ["0"]


def test_failure_reason_is_the_last_line_without_the_module_path():
    assert failure_reason("Traceback\n  File x\nkeras_tuner.src.errors.FailedTrialError: 3 conv blocks need 22 px") \
        == "3 conv blocks need 22 px"
    assert failure_reason("ValueError: bad: really") == "bad: really"
    assert failure_reason("it broke: somehow") == "it broke: somehow"
    assert failure_reason(None) == "unknown reason"


def test_without_settings_json_the_values_a_trial_could_never_hold_are_still_damage(tmp_path):
    run = Run(tmp_path)  # no settings.json: no epochs or space to check against, but ids and epoch 0 are wrong anywhere
    write_trial(run, "0", history=[{"epoch": 0, "val_loss": 0.5}])
    write_trial(run, "1", values={"conv_layers": 9})  # no space known: any value is taken
    write_trial(run, "2")
    edit = json.loads(run.trial_state("2").read_text())
    run.trial_state("2").write_text(json.dumps({**edit, "trial_id": "7"}))
    records, damaged = scan_trials(run)
    assert [record.trial_id for record in records] == ["0", "1"] and records[0].history == []
    assert [(item.path, item.problem) for item in damaged] == [
        (run.trial_state("2"), "its trial_id '7' is not its folder's (trial_2)"),
        (run.history("0"), "epoch 0 is below 1")]


# A successive-halving run of rungs of 2 and 6 epochs: trial 0 at the first rung, trial 1 continuing it.
FIRST = {"conv_layers": 1, "tuner/epochs": 2, "tuner/initial_epoch": 0, "tuner/bracket": 0, "tuner/round": 0}
PROMOTED = {**FIRST, "tuner/epochs": 6, "tuner/initial_epoch": 2, "tuner/round": 1, "tuner/trial_id": "0"}


def halving_run(tmp_path, *trials):
    """A run with trial 0 (first rung, completed) and then `trials` as (id, values, status)."""
    run = Run(tmp_path)
    write_trial(run, "0", values=FIRST, score=0.5)
    for trial_id, values, status in trials:
        write_trial(run, trial_id, status=status, values=values)
    return run


def test_a_sound_promotion_is_read_with_its_place(tmp_path):
    records, damaged = scan_trials(halving_run(tmp_path, ("1", PROMOTED, "RUNNING")))
    assert damaged == [] and records[1].schedule == {name: value for name, value in PROMOTED.items() if name.startswith("tuner/")}
    assert records[1].hyperparameters == {"conv_layers": 1}


@pytest.mark.parametrize("trials, problem", [
    ([("1", {**PROMOTED, "tuner/trial_id": "1"}, "COMPLETED")], "it continues itself"),
    ([("1", {**PROMOTED, "tuner/trial_id": "7"}, "COMPLETED")], "it continues trial '7', which has no trial.json"),
    ([("1", {k: v for k, v in PROMOTED.items() if k != "tuner/trial_id"}, "COMPLETED")],
     "it is at round 1 but continues no trial (tuner/trial_id None)"),
    ([("1", {**FIRST, "tuner/trial_id": "0"}, "COMPLETED")], "it is at round 0 but continues trial '0'"),
    ([("1", {**PROMOTED, "tuner/round": 2}, "COMPLETED")], "it is at round 2 but continues trial 0 of round 0"),
    ([("1", {**PROMOTED, "tuner/round": True}, "COMPLETED")], "tuner/round True is not a whole number from 0"),
    ([("1", {**PROMOTED, "tuner/bracket": -1}, "COMPLETED")], "tuner/bracket -1 is not a whole number from 0"),
    ([("1", {**PROMOTED, "conv_layers": 2}, "COMPLETED")], "it trains another configuration than trial 0, which it continues"),
    ([("1", {**PROMOTED, "tuner/initial_epoch": 1}, "COMPLETED")], "it goes on from epoch 1, but trial 0, which it "
                                                                    "continues, trained 2"),
    # One trial promoted twice: the later promotion is the damaged file, the first one stands.
    ([("1", PROMOTED, "COMPLETED"), ("2", PROMOTED, "RUNNING")], "it continues trial 0, which trial 1 continues already"),
])
def test_a_place_the_oracle_could_not_have_given_is_damage_of_the_trials_file(tmp_path, trials, problem):
    run = halving_run(tmp_path, *trials)
    records, damaged = scan_trials(run)
    damaged_id = trials[-1][0]
    assert [(item.path, item.problem) for item in damaged] == [(run.trial_state(damaged_id), problem)]
    assert damaged_id not in [record.trial_id for record in records]


def test_a_promotion_of_an_unfinished_or_unreadable_trial_is_damage(tmp_path):
    run = halving_run(tmp_path, ("1", PROMOTED, "RUNNING"))
    write_trial(run, "0", status="RUNNING", values=FIRST)
    assert scan_trials(run)[1][0].problem == "it continues trial 0, which has not completed"
    # An unreadable earlier trial is named itself; the trial continuing it is still read, with its own data.
    run.trial_state("0").write_text("{")
    records, damaged = scan_trials(run)
    assert [item.problem for item in damaged] == ["not valid JSON"] and [record.trial_id for record in records] == ["1"]


def test_a_curve_without_its_trial_file_names_the_missing_file(tmp_path):
    run = Run(tmp_path)
    write_trial(run, "0", history=[{"epoch": 1, "val_loss": 0.5}])
    write_trial(run, "1", history=[{"epoch": 1, "val_loss": 0.4}])
    run.trial_state("1").unlink()
    records, damaged = scan_trials(run)
    assert [record.trial_id for record in records] == ["0"]
    assert [(item.path, item.problem) for item in damaged] == [
        (run.trial_state("1"), "missing, but the trial has a curve (trial_1.json)")]


def test_a_curves_halving_record_must_say_what_its_trial_file_says(tmp_path):
    run = halving_run(tmp_path, ("1", PROMOTED, "COMPLETED"))
    run.history_dir.mkdir()
    run.history("1").write_text(json.dumps({"trial_id": "1", "epochs": [], "halving": {
        "rung": 1, "epochs": [2, 6], "continues": "5"}}))
    records, damaged = scan_trials(run)
    assert [(item.path, item.problem) for item in damaged] == [(run.history("1"), (
        "its successive-halving record (rung 1, continues '5') is not its trial's (tuner/round 1, tuner/trial_id '0')"))]
    assert records[1].halving is None


def test_a_trial_folder_with_files_but_no_trial_file_names_the_missing_file(tmp_path):
    run = Run(tmp_path)
    write_trial(run, "0")
    run.trial_dir("1").mkdir()  # a kill between making the folder and writing trial.json: no damage
    assert scan_trials(run)[1] == []
    (run.trial_dir("1") / "checkpoint.weights.h5").write_bytes(b"")
    assert [(item.path, item.problem) for item in scan_trials(run)[1]] == [
        (run.trial_state("1"), "missing, but the trial's folder holds its other files")]
