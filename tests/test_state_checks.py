"""tuner.rundir.checks and its readers: a value a run could not have written is refused naming its file.

Each test writes one damaged value into a copy of the tiny run (tests.helpers.tiny_run: epochs 2,
conv_layers 1 2 3, nodes 4, dense_layers 0; trials 0 and 1 completed, trial 2 failed), then
checks that the resume refuses it naming the file (oracles.refuse_damaged_state, what search.py
runs on a resume) and, where the report reads it, what the report makes of it.
"""

import json
import os
import re
import shutil
import subprocess

import keras_tuner
import pytest

import report as report_script
from tests.helpers import edit_json, one_error_line
from tuner.config import SearchSettings
from tuner.confirm.runs import confirm_seed, read_confirm_run
from tuner.errors import TunerUsageError
from tuner.model.hypermodel import CNNHyperModel
from tuner.search.kerastuner import oracle_state_path
from tuner.search.oracles import refuse_damaged_state
from tuner.report import rank_trials
from tuner.rundir import Run
from tuner.rundir.checks import RunLimits, curve_problem, run_space, space_difference, values_problem
from tuner.trials.records import scan_trials

LIMITS = RunLimits(epochs=2, space={"conv_layers": (1, 2, 3), "nodes": (4,), "dense_layers": (0,)})


def refused(run, path, problem):
    """Assert that a resume of `run` is refused naming `path` as damaged with `problem` in the reason."""
    with pytest.raises(TunerUsageError, match=re.escape(f"'{path}' is damaged (") + f".*{problem}.*--overwrite"):
        refuse_damaged_state(run)


def damaged_paths(run):
    return {item.path: item.problem for item in scan_trials(run)[1]}


def test_an_epoch_past_the_runs_epochs_drops_the_curve_and_refuses_the_resume(run_copy):
    run = Run(run_copy)
    edit_json(run.history("0"), lambda data: data["epochs"][-1].update(epoch=300_000_000))
    assert "epoch 300000000 is outside 1..2 (the run's --epochs)" in damaged_paths(run)[run.history("0")]
    refused(run, run.history("0"), "outside 1..2")
    # The report ranks the trial by KerasTuner's own record of its best epoch, so a retrain asks for 1 or 2 epochs.
    row = next(row for row in rank_trials(run)[0] if row.trial == "0")
    assert row.best_epoch in (1, 2) and row.epochs is None


@pytest.mark.parametrize("damage, path_of, problem", [
    (lambda run: edit_json(run.history("1"), lambda data: data.update(epochs=data["epochs"][::-1])),
     lambda run: run.history("1"), "epoch 1 follows epoch 2"),
    (lambda run: run.trial_state("1").unlink(), lambda run: run.trial_state("1"), "missing, but the trial has a curve"),
])
def test_the_report_notes_a_damaged_curve_or_a_lost_trial_file_naming_it(run_copy, capsys, damage, path_of, problem):
    run = Run(run_copy)
    damage(run)
    capsys.readouterr()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain", "--no-export",
                               "--no-html"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert any(f"'{path_of(run)}' is damaged ({problem}" in line for line in notes), notes


def test_the_epochs_of_a_curve_must_increase(run_copy):
    run = Run(run_copy)
    edit_json(run.history("1"), lambda data: data["epochs"][1].update(epoch=1))
    refused(run, run.history("1"), "epoch 1 follows epoch 1")


@pytest.mark.parametrize("name, value, problem", [
    ("val_loss", 1.7e308, r"val_loss 1\.7e\+308 is outside 0\.\.1e\+06"),
    ("val_loss", -0.5, "val_loss -0.5 is outside"),
    ("val_accuracy", 3.0, "val_accuracy 3.0 is outside 0..1"),
    ("loss", "0.5", "loss '0.5' is not a number"),
    ("seconds", -4.0, "seconds -4.0 is not a duration from 0 to 1e\\+08 seconds"),
    # JSON's integers have no size limit: one beyond a float's range is refused, never converted (OverflowError).
    ("seconds", 10**400, r"seconds 100000000000\.\.\.\(401 digits\) is not a duration"),
    ("val_loss", 10**400, r"val_loss 100000000000\.\.\.\(401 digits\) is outside 0\.\.1e\+06"),
    ("val_accuracy", -10**400, r"val_accuracy -10000000000\.\.\.\(402 digits\) is outside 0\.\.1"),
    ("epoch", 10**400, r"epoch 100000000000\.\.\.\(401 digits\) is outside 1\.\.2"),
    ("learning_rate_now", 10**400, r"learning_rate_now 100000000000\.\.\.\(401 digits\) is beyond a float's range"),
])
def test_an_out_of_range_metric_in_a_curve_is_damage(run_copy, name, value, problem):
    run = Run(run_copy)
    edit_json(run.history("0"), lambda data: data["epochs"][0].update({name: value}))
    refused(run, run.history("0"), problem)


