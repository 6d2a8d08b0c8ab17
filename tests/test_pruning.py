"""tuner.search.pruning: the median rule, its warm-ups, and a real search that stops a hopeless trial."""

import json

import cv2
import pytest

import predict as predict_script
import report as report_script
from tests.helpers import search_args
from tests.tiny_data import write_tiny_prepared
from tuner.data.cache import load_prepared
from tuner.execution.roles import run_search
from tuner.search.pruning import MedianPruner, finished_curves, median_verdict
from tuner.rundir import Run
from tuner.trials.records import COMPLETED, PRUNED, iter_trials

FINISHED = [{1: 0.6, 2: 0.4, 3: 0.3}, {1: 0.7, 2: 0.5, 3: 0.35}, {1: 0.5, 2: 0.45}]  # the last stopped early


def test_a_trial_behind_the_median_at_its_epoch_is_pruned():
    verdict = median_verdict(2, 0.55, FINISHED, warmup_trials=3, warmup_epochs=1)
    assert verdict is not None and (verdict.epoch, verdict.median, verdict.trials) == (2, 0.45, 3)
    assert "pruned at epoch 2: best val_loss 0.5500 is behind the median 0.4500 of 3 finished trials" in verdict.describe()


def test_a_trial_at_or_ahead_of_the_median_goes_on():
    assert median_verdict(2, 0.45, FINISHED, warmup_trials=3, warmup_epochs=1) is None
    assert median_verdict(2, 0.2, FINISHED, warmup_trials=3, warmup_epochs=1) is None


def test_nothing_is_pruned_during_either_warm_up():
    assert median_verdict(1, 9.0, FINISHED, warmup_trials=3, warmup_epochs=1) is None  # its first epoch
    assert median_verdict(2, 9.0, FINISHED, warmup_trials=4, warmup_epochs=1) is None  # only 3 trials finished


def test_only_trials_that_reached_the_epoch_count():
    # At epoch 3 the early-stopped trial has no value: the median is of 0.3 and 0.35.
    assert median_verdict(3, 0.32, FINISHED, warmup_trials=3, warmup_epochs=1) is None
    assert median_verdict(3, 0.34, FINISHED, warmup_trials=3, warmup_epochs=1).median == pytest.approx(0.325)
    assert median_verdict(4, 9.0, FINISHED, warmup_trials=3, warmup_epochs=1) is None  # nobody got that far


def write_curve(run, trial_id, status, losses, pruned=None):
    run.trial_dir(trial_id).mkdir(parents=True)
    run.trial_state(trial_id).write_text(json.dumps({"trial_id": trial_id, "status": status,
                                                     "hyperparameters": {"values": {}}}))
    run.history_dir.mkdir(exist_ok=True)
    epochs = [{"epoch": index + 1, "val_loss": loss} for index, loss in enumerate(losses)]
    run.history(trial_id).write_text(json.dumps({"trial_id": trial_id, "epochs": epochs,
                                                 **({"pruned": pruned} if pruned else {})}))


def test_the_median_is_over_completed_trials_only(tmp_path):
    run = Run(tmp_path)
    write_curve(run, "0", "COMPLETED", [0.6, 0.4])
    write_curve(run, "1", "COMPLETED", [0.9, 0.8], pruned={"epoch": 2})  # pruned: left out, as Optuna does
    write_curve(run, "2", "RUNNING", [0.1])  # still running: left out
    write_curve(run, "3", "COMPLETED", [0.5, float("nan")])  # a diverged epoch is no value
    assert finished_curves(run, exclude="9") == [{1: 0.6, 2: 0.4}, {1: 0.5}]
    assert finished_curves(run, exclude="0") == [{1: 0.5}]
    pruner = MedianPruner(run, warmup_trials=2, warmup_epochs=1)
    assert pruner.verdict("9", [{"epoch": 1, "val_loss": 0.7}, {"epoch": 2, "val_loss": 0.45}]).median == 0.4
    assert pruner.verdict("9", [{"epoch": 1, "val_loss": 0.7}]) is None


def test_a_real_search_prunes_the_hopeless_trial_and_keeps_its_curve(tmp_path):
    # Learning rate 1e-6 learns nothing in a few epochs; 0.01 separates the two brightness classes fast.
    prepared = write_tiny_prepared(tmp_path / "prepared", per_class=(100, 20, 20))
    settings = search_args(data=str(prepared), run_dir=str(tmp_path / "run"), epochs=5, conv_layers=(1,), nodes=(8,),
                           dense_layers=(0,), learning_rates=(0.01, 1e-6), patience=0, prune_warmup_trials=1,
                           prune_warmup_epochs=1, quiet=True, workers="0")
    summary = run_search(*settings)
    assert (summary.completed, summary.pruned) == (2, 1)
    records = {record.hyperparameters["learning_rate"]: record for record in iter_trials(Run(tmp_path / "run"))}
    good, hopeless = records[0.01], records[1e-6]
    assert good.status == COMPLETED and len(good.history) == 5
    assert hopeless.status == PRUNED and hopeless.pruned["epoch"] == 2 and len(hopeless.history) == 2
    assert hopeless.best_val_loss > hopeless.pruned["median"]
    assert (tmp_path / "run" / "trials" / f"trial_{hopeless.trial_id}" / "checkpoint.weights.h5").is_file()
    assert any((tmp_path / "run" / "tensorboard" / hopeless.trial_id / "pruned").iterdir())
    # Resumed, nothing runs again and the decision stands.
    again = run_search(*settings)
    assert (again.completed, again.pruned) == (2, 1)


def test_report_and_predict_work_on_a_pruned_run(tmp_path, capsys):
    prepared = write_tiny_prepared(tmp_path / "prepared", per_class=(100, 20, 20))
    run_search(*search_args(data=str(prepared), run_dir=str(tmp_path / "run"), epochs=4, conv_layers=(1,), nodes=(8,),
                            dense_layers=(0,), learning_rates=(0.01, 1e-6), patience=0, prune_warmup_trials=1,
                            prune_warmup_epochs=1, quiet=True, workers="0"))
    assert report_script.main(["--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "1 completed, 1 stopped early (pruned" in out and "winner: trial" in out
    image = tmp_path / "image.png"
    image.write_bytes(cv2.imencode(".png", load_prepared(prepared).x_test[0])[1].tobytes())
    assert predict_script.main(["--model", str(tmp_path / "run" / "best"), str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}\tclass")


def test_prune_none_runs_every_epoch_of_every_trial(tmp_path):
    prepared = write_tiny_prepared(tmp_path / "prepared", per_class=(100, 20, 20))
    run_search(*search_args(data=str(prepared), run_dir=str(tmp_path / "run"), epochs=3, conv_layers=(1,),
                            nodes=(8,), dense_layers=(0,), learning_rates=(0.01, 1e-6), patience=0, prune="none",
                            prune_warmup_trials=1, prune_warmup_epochs=0, quiet=True, workers="0"))
    records = list(iter_trials(Run(tmp_path / "run")))
    assert [record.status for record in records] == [COMPLETED, COMPLETED]
    assert [len(record.history) for record in records] == [3, 3]
