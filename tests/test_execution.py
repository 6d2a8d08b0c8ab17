import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import search as search_script
from tests.helpers import finished_configurations, search_args
from tests.tiny_data import write_tiny_prepared
from tuner.config import ExecutionOptions
from tuner.config.spaces import MODERN_BASELINE, MODERN_RECIPE
from tuner.confirm.runs import missing_jobs
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.execution.roles import execution_role, run_search
from tuner.report import rank_trials
from tuner.rundir import Run, RunLock, RunRecord
from tuner.search.kerastuner import oracle_state_path
from tuner.trials.records import iter_trials

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_tiny_prepared(tmp_path_factory.mktemp("prepared"))


def tiny_settings(prepared, run_dir, **overrides):
    # In this process (--workers 0): fast, and what these tests check is the same for every role.
    values = dict(data=str(prepared), run_dir=str(run_dir), epochs=1, conv_layers=(1, 2), nodes=(4,),
                  dense_layers=(0,), quiet=True, workers="0")
    values.update(overrides)
    return search_args(**values)


# Each tuner's flags and how many trials they run: the grid's 2 configurations (of the tutorial's space; the others
# search the default, modern space), the sampled tuners' --max-trials, and hyperband's schedule for --epochs 3 (3 + 1 continued + 2 = 6 trials) cut at --max-trials 4.
TUNER_RUNS = {
    "grid": (["--space", "tutorial"], 2),
    "random": (["--max-trials", "2"], 2),
    "bayesian": (["--max-trials", "2"], 2),
    "hyperband": (["--epochs", "3", "--nodes", "4", "8", "--max-trials", "4"], 4),
}


@pytest.mark.parametrize("workers", [[], ["--workers", "0"]], ids=["workers-auto", "workers-0"])
@pytest.mark.parametrize("tuner_name", sorted(TUNER_RUNS))
def test_every_tuner_searches_as_a_user_runs_it(prepared, tmp_path, capsys, tuner_name, workers):
    # No --workers: the default, auto, starts a chief here and a worker process per core (2 on a 2-core machine).
    flags, trials = TUNER_RUNS[tuner_name]
    run = Run(tmp_path / "run")
    argv = ["--data", str(prepared), "--run-dir", str(run.root), "--tuner", tuner_name, "--epochs", "2",
            "--conv-layers", "1", "2", "--nodes", "4", "--dense-layers", "0", "--patience", "0", "--quiet",
            *flags, *workers]
    assert search_script.main(argv) == 0, capsys.readouterr().err[-3000:]
    assert f"{trials} trial(s) completed, 0 failed" in capsys.readouterr().out
    records = list(iter_trials(run))
    assert len(records) == trials and all(record.status == "COMPLETED" for record in records)
    for record in records:
        assert record.history and all("val_loss" in row and "accuracy" in row for row in record.history)
        assert run.history(record.trial_id).is_file() and (run.root / "tensorboard" / record.trial_id).is_dir()
    if tuner_name == "hyperband" and workers:
        # Trial by trial, Hyperband continues its best first-round trial (workers may start the next bracket first).
        rounds = [json.loads(run.trial_state(record.trial_id).read_text())["hyperparameters"]["values"]["tuner/round"]
                  for record in records]
        assert sorted(rounds) == [0, 0, 0, 1]
    # Who ran the trials: the chief and its workers' tuners, or this process's own.
    tuners = {path.stem for path in run.project.glob("*.json")} - {"oracle"}
    if workers:
        assert tuners == {"tuner0"}, tuners
    else:
        assert {"chief", "worker0"} <= tuners <= {"chief", "worker0", "worker1"}, tuners
    settings = json.loads(run.settings.read_text())
    assert settings["search"]["tuner"] == tuner_name and settings["dataset"]["class_names"] == ["class0", "class1"]
    # Then the same processes confirmed the top configurations (these tuners' default --confirm: the top 3 with 2 more
    # seeds each); report.py finds them saved.
    top, seeds = 3, 2
    ranked = rank_trials(run)[0]
    assert [path.relative_to(run.confirm_dir).as_posix() for path in run.confirm_records()] == [
        f"trial_{row.trial}/seed_{index}.json" for row in sorted(ranked[:top], key=lambda row: row.trial)
        for index in range(1, seeds + 1)]
    assert not missing_jobs(run, RunRecord.from_json(settings), ranked[:top], seeds)