def test_a_diverged_epoch_is_read_as_missing_not_as_damage():
    assert curve_problem([{"epoch": 1, "val_loss": float("nan")}, {"epoch": 2, "val_loss": None}], LIMITS) is None
    assert curve_problem([{"epoch": 1, "val_loss": float("inf")}], LIMITS) is None


def test_a_trials_seconds_and_pruning_epoch_are_checked(run_copy):
    run = Run(run_copy)
    edit_json(run.history("0"), lambda data: data.update(seconds=-1.0))
    edit_json(run.history("1"), lambda data: data.update(pruned={"epoch": 7, "best_val_loss": 0.7, "median": 0.6,
                                                                 "trials": 5}))
    damaged = damaged_paths(run)
    assert "seconds -1.0" in damaged[run.history("0")] and "pruned epoch 7 is outside 1..2" in damaged[run.history("1")]
    records = {record.trial_id: record for record in scan_trials(run)[0]}
    assert records["0"].seconds is None and records["0"].history  # only the damaged part is dropped
    assert records["1"].pruned is None and records["1"].status == "COMPLETED"


def test_a_curve_of_another_trial_is_damage(run_copy):
    run = Run(run_copy)
    shutil.copy(run.history("1"), run.history("0"))
    refused(run, run.history("0"), "it is the curve of trial '1', not '0'")


@pytest.mark.parametrize("change, problem", [
    (lambda values: values.update(nodes=64), "nodes 64 is not one of the run's values \\(4\\)"),
    (lambda values: values.update(conv_layers=True), "conv_layers True is not one of the run's values"),
    (lambda values: values.update(filters=3), "hyperparameter 'filters' is not in the run's space"),
    (lambda values: values.pop("dense_layers"), "it has no value for dense_layers"),
    (lambda values: values.update({"tuner/epochs": 400_000_000}), "tuner/epochs 400000000 is outside 1..2"),
])
def test_a_hyperparameter_value_outside_the_runs_space_is_damage(run_copy, change, problem):
    run = Run(run_copy)
    edit_json(run.trial_state("0"), lambda state: change(state["hyperparameters"]["values"]))
    assert re.search(problem, damaged_paths(run)[run.trial_state("0")])
    assert "0" not in [row.trial for row in rank_trials(run)[0]]  # never ranked, nor retrained
    refused(run, run.trial_state("0"), problem)


def test_a_learning_rate_may_be_written_as_a_whole_number():
    limits = RunLimits(epochs=2, space={**LIMITS.space, "learning_rate": (0.001, 1.0)})
    assert values_problem({"conv_layers": 1, "nodes": 4, "dense_layers": 0, "learning_rate": 1}, limits) is None


def test_a_trial_id_must_be_its_folders(run_copy):
    run = Run(run_copy)
    edit_json(run.trial_state("1"), lambda state: state.update(trial_id="0"))
    refused(run, run.trial_state("1"), "its trial_id '0' is not its folder's \\(trial_1\\)")


@pytest.mark.parametrize("change, problem", [
    ({"status": "DONE"}, "status 'DONE' is none of KerasTuner's"),
    ({"score": 1e300}, "score 1e\\+300 is outside"),
    ({"score": "low"}, "score 'low' is not a number"),
    ({"best_step": 10**9}, "best_step 1000000000 is outside 0..1"),
])
def test_keras_tuners_record_of_a_trial_is_checked(run_copy, change, problem):
    run = Run(run_copy)
    edit_json(run.trial_state("0"), lambda state: state.update(change))
    refused(run, run.trial_state("0"), problem)


