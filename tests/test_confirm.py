"""tuner.confirm.runs: the top configurations trained again under more seeds, resumable, reused, and ranked by their mean."""

import json
import logging

import pandas as pd

import report as report_script
import search as search_script
from tests.helpers import edit_json, one_error_line
from tuner.config import ReportSettings, SearchSettings
from tuner.confirm.runs import Confirmation, confirm_seed, rank_confirmed
from tuner.report import rank_trials, trials_dataframe
from tuner.rundir import Run
from tuner.trials.rows import CONFIRM_COLUMNS, FOOTPRINT_COLUMNS, METRIC_COLUMNS, TrialRow

HYPERPARAMETERS = ["conv_layers", "nodes", "dense_layers"]


def _confirm_files(run_dir):
    return sorted(path.relative_to(run_dir).as_posix() for path in (run_dir / "confirm").rglob("*.json"))


def test_confirm_runs_are_saved_resumed_and_reused(run_copy, caplog):
    caplog.set_level(logging.INFO, logger="tuner")  # search.py --quiet in another test may have raised it
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--workers", "0", "--no-retrain"]) == 0
    files = _confirm_files(run_copy)
    assert files == ["confirm/trial_0/seed_1.json", "confirm/trial_1/seed_1.json"]
    assert "2 run(s) to train, 0 saved" in caplog.text
    assert (run_copy / "tensorboard" / "confirm" / "trial_0-seed_1").is_dir()
    kept = (run_copy / files[1]).read_bytes()

    # A kill mid-run leaves no record (each is written whole when its run has finished): only that one runs again.
    (run_copy / files[0]).unlink()
    caplog.clear()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--workers", "0", "--no-retrain"]) == 0
    assert "1 run(s) to train, 1 saved" in caplog.text
    assert _confirm_files(run_copy) == files and (run_copy / files[1]).read_bytes() == kept

    # A second report trains nothing, and one seed more trains only the new seed.
    caplog.clear()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--workers", "0", "--no-retrain"]) == 0
    assert "to train" not in caplog.text
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "2", "--workers", "0", "--no-retrain"]) == 0
    assert "2 run(s) to train, 2 saved" in caplog.text
    record = json.loads((run_copy / "confirm" / "trial_1" / "seed_2.json").read_text())
    assert record["seed"] == confirm_seed(1337, "1", 2) and record["hyperparameters"]["nodes"] == 4
    ranking = json.loads((run_copy / "results.json").read_text())["ranking"]
    assert [row["seeds"] for row in ranking] == [3, 3]


def test_confirm_0_gives_todays_ranking(run, run_copy):
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain"]) == 0
    assert not (run_copy / "confirm").exists()
    completed, _, _ = rank_trials(Run(run))
    written = pd.read_csv(run_copy / "results.csv", dtype={"trial": str})
    assert list(written.columns) == ["rank", "trial", *HYPERPARAMETERS, *METRIC_COLUMNS, *FOOTPRINT_COLUMNS]
    assert list(written["trial"]) == [row.trial for row in completed]
    assert list(written["val_loss"]) == [row.val_loss for row in completed]
    assert json.loads((run_copy / "results.json").read_text())["comparison"] is None


def test_confirmed_rows_are_ranked_by_their_mean_and_come_first():
    rows = [TrialRow(trial, {"nodes": 4}, rank=rank, val_loss=loss, best_epoch=2)
            for rank, (trial, loss) in enumerate([("a", 0.10), ("b", 0.11), ("c", 0.12)], start=1)]
    # a was lucky: over three seeds b is better. c was not confirmed and keeps its place after them.
    confirmations = [Confirmation("a", [0.10, 0.20, 0.22], [2, 3, 4]), Confirmation("b", [0.11, 0.12, 0.13], [2, 2, 5])]
    ranked = rank_confirmed(rows, confirmations)
    assert [(row.rank, row.trial, row.seeds) for row in ranked] == [(1, "b", 3), (2, "a", 3), (3, "c", None)]
    assert abs(ranked[0].mean_val_loss - 0.12) < 1e-12 and ranked[0].median_best_epoch == 2
    assert abs(ranked[0].std_val_loss - 0.01) < 1e-12
    # A seed that diverged ranks its configuration last among the confirmed, with no mean to show.
    diverged = rank_confirmed(rows, [Confirmation("a", [0.10, float("inf")], [2]), Confirmation("b", [0.11, 0.12], [2, 2])])
    assert [row.trial for row in diverged] == ["b", "a", "c"] and diverged[1].mean_val_loss is None