def test_hyperband_runs_its_schedule_when_max_trials_is_above_it_and_progress_counts_it(prepared, tmp_path, capsys,
                                                                                        caplog):
    # --epochs 3: bracket 1 tries 3 configurations and continues the best; bracket 0 wants 2 more of the
    # 4 configurations but finds 1, so 5 trials run, fewer than --max-trials 9, and progress says so.
    caplog.set_level(logging.INFO)
    argv = ["--data", str(prepared), "--run-dir", str(tmp_path / "run"), "--space", "tutorial", "--tuner", "hyperband",
            "--epochs", "3", "--conv-layers", "1", "2", "--nodes", "4", "8", "--dense-layers", "0", "--patience", "0",
            "--max-trials", "9", "--workers", "0"]
    assert search_script.main(argv) == 0
    assert "5 trial(s) completed, 0 failed" in capsys.readouterr().out
    assert len(list(iter_trials(Run(tmp_path / "run")))) == 5
    assert "[1/5] trial" in caplog.text and "[5/5] trial" in caplog.text


def test_grid_runs_every_configuration_once_and_a_rerun_adds_nothing(prepared, tmp_path):
    settings = tiny_settings(prepared, tmp_path / "run", nodes=(4, 8))
    first = run_search(*settings)
    assert first.completed == 4 and not first.resumed
    again = run_search(*settings)
    assert again.resumed and again.completed == 4
    assert set(finished_configurations(tmp_path / "run").values()) == {1}
    assert len(finished_configurations(tmp_path / "run")) == 4


def test_impossible_configuration_fails_and_the_search_goes_on(prepared, tmp_path):
    summary = run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1, 3)))
    assert (summary.completed, summary.failed) == (1, 1)
    failed = [record for record in iter_trials(Run(tmp_path / "run")) if record.status == "FAILED"]
    assert "3 conv+pool blocks need images of at least 22x22 px" in failed[0].message


def test_all_trials_failing_is_an_error_with_the_reasons(prepared, tmp_path):
    with pytest.raises(SearchFailedError, match="all 2 trials failed: 2x 3 conv\\+pool blocks need"):
        run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(3,), nodes=(4, 8)))
    code = search_script.main(["--data", str(prepared), "--run-dir", str(tmp_path / "run2"), "--space", "tutorial", "--epochs", "1",
                               "--conv-layers", "3", "--nodes", "4", "--workers", "0"])
    assert code == 1


def test_changed_search_space_is_refused(prepared, tmp_path):
    run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,)))
    with pytest.raises(TunerUsageError, match="was made with --nodes 4, not 4 8; pass --overwrite"):
        run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,), nodes=(4, 8)))
    with pytest.raises(TunerUsageError, match="was made with --tuner grid, not random"):
        run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,), tuner="random"))
    summary = run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,), nodes=(4, 8), overwrite=True))
    assert summary.completed == 2 and not summary.resumed


def test_changed_dataset_is_refused(prepared, tmp_path):
    run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,)))
    other = write_tiny_prepared(tmp_path / "other", seed=5)
    with pytest.raises(TunerUsageError, match="another prepared dataset"):
        run_search(*tiny_settings(other, tmp_path / "run", conv_layers=(1,)))


def test_a_damaged_settings_json_refuses_the_resume_and_is_not_rewritten(prepared, tmp_path):
    run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,)))
    settings = tmp_path / "run" / "settings.json"
    settings.write_text(settings.read_text()[:40])
    damaged = settings.read_bytes()
    with pytest.raises(TunerUsageError, match="settings.json' is damaged .*--overwrite"):
        run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,), nodes=(4, 8)))
    assert settings.read_bytes() == damaged
    assert run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,), overwrite=True)).completed == 1


def _snapshot(run_dir):
    return {path: path.read_bytes() for path in sorted(Path(run_dir).rglob("*.json"))}