def test_an_oracle_whose_space_is_not_settings_json_s_refuses_the_resume(run_copy):
    run = Run(run_copy)

    def widen(state):
        nodes = next(item for item in state["hyperparameters"]["space"] if item["config"]["name"] == "nodes")
        nodes["config"]["values"] = [4, 8]

    edit_json(oracle_state_path(run.project), widen)
    refused(run, oracle_state_path(run.project), "its hyperparameter space .*nodes 4 8.* is not settings.json's .*nodes 4;")


def test_an_oracle_whose_space_was_emptied_refuses_the_resume(run_copy):
    # KerasTuner saves oracle.json first after the tuner declared the whole space: an empty one is damage.
    run = Run(run_copy)
    edit_json(oracle_state_path(run.project), lambda state: state["hyperparameters"].update(space=[]))
    refused(run, oracle_state_path(run.project), r"its hyperparameter space \(empty\) is not settings.json's conv_layers")
    edit_json(oracle_state_path(run.project), lambda state: state["hyperparameters"].pop("space"))
    refused(run, oracle_state_path(run.project), "missing or mistyped: hyperparameters.space")


def test_space_difference_takes_no_saved_space_as_the_run_s():
    assert space_difference({"space": [], "values": {}}, LIMITS) == (
        "its hyperparameter space (empty) is not settings.json's conv_layers 1 2 3; nodes 4; dense_layers 0")
    assert "not a list of Choice" in space_difference({"values": {}}, LIMITS)
    assert space_difference({"space": []}, RunLimits()) is None  # no settings.json: no space to compare with


@pytest.mark.parametrize("change, problem", [
    ({"score": 10**400}, r"score 100000000000\.\.\.\(401 digits\) is outside 0\.\.1e\+06"),
    ({"best_step": 10**400}, r"best_step 100000000000\.\.\.\(401 digits\) is outside 0\.\.1"),
])
def test_integers_beyond_a_floats_range_in_a_trial_file_are_refused_not_converted(run_copy, change, problem):
    run = Run(run_copy)
    edit_json(run.trial_state("0"), lambda state: state.update(change))
    refused(run, run.trial_state("0"), problem)
    edit_json(run.trial_state("0"), lambda state: state.update(score=0.5, best_step=0))
    edit_json(run.trial_state("0"), lambda state: state["hyperparameters"]["values"].update(nodes=10**400))
    refused(run, run.trial_state("0"), r"nodes 100000000000\.\.\.\(401 digits\) is not one of the run's values")


def test_a_footprint_beyond_a_floats_range_is_named_and_the_report_goes_on(run_copy):
    run = Run(run_copy)
    edit_json(run.history("0"), lambda data: data["footprint"].update(params=10**400))
    refused(run, run.history("0"), r"its footprint's params 100000000000\.\.\.\(401 digits\)")
    assert next(record for record in scan_trials(run)[0] if record.trial_id == "0").footprint is None
    assert [row.trial for row in rank_trials(run)[0]] != []


def test_a_footprint_out_of_range_is_named(run_copy):
    run = Run(run_copy)
    edit_json(run.history("0"), lambda data: data["footprint"].update(threads=0))
    refused(run, run.history("0"), "its footprint's threads 0 is not a whole number from 1")
    assert next(record for record in scan_trials(run)[0] if record.trial_id == "0").footprint is None