def test_the_report_says_whether_the_winner_beats_the_runner_up(run_copy, capsys):
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--no-retrain", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "val_loss over seeds" in out.splitlines()[0] and " ± " in out
    line = next(line for line in out.splitlines() if line.startswith("The winner, trial"))
    assert "distinguishable over seeds" in line
    assert line in (run_copy / "results.md").read_text()


def test_a_damaged_confirm_record_is_refused_naming_it(run_copy, capsys):
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain", "--workers", "0"]) == 0
    capsys.readouterr()
    record = next((run_copy / "confirm").rglob("seed_1.json"))
    edit_json(record, lambda data: data["hyperparameters"].update(nodes=64))
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain", "--workers", "0"]) == 2
    one_error_line(capsys, f"'{record}' is damaged: it holds another configuration")
    record.write_text("{not json")
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain", "--workers", "0"]) == 2
    one_error_line(capsys, str(record))


def test_the_dataframe_has_one_row_per_ranked_trial_with_the_documented_columns(run, run_copy):
    frame = trials_dataframe(run)
    completed, _, _ = rank_trials(Run(run))
    assert list(frame.columns) == ["rank", "trial", *HYPERPARAMETERS, *METRIC_COLUMNS, *FOOTPRINT_COLUMNS]
    assert len(frame) == len(completed) == 2 and list(frame["trial"]) == [row.trial for row in completed]
    assert str(frame["rank"].dtype) == "Int64" and frame["pruned"].isna().all()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain", "--workers", "0"]) == 0
    confirmed = trials_dataframe(run_copy)
    assert list(confirmed.columns) == ["rank", "trial", *HYPERPARAMETERS, *METRIC_COLUMNS, *FOOTPRINT_COLUMNS,
                                       *CONFIRM_COLUMNS]
    assert list(confirmed["seeds"].astype("float").fillna(0)) == [2, 0]
    written = pd.read_csv(run_copy / "results.csv", dtype={"trial": str})
    assert list(written["trial"]) == list(confirmed["trial"])


def test_confirm_flag_is_checked_by_search_and_report(capsys):
    for script in (report_script, search_script):
        for argv in (["--confirm", "3"], ["--confirm", "3", "2", "1"], ["--confirm", "-1", "2"], ["--confirm", "3", "99"]):
            assert script.main(argv) == 2
            one_error_line(capsys, "--confirm takes K R")


def test_the_search_confirms_its_tuners_default_and_the_report_follows_the_search_unless_told():
    asha, grid = SearchSettings(), SearchSettings(space="tutorial")
    assert asha.confirm_counts == (2, 1) and grid.confirm_counts == (3, 2)
    more, off = SearchSettings(confirm=(5, 2)), SearchSettings(confirm=(0,))
    assert more.confirm_counts == (5, 2) and off.confirm_counts == (0, 0)
    # report.py's default is what the search did: it reuses those runs and trains no others.
    assert [ReportSettings().confirm_counts(search) for search in (asha, grid, more, off)] == [(2, 1), (3, 2), (5, 2), (0, 0)]
    assert ReportSettings(confirm=(3, 2)).confirm_counts(off) == (3, 2)
    assert ReportSettings(confirm=(0,)).confirm_counts(asha) == (0, 0)


def test_a_truncated_trial_in_the_top_k_is_ranked_by_its_confirm_runs_alone(run_copy):
    # Trial 1 stopped at epoch 1 (as the pruner or a low rung of successive halving stops a trial): its
    # search val_loss is a truncated run's, so only its full-length confirm run may count.
    run = Run(run_copy)
    edit_json(run.history("1"), lambda data: data.update(
        epochs=data["epochs"][:1], pruned={"epoch": 1, "best_val_loss": data["epochs"][0]["val_loss"], "median": 0.1,
                                           "trials": 5}))
    truncated = next(row for row in rank_trials(run)[0] if row.trial == "1")
    assert truncated.pruned == 1
    for row, val_loss in ((truncated, 0.01), (next(row for row in rank_trials(run)[0] if row.trial == "0"), 0.5)):
        path = run.confirm_record(row.trial, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"trial": row.trial, "index": 1, "seed": confirm_seed(run.read_record().search.seed, row.trial, 1),
                                    "hyperparameters": row.configuration(),
                                    "seconds": 1.0, "epochs": [{"epoch": 1, "val_loss": val_loss + 0.1},
                                                               {"epoch": 2, "val_loss": val_loss}]}))
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--workers", "0", "--no-retrain"]) == 0
    ranking = json.loads((run_copy / "results.json").read_text())["ranking"]
    first = ranking[0]
    assert (first["trial"], first["seeds"], first["mean_val_loss"], first["median_best_epoch"]) == ("1", 1, 0.01, 2)
    assert ranking[1]["trial"] == "0" and ranking[1]["seeds"] == 2  # a full-length search run counts with its confirm run