@pytest.mark.parametrize("damage, message", [
    (lambda run: run.trial_state("0").write_text('{"trial_id": "0", "sta'), "trial_0/trial.json' is damaged (not valid JSON)"),
    (lambda run: oracle_state_path(run.project).write_text("[]"), "oracle.json' is damaged (not a JSON object)"),
    (lambda run: oracle_state_path(run.project).write_text(json.dumps({**json.loads(oracle_state_path(run.project).read_text()), "end_order": 3})),
     "oracle.json' is damaged (missing or mistyped: end_order)"),
    (lambda run: run.history("1").write_text("{"), "trial_1.json' is damaged (not a per-epoch history)"),
    (lambda run: run.settings.unlink(), "has trials but no settings.json"),
    (lambda run: run.tuner_state("tuner0").write_text("{"), "tuner0.json' is damaged (not a JSON object)"),
])
def test_damaged_state_refuses_the_resume_and_nothing_is_rewritten(prepared, tmp_path, capsys, damage, message):
    run = Run(tmp_path / "run")
    run_search(*tiny_settings(prepared, run.root))
    damage(run)
    before = _snapshot(run.root)
    argv = ["--data", str(prepared), "--run-dir", str(run.root), "--space", "tutorial", "--epochs", "1",
            "--conv-layers", "1", "2", "--nodes", "4", "--dense-layers", "0", "--workers", "0"]
    assert search_script.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err and "--overwrite" in err, err
    assert _snapshot(run.root) == before