def test_a_confirm_record_with_an_epoch_past_the_runs_epochs_is_refused(run_copy):
    run = Run(run_copy)
    row = rank_trials(run)[0][0]
    values = row.configuration()
    path = run.confirm_record(row.trial, 1)
    path.parent.mkdir(parents=True)
    record = {"trial": row.trial, "index": 1, "seed": confirm_seed(run.read_record().search.seed, row.trial, 1),
              "hyperparameters": values, "seconds": 1.0,
              "epochs": [{"epoch": 1, "val_loss": 0.7}, {"epoch": 2, "val_loss": 0.6}]}
    path.write_text(json.dumps(record))
    assert read_confirm_run(run, row, 1) == {"epoch": 2, "val_loss": 0.6}
    for damage, problem in [({"epochs": [{"epoch": 1, "val_loss": 0.7}, {"epoch": 300_000_000, "val_loss": 0.6}]},
                             "epoch 300000000 is outside 1..2"),
                            ({"index": 2}, "it names trial .* seed 2, not trial .* seed 1"),
                            ({"seconds": -3}, "seconds -3 is not"),
                            ({"seconds": 10**400}, r"seconds 100000000000\.\.\.\(401 digits\) is not a duration"),
                            # A record with no epochs, or short of a whole run, would rank its configuration by a run
                            # that never was (the tiny run's --patience is 0: only the full 2 epochs are a run).
                            ({"epochs": []}, "it has no epochs"),
                            ({"epochs": [{"epoch": 1, "val_loss": 0.7}]}, "it ends at epoch 1 of the run's 2, but "
                                                                           "--patience 0 never stops early"),
                            ({"epochs": [{"epoch": 2, "val_loss": 0.6}]}, "its epochs 2 are not 1, 2, ... with none missing"),
                            ({"seed": 1}, "its seed 1 is not .*confirm seed 1")]:
        path.write_text(json.dumps({**record, **damage}))
        with pytest.raises(TunerUsageError, match=re.escape(f"'{path}' is damaged: ") + problem):
            read_confirm_run(run, row, 1)


def test_the_report_refuses_a_damaged_confirm_record_before_training(run_copy, capsys):
    run = Run(run_copy)
    row = rank_trials(run)[0][0]
    path = run.confirm_record(row.trial, 1)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"trial": row.trial, "index": 1, "seed": 1, "seconds": 1.0,
                                "hyperparameters": row.configuration(),
                                "epochs": [{"epoch": 99, "val_loss": 0.6}]}))
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain"]) == 2
    one_error_line(capsys, f"'{path}' is damaged: epoch 99 is outside 1..2")


def test_run_space_is_the_space_the_hypermodel_declares():
    settings = SearchSettings(space="tutorial", conv_layers=(1, 2), nodes=(8,), dense_layers=(0, 1), learning_rates=(0.01, 0.001),
                              dropouts=(0.25,), augment=("off", "on"))
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((16, 16, 1), 2, settings.conv_layers, settings.nodes, settings.dense_layers, settings.learning_rates,
                  settings.dropouts, settings.augment).declare_hyperparameters(hp)
    assert {item.name: tuple(item.values) for item in hp.space} == run_space(settings)
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((16, 16, 1), 2, (1,), (4,), (0,)).declare_hyperparameters(hp)
    assert [item.name for item in hp.space] == list(run_space(SearchSettings(space="tutorial", conv_layers=(1,),
                                                                             nodes=(4,), dense_layers=(0,))))


def _make_unwritable(path):
    """Make `path` unwritable for this process, root included; returns how to undo it, or skips the test.

    A non-root user loses write permission (chmod). Root ignores permissions, so the folder is made
    immutable (chattr +i, which os.access and every write honour for root too), where the
    filesystem and the container allow it.
    """
    if os.geteuid() != 0:
        path.chmod(0o555)
        return lambda: path.chmod(0o755)
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root, and this filesystem cannot make a folder immutable (chattr +i)")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_report_on_a_read_only_run_is_one_error_line_before_any_training(run_copy, capsys):
    before = sorted(path.relative_to(run_copy) for path in run_copy.rglob("*"))
    undo = _make_unwritable(run_copy)
    try:
        assert not os.access(run_copy, os.W_OK)
        assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1"]) == 2
    finally:
        undo()
    one_error_line(capsys, f"'{run_copy}' is not writable, so report.py cannot write its results")
    # Nothing was trained or written: no confirm run, no retrained winner, no results.
    assert sorted(path.relative_to(run_copy) for path in run_copy.rglob("*")) == before


def test_a_report_refuses_a_file_where_it_writes_a_folder(run_copy, capsys):
    (run_copy / "plots").write_text("not a folder")
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 2
    one_error_line(capsys, f"'{run_copy / 'plots'}' is a file where report.py writes a folder")


def test_the_modern_run_space_is_the_space_the_hypermodel_declares_floats_included():
    settings = SearchSettings(space="modern", tuner="random", conv_layers=(1, 2), nodes=(8, 16), dense_layers=(0, 1))
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((16, 16, 1), 2, settings.conv_layers, settings.nodes, settings.dense_layers,
                  space="modern").declare_hyperparameters(hp)
    limits = RunLimits(epochs=2, space=run_space(settings))
    assert [item.name for item in hp.space] == list(limits.space)
    # The saved KerasTuner space (oracle.json) reads back as exactly the run's: Choice, Boolean and Float alike.
    assert space_difference(hp.get_config(), limits) is None
    assert values_problem(dict(hp.values), limits) is None


MODERN_LIMITS = RunLimits(epochs=2, space=run_space(SearchSettings(space="modern", tuner="random")))
MODERN_VALUES = {"conv_layers": 1, "nodes": 32, "dense_layers": 0, "filters": "double", "convs_per_block": 2, "batch_norm": True,
                 "head": "gap", "dropout": 0.2, "learning_rate": 0.000123, "augment": "on"}


@pytest.mark.parametrize("change, problem", [
    ({"learning_rate": 0.02}, r"learning_rate 0.02 is outside the run's range 0.0001..0.01 \(log scale\)"),
    ({"learning_rate": 9e-5}, "learning_rate 9e-05 is outside the run's range"),
    ({"learning_rate": True}, "learning_rate True is outside the run's range"),
    ({"learning_rate": "0.001"}, "learning_rate '0.001' is outside the run's range"),
    ({"batch_norm": 1}, r"batch_norm 1 is not one of the run's values \(False, True\)"),
    ({"head": "attention"}, "head 'attention' is not one of the run's values"),
    ({"dropout": 0.25}, "dropout 0.25 is not one of the run's values"),
])
def test_a_modern_value_outside_the_space_is_a_problem_a_float_by_its_range(change, problem):
    assert values_problem(MODERN_VALUES, MODERN_LIMITS) is None
    assert values_problem({**MODERN_VALUES, "learning_rate": 1e-4}, MODERN_LIMITS) is None  # the ends are in
    assert values_problem({**MODERN_VALUES, "learning_rate": 1e-2}, MODERN_LIMITS) is None
    assert re.search(problem, values_problem({**MODERN_VALUES, **change}, MODERN_LIMITS))


def test_a_saved_space_with_another_float_range_or_another_kind_differs():
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((16, 16, 1), 2, space="modern").declare_hyperparameters(hp)
    config = hp.get_config()
    for item in config["space"]:
        if item["config"]["name"] == "learning_rate":
            item["config"]["max_value"] = 0.1
    limits = RunLimits(epochs=2, space=run_space(SearchSettings(space="modern", tuner="random")))
    assert "learning_rate 0.0001..0.1 (log scale)" in space_difference(config, limits)
    # A tutorial run's settings against a modern saved space: the space changed.
    assert "is not settings.json's conv_layers 1 2 3; nodes 32 64 128; dense_layers 0 1 2" in space_difference(
        hp.get_config(), RunLimits(epochs=2, space=run_space(SearchSettings(space="tutorial"))))
    broken = {"space": [{"class_name": "Float", "config": {"name": "learning_rate", "min_value": "low"}}]}
    assert "not a list of Choice, Boolean and Float hyperparameters" in space_difference(broken, limits)


# A tiny default search (modern space, asha, confirm runs): rungs of 2 and 3 epochs, 3 configurations, the baseline
# (trial 0) continued by trial 1; trials 2 and 3 stay at the first rung, where a resume with more trials may promote.
ASHA_FLAGS = ["--epochs", "3", "--max-trials", "3", "--workers", "0", "--conv-layers", "1", "2", "--nodes", "4", "8",
              "--dense-layers", "0", "1", "--patience", "0"]


@pytest.fixture(scope="module")
def asha_run(tmp_path_factory):
    import search as search_script
    from tests.tiny_data import write_tiny_prepared

    base = tmp_path_factory.mktemp("asha")
    prepared = write_tiny_prepared(base / "prepared")
    argv = ["--data", str(prepared), "--run-dir", str(base / "run"), *ASHA_FLAGS]
    assert search_script.main(argv) == 0
    return prepared, base / "run"