def test_a_finished_run_is_readable_by_others_under_the_users_umask(prepared, tmp_path):
    previous = os.umask(0o022)
    try:
        run_search(*tiny_settings(prepared, tmp_path / "run", conv_layers=(1,)))
    finally:
        os.umask(previous)
    run = Run(tmp_path / "run")
    for path in (run.settings, oracle_state_path(run.project), run.trial_state("0"), run.history("0")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


@pytest.mark.parametrize("flags, role", [({"workers": "0"}, "alone"), ({}, "launcher"), ({"workers": "2"}, "launcher"),
                                         ({"role": "chief", "oracle": "127.0.0.1:8000"}, "chief"),
                                         ({"role": "worker", "oracle": "127.0.0.1:8000"}, "worker")])
def test_one_dispatch_picks_how_trials_run(flags, role):
    assert execution_role(ExecutionOptions(**flags)) == role


def test_a_live_search_locks_its_run_directory(prepared, tmp_path):
    paths = Run(tmp_path / "run")
    with RunLock(paths):
        with pytest.raises(TunerUsageError, match="is in use by process"):
            run_search(*tiny_settings(prepared, tmp_path / "run"))
    # A lock file left by a finished (or killed) process does not block the next search.
    assert paths.lock.exists()
    assert run_search(*tiny_settings(prepared, tmp_path / "run")).completed == 2


def test_the_same_seed_gives_the_same_sequence_of_configurations(prepared, tmp_path):
    def sequence(run_dir):
        run_search(*tiny_settings(prepared, run_dir, tuner="random", max_trials=3, nodes=(4, 8), dense_layers=(0, 1)))
        return [record.hyperparameters for record in iter_trials(Run(run_dir))]

    assert sequence(tmp_path / "a") == sequence(tmp_path / "b")


def test_tensorboard_has_scalars_and_hparams_for_every_trial(prepared, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hparams_metadata

    run_search(*tiny_settings(prepared, tmp_path / "run", epochs=2))
    for record in iter_trials(Run(tmp_path / "run")):
        execution = tmp_path / "run" / "tensorboard" / record.trial_id / "execution0"
        train = EventAccumulator(str(execution / "train")).Reload()
        validation = EventAccumulator(str(execution / "validation")).Reload()
        assert {"epoch_loss", "epoch_accuracy"} <= set(train.Tags()["tensors"] + train.Tags()["scalars"])
        assert {"epoch_loss", "epoch_accuracy"} <= set(validation.Tags()["tensors"] + validation.Tags()["scalars"])
        hparams = EventAccumulator(str(execution)).Reload()
        plugin_tags = hparams.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
        assert hparams_metadata.SESSION_START_INFO_TAG in plugin_tags
        start_info = hparams_metadata.parse_session_start_info_plugin_data(
            plugin_tags[hparams_metadata.SESSION_START_INFO_TAG])
        assert set(start_info.hparams) == {"conv_layers", "nodes", "dense_layers"}


def run_until_killed(argv, run_dir, kill_after_finished, timeout=180):
    """Start a real search process and kill -9 it once `kill_after_finished` trials have finished.

    Returns whether the process was still running when it was killed.
    """
    process = subprocess.Popen([sys.executable, "search.py", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if sum(finished_configurations(run_dir).values()) >= kill_after_finished:
                # Let the next trial get under way so the kill interrupts one mid-flight.
                time.sleep(0.5)
                break
            time.sleep(0.1)
    finally:
        alive = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("tuner_name", ["grid", "bayesian"])
def test_kill_9_then_resume_completes_every_configuration_exactly_once(tmp_path, tuner_name):
    # Big enough that a trial lasts a few seconds, so each kill lands inside one.
    prepared = write_tiny_prepared(tmp_path / "prepared", per_class=(300, 20, 20))
    run_dir = tmp_path / "run"
    argv = ["--data", str(prepared), "--run-dir", str(run_dir), "--space", "tutorial", "--tuner", tuner_name, "--epochs", "6",
            "--patience", "0", "--conv-layers", "1", "2", "--nodes", "4", "8", "--dense-layers", "0",
            "--max-trials", "4", "--quiet", "--prune-warmup-trials", "1", "--prune-warmup-epochs", "1",
            "--confirm", "0"]  # the trials' kill safety; the confirm runs' is test_distributed's
    for finished in (1, 2):
        assert run_until_killed(argv, run_dir, kill_after_finished=finished), "the search ended before the kill"
        assert sum(finished_configurations(run_dir).values()) < 4
    result = subprocess.run([sys.executable, "search.py", *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]
    counts = finished_configurations(run_dir)
    assert len(counts) == 4 and set(counts.values()) == {1}
    statuses = Counter(record.status for record in iter_trials(Run(run_dir)))
    assert sum(statuses.values()) == 4 and set(statuses) <= {"COMPLETED", "PRUNED"}, statuses


def test_the_resume_line_names_an_interrupted_first_trial(prepared, tmp_path, caplog):
    import logging

    run = Run(tmp_path / "run")
    run_search(*tiny_settings(prepared, run.root, conv_layers=(1,)))
    # As a kill -9 inside the first trial leaves it: RUNNING in its file and ongoing in the oracle's.
    state = json.loads(run.trial_state("0").read_text())
    run.trial_state("0").write_text(json.dumps({**state, "status": "RUNNING"}))
    oracle = json.loads(oracle_state_path(run.project).read_text())
    oracle_state_path(run.project).write_text(json.dumps({**oracle, "ongoing_trials": {"tuner0": "0"}, "end_order": []}))
    caplog.set_level(logging.INFO, logger="tuner")  # search.py --quiet in another test may have raised it
    assert run_search(*tiny_settings(prepared, run.root, conv_layers=(1,))).completed == 1
    assert "0 trial(s) finished; interrupted trial(s) 0 will run again from the start." in caplog.text


# A small core for the modern space, which these tests search with asha.
SMALL_CORE = ["--conv-layers", "1", "2", "--nodes", "4", "8", "--dense-layers", "0", "1", "--patience", "0"]
ASHA_FLAGS = ["--tuner", "asha", *SMALL_CORE]


def configurations_per_rung(run):
    """{(configuration, rung): trials} over a run's trial files, and the records by trial id."""
    records = {record.trial_id: record for record in iter_trials(run)}
    counts = Counter((json.dumps(record.hyperparameters, sort_keys=True), record.halving["rung"])
                     for record in records.values() if record.halving)
    return counts, records


def test_asha_promotes_and_a_promoted_trial_continues_its_earlier_rung(prepared, tmp_path, capsys, caplog):
    import h5py

    from tuner.trials.ranking import rank_trials

    caplog.set_level(logging.INFO)
    run = Run(tmp_path / "run")
    # The tutorial space's constant learning rate: a continued epoch's loss is comparable with the first rung's.
    argv = ["--data", str(prepared), "--run-dir", str(run.root), "--space", "tutorial", "--epochs", "9",
            "--max-trials", "8", "--workers", "0", *ASHA_FLAGS]
    assert search_script.main(argv) == 0, capsys.readouterr().err[-3000:]
    counts, records = configurations_per_rung(run)
    assert set(counts.values()) == {1}
    rungs = Counter(rung for _, rung in counts)
    # 8 configurations at 2 epochs, at least the best third of them (2) continued to 3 epochs.
    assert rungs[0] == 8 and rungs[1] >= 2 and len(records) == sum(rungs.values())
    assert "[1/10] trial" in caplog.text and "to rung 1 (3 epochs): val_loss" in caplog.text
    promoted = [record for record in records.values() if record.continues]
    steps = -(-2 * 24 // 32)  # two classes of 24 training images, batches of 32
    for record in promoted:
        earlier = records[record.continues]
        rung = record.halving["rung"]
        start = record.halving["epochs"][rung - 1]
        # One curve per configuration: the earlier rung's rows, then its own from initial_epoch + 1.
        assert [row["epoch"] for row in record.history] == list(range(1, record.halving["epochs"][rung] + 1))
        assert record.history[:start] == earlier.history
        # It continued the earlier model: its first epoch goes on from where the earlier rung ended.
        assert record.history[start]["loss"] < earlier.history[0]["loss"]
        # The optimizer state went on too: the step count a learning-rate schedule reads is the full training's.
        with h5py.File(run.trial_state(record.trial_id).parent / "last_epoch.weights.h5") as saved:
            assert int(saved["optimizer/vars/0"][()]) == record.halving["epochs"][rung] * steps
    # The report ranks each configuration once, at its highest rung, marking where it stopped.
    ranked, _, _ = rank_trials(run)
    assert len(ranked) == 8 and not {record.continues for record in promoted} & {row.trial for row in ranked}
    assert all(row.pruned == row.epochs for row in ranked)  # no configuration reached 9 epochs with 8 of them


def test_asha_with_2_epochs_is_one_rung_that_trains_every_configuration_to_the_end(prepared, tmp_path, capsys):
    # The first rung trains 2 epochs, so --epochs 2 is that rung alone: a random search, nothing continued.
    run = Run(tmp_path / "run")
    argv = ["--data", str(prepared), "--run-dir", str(run.root), "--epochs", "2", "--max-trials", "3", "--workers", "0",
            "--confirm", "0", *ASHA_FLAGS]
    assert search_script.main(argv) == 0, capsys.readouterr().err[-3000:]
    assert "3 trial(s) completed, 0 failed" in capsys.readouterr().out
    counts, records = configurations_per_rung(run)
    assert set(counts.values()) == {1} and Counter(rung for _, rung in counts) == {0: 3}
    assert all(record.halving["epochs"] == [2] and not record.continues and len(record.history) == 2
               for record in records.values())
    assert [(row.epochs, row.pruned) for row in rank_trials(run)[0]] == [(2, None)] * 3


def test_the_default_search_is_asha_over_the_modern_space_and_trains_each_configuration_once_per_rung(
        prepared, tmp_path, capsys):
    # No --space, --tuner or --workers: the modern space by successive halving, a chief here and a worker process
    # per core. A worker that finds nothing to promote and the budget used waits (IDLE) until a first-rung result
    # makes the promotion (here the baseline's, promoted whatever its rank; test_halving covers the waiting).
    run = Run(tmp_path / "run")
    argv = ["--data", str(prepared), "--run-dir", str(run.root), "--epochs", "3", "--max-trials", "3", *SMALL_CORE]
    assert search_script.main(argv) == 0, capsys.readouterr().err[-3000:]
    assert json.loads(run.settings.read_text())["search"]["tuner"] == "asha"
    assert set(next(iter_trials(run)).hyperparameters) == {"conv_layers", "nodes", "dense_layers", *MODERN_RECIPE}
    assert "4 trial(s) completed, 0 failed" in capsys.readouterr().out
    counts, records = configurations_per_rung(run)
    assert set(counts.values()) == {1} and Counter(rung for _, rung in counts) == {0: 3, 1: 1}
    assert all(record.status == "COMPLETED" for record in records.values())
    # The first configuration is the recipe's baseline over this core, and it is the one continued to the full epochs.
    baseline = {"conv_layers": 2, "nodes": 8, "dense_layers": 0, **MODERN_BASELINE}
    assert records["0"].hyperparameters == baseline
    assert [record.hyperparameters for record in records.values() if record.halving["rung"] == 1] == [baseline]
    assert {path.stem for path in run.project.glob("*.json")} - {"oracle"} >= {"chief", "worker0"}
    # asha's default --confirm: the top 2 configurations with 1 more seed each, and the baseline wherever it ranks,
    # trained by the same workers.
    ranked = rank_trials(run)[0]
    baseline_trial = next(row.trial for row in ranked if row.configuration() == baseline)
    assert sorted(path.relative_to(run.confirm_dir).as_posix() for path in run.confirm_records()) == sorted(
        f"trial_{trial}/seed_1.json" for trial in {row.trial for row in ranked[:2]} | {baseline_trial})


@pytest.mark.slow
def test_kill_9_during_asha_then_resume_trains_each_configuration_once_per_rung(tmp_path):
    prepared = write_tiny_prepared(tmp_path / "prepared", per_class=(300, 20, 20))
    run_dir = tmp_path / "run"
    argv = ["--data", str(prepared), "--run-dir", str(run_dir), "--epochs", "9", "--max-trials", "6", "--quiet",
            "--workers", "0", "--confirm", "0", *ASHA_FLAGS]
    for finished in (2, 4):
        assert run_until_killed(argv, run_dir, kill_after_finished=finished), "the search ended before the kill"
    result = subprocess.run([sys.executable, "search.py", *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]
    counts, records = configurations_per_rung(Run(run_dir))
    assert set(counts.values()) == {1} and Counter(rung for _, rung in counts)[0] == 6
    assert Counter(rung for _, rung in counts)[1] >= 2
    assert all(record.status == "COMPLETED" for record in records.values())
    for record in records.values():
        if record.continues:
            assert record.history[0] == records[record.continues].history[0]


def test_a_rerun_with_more_confirm_runs_trains_only_the_missing_ones_and_a_damaged_one_is_refused(prepared, tmp_path,
                                                                                                 caplog):
    caplog.set_level(logging.INFO, logger="tuner")  # search.py --quiet in another test may have raised it
    run = Run(tmp_path / "run")
    run_search(*tiny_settings(prepared, run.root, confirm=(1, 1)))
    first = {path: path.read_bytes() for path in run.confirm_records()}
    assert len(first) == 1
    caplog.clear()
    # --confirm may change on a resume, as --max-trials may: the finished search confirms one configuration more.
    summary = run_search(*tiny_settings(prepared, run.root, confirm=(2, 1)))
    assert "Confirming the top 2 configuration(s) with 1 more seed(s) each: 1 run(s) to train, 1 saved." in caplog.text
    assert summary.confirm_runs == 2 and all(path.read_bytes() == data for path, data in first.items())
    damaged = run.confirm_records()[0]
    damaged.write_text("{}")
    with pytest.raises(TunerUsageError, match=f"'{damaged}' is damaged"):
        run_search(*tiny_settings(prepared, run.root, confirm=(2, 2)))


def test_a_chief_counts_a_confirm_run_only_once_its_saved_record_checks_out(run_copy):
    from tuner.confirm.runs import confirm_seed
    from tuner.execution.confirming import ChiefConfirmRuns

    run = Run(run_copy)
    confirming = ChiefConfirmRuns(run, run.read_record())
    row = rank_trials(run)[0][0]
    job = {"trial": row.trial, "hyperparameters": row.configuration(), "index": 1}
    assert confirming.saved_problem(job).endswith("seed_1.json' is not saved")
    path = run.confirm_record(row.trial, 1)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"trial": row.trial, "index": 1}))  # a worker's Finish cannot make this count
    assert "is damaged: it is not a confirm run's record" in confirming.saved_problem(job)
    epochs = [{"epoch": epoch, "loss": 0.7, "accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.5, "seconds": 0.1}
              for epoch in (1, 2)]  # the tiny run's --epochs 2, --patience 0
    seed = confirm_seed(run.read_record().search.seed, row.trial, 1)
    path.write_text(json.dumps({"trial": row.trial, "index": 1, "seed": seed, "hyperparameters": row.configuration(),
                                "epochs": epochs, "seconds": 0.2}))
    assert confirming.saved_problem(job) is None
    assert confirming.saved_problem({**job, "trial": "99"}) == "trial 99 is not a ranked trial of this run"