@pytest.fixture
def asha_copy(asha_run, tmp_path):
    prepared, run_dir = asha_run
    shutil.copytree(run_dir, tmp_path / "run")
    return prepared, Run(tmp_path / "run")


def snapshot(run):
    # The lock file names the last process that held it, which is not a file of the run's results.
    return {path: path.read_bytes() for path in sorted(run.root.rglob("*"))
            if path.is_file() and path.name != ".search.lock"}


def resume_is_refused(capsys, prepared, run, path, problem):
    """search.py resuming `run` (one configuration more) exits 2 with one error line naming `path`, changing nothing."""
    import search as search_script

    before = snapshot(run)
    capsys.readouterr()
    argv = ["--data", str(prepared), "--run-dir", str(run.root), *ASHA_FLAGS, "--max-trials", "4"]
    assert search_script.main(argv) == 2
    one_error_line(capsys, f"'{path}' is damaged" + (f" ({problem}" if problem else ""))
    assert snapshot(run) == before


def promoted(run):
    return next(record for record in scan_trials(run)[0] if record.schedule.get("tuner/trial_id"))


@pytest.mark.parametrize("damage, problem", [
    (lambda values: values.pop("tuner/trial_id"), "it is at round 1 but continues no trial"),
    (lambda values: values.update({"tuner/trial_id": "99"}), "it continues trial '99', which has no trial.json"),
])
def test_a_promotion_the_oracle_could_not_have_made_refuses_the_resume_and_the_report_notes_it(
        asha_copy, capsys, damage, problem):
    prepared, run = asha_copy
    trial = promoted(run)
    edit_json(run.trial_state(trial.trial_id), lambda state: damage(state["hyperparameters"]["values"]))
    resume_is_refused(capsys, prepared, run, run.trial_state(trial.trial_id), problem)
    assert report_script.main(["--run-dir", str(run.root), "--confirm", "0", "--no-retrain", "--no-export",
                               "--no-html"]) == 0
    assert f"'{run.trial_state(trial.trial_id)}' is damaged ({problem}" in capsys.readouterr().out


def test_a_trial_promoted_twice_or_continuing_itself_refuses_the_resume(asha_copy, capsys):
    prepared, run = asha_copy
    trial = promoted(run)
    again = run.trial_dir("4")
    shutil.copytree(run.trial_dir(trial.trial_id), again)
    edit_json(again / "trial.json", lambda state: state.update(trial_id="4"))
    resume_is_refused(capsys, prepared, run, again / "trial.json",
                      f"it continues trial {trial.continues}, which trial {trial.trial_id} continues already")
    shutil.rmtree(again)
    edit_json(run.trial_state(trial.trial_id), lambda state: state["hyperparameters"]["values"].update(
        {"tuner/trial_id": trial.trial_id}))
    resume_is_refused(capsys, prepared, run, run.trial_state(trial.trial_id), "it continues itself")


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.unlink(), "missing; a promotion may continue from it"),
    (lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]), "not a readable weights file"),
])
def test_a_first_rung_result_whose_last_epoch_weights_are_damaged_refuses_the_resume(asha_copy, capsys, damage, problem):
    # Not a failed trial with h5py's message once promoted, nor a silent fall back to its best epoch's checkpoint.
    prepared, run = asha_copy
    waiting = next(record for record in scan_trials(run)[0] if record.schedule.get("tuner/round") == 0
                   and record.trial_id != promoted(run).continues)
    path = run.trial_dir(waiting.trial_id) / "last_epoch.weights.h5"
    damage(path)
    resume_is_refused(capsys, prepared, run, path, problem)


def test_a_confirm_record_with_no_epochs_is_refused_naming_it(asha_copy, capsys):
    # Read as a diverged run, it would rank its configuration last and change the winner without a word.
    prepared, run = asha_copy
    path = run.confirm_records()[0]
    edit_json(path, lambda data: data.update(epochs=[]))
    # A resume refuses it before it writes or trains anything (confirm records are read after the trials otherwise).
    resume_is_refused(capsys, prepared, run, path, "")
    before = snapshot(run)
    assert report_script.main(["--run-dir", str(run.root), "--no-retrain", "--no-export", "--no-html"]) == 2
    one_error_line(capsys, f"'{path}' is damaged: it has no epochs")
    assert snapshot(run) == before
