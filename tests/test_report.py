import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import report as report_script
from tests.helpers import edit_json, one_error_line
from tuner.errors import TunerUsageError
from tuner.config import ReportSettings
from tuner.report import (boundary_warnings, build_report, counts_line, format_table, rank_trials, summary_lines,
                          to_dataframe)
from tuner.config import SearchSettings
from tuner.config.spaces import modern_baseline
from tuner.trials.rows import CONFIRM_COLUMNS, TrialRow, failed_columns, ranked_columns
from tuner.rundir import Run

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["rank", "trial", "conv_layers", "nodes", "dense_layers", "val_loss", "val_accuracy", "best_epoch", "epochs",
           "pruned", "seconds", "params", "weight_bytes", "latency_ms", "images_per_second", "threads"]


def test_completed_trials_are_ranked_by_best_val_loss_and_failed_ones_listed(run):
    completed, failed, running = rank_trials(Run(run))
    assert [row.trial for row in failed] == ["2"] and running == 0
    assert "3 conv+pool blocks need images of at least 22x22 px" in failed[0].reason
    assert failed_columns(failed) == ["trial", "conv_layers", "nodes", "dense_layers", "reason"]
    assert sorted(row.trial for row in completed) == ["0", "1"]
    assert [row.rank for row in completed] == [1, 2]
    assert completed[0].val_loss <= completed[1].val_loss
    assert ranked_columns(completed) == COLUMNS
    for row in completed:
        assert list(row.hyperparameters) == ["conv_layers", "nodes", "dense_layers"]
        history = json.loads((run / "history" / f"trial_{row.trial}.json").read_text())["epochs"]
        best = min(history, key=lambda epoch: epoch["val_loss"])
        assert row.val_loss == best["val_loss"] and row.val_accuracy == best["val_accuracy"]
        assert row.best_epoch == best["epoch"] and row.epochs == 2 and row.seconds > 0


def test_ties_share_a_rank_and_are_ordered_by_accuracy_then_trial(run_copy):
    source = json.loads((run_copy / "history" / "trial_1.json").read_text())
    (run_copy / "history" / "trial_0.json").write_text(json.dumps({**source, "trial_id": "0"}))
    completed, _, _ = rank_trials(Run(run_copy))
    assert [(row.rank, row.trial) for row in completed] == [(1, "0"), (1, "1")]

    def better_accuracy(history):
        for epoch in history["epochs"]:
            epoch["val_accuracy"] += 1e-3

    edit_json(run_copy / "history" / "trial_1.json", better_accuracy)
    completed, _, _ = rank_trials(Run(run_copy))
    assert [(row.rank, row.trial) for row in completed] == [(1, "1"), (1, "0")]


def test_a_pruned_trial_is_ranked_by_its_best_val_loss_and_shown_as_pruned(run, run_copy, capsys):
    winner = rank_trials(Run(run))[0][0].trial
    verdict = {"epoch": 1, "best_val_loss": 9.0, "median": 1.0, "trials": 1}
    edit_json(run_copy / "history" / f"trial_{winner}.json", lambda history: history.update(pruned=verdict))
    completed, failed, running = rank_trials(Run(run_copy))
    # Pruned, but genuinely the lowest val_loss: still the winner, marked with the epoch it stopped at.
    assert [(row.trial, row.pruned) for row in completed][0] == (winner, 1)
    assert all(row.pruned is None for row in completed[1:])
    assert counts_line(completed, failed, running).startswith("1 completed, 1 stopped early (pruned")
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "1 completed, 1 stopped early (pruned" in err and "pruned" in out.splitlines()[0]
    assert "1 completed, 1 stopped early (pruned" in (run_copy / "results.md").read_text()


def test_running_trials_are_counted_and_the_report_says_it_is_provisional(run_copy, capsys):
    edit_json(run_copy / "trials" / "trial_1" / "trial.json", lambda state: state.update(status="RUNNING"))
    completed, failed, running = rank_trials(Run(run_copy))
    assert [row.trial for row in completed] == ["0"] and len(failed) == 1 and running == 1
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 0
    assert "1 trial(s) are still running or were interrupted" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_every_format_holds_every_trial(run, fmt):
    completed, _, _ = rank_trials(Run(run))
    text = format_table(to_dataframe(completed), fmt)
    if fmt == "json":
        assert [list(row) for row in json.loads(text)] == [COLUMNS] * 2
    elif fmt == "csv":
        frame = pd.read_csv(io.StringIO(text), dtype={"trial": str})
        assert list(frame.columns) == COLUMNS and list(frame["trial"]) == [row.trial for row in completed]
        assert np.allclose(frame["val_loss"], [row.val_loss for row in completed], rtol=0, atol=1e-12)
    else:
        lines = text.splitlines()
        shown = [name for name in COLUMNS if name not in ("weight_bytes", "threads")]  # CSV and JSON only
        assert all(name in lines[0] for name in shown) and len(lines) == 2 + len(completed)
        assert f"{completed[0].val_loss:.4f}" in lines[2]
        if fmt == "markdown":
            assert lines[0].startswith("|") and set(lines[1]) <= set("|-: ")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_machine_formats_keep_stdout_pure_and_results_files_are_written(run_copy, fmt, capsys):
    assert report_script.main(["--run-dir", str(run_copy), "--format", fmt, "--top", "1", "--no-retrain",
                               "--confirm", "3", "2", "--workers", "0"]) == 0
    out, err = capsys.readouterr()
    if fmt == "json":
        rows = json.loads(out)
    else:
        rows = pd.read_csv(io.StringIO(out), dtype={"trial": str}).to_dict("records")
    # report.py confirmed both trials over seeds (--confirm 3 2; the search confirmed none), which adds their columns.
    assert len(rows) == 1 and list(rows[0]) == [*COLUMNS, *CONFIRM_COLUMNS] and rows[0]["rank"] == 1
    assert rows[0]["seeds"] == 3
    assert "failed trials (1)" in err and "winner: trial" in err and "over seeds" in err
    every = pd.read_csv(run_copy / "results.csv", dtype={"trial": str})
    assert list(every.columns) == [*COLUMNS, *CONFIRM_COLUMNS] and len(every) == 2
    markdown = (run_copy / "results.md").read_text()
    assert "## Failed trials" in markdown and "22x22" in markdown


def test_boundary_rules():
    space = {"conv_layers": [1, 2, 3], "nodes": [32, 64, 128], "dense_layers": [0, 1, 2], "dropout": [0.0, 0.5]}
    winner = {"conv_layers": 3, "nodes": 32, "dense_layers": 0, "dropout": 0.0}
    messages = boundary_warnings(winner, space, image_side=50)
    assert len(messages) == 2
    assert "conv_layers=3 is the largest value searched (1..3)" in messages[0] and "--conv-layers" in messages[0]
    assert "nodes=32 is the smallest value searched (32..128)" in messages[1] and "--nodes" in messages[1]
    # Nothing to suggest: 4 conv blocks need 46 px, the range has one value, or it cannot go lower.
    assert boundary_warnings({"conv_layers": 3}, {"conv_layers": [1, 2, 3]}, image_side=45) == []
    assert boundary_warnings({"nodes": 64}, {"nodes": [64]}) == []
    assert boundary_warnings({"conv_layers": 1, "dense_layers": 0}, {"conv_layers": [1, 2], "dense_layers": [0, 1]}) == []
    # Blocks of two padded convolutions need only 16 px for 4 blocks; one or two convolutions is not a range.
    assert "conv_layers=3 is the largest" in boundary_warnings({"conv_layers": 3, "convs_per_block": 2},
                                                               {"conv_layers": [1, 2, 3]}, image_side=28)[0]
    assert boundary_warnings({"convs_per_block": 1}, {"convs_per_block": (1, 2)}) == []


def _rows(*trials):
    """Ranked rows from (hyperparameters, val_loss) pairs, in the order given."""
    return [TrialRow(str(index), values, rank=index + 1, val_loss=loss) for index, (values, loss) in enumerate(trials)]


def test_an_edge_is_noted_only_where_the_trials_improve_toward_it():
    space = {"nodes": [32, 64, 128]}
    warned = boundary_warnings({"nodes": 128}, space, trials=_rows(({"nodes": 128}, 0.20), ({"nodes": 64}, 0.30),
                                                                   ({"nodes": 32}, 0.25), ({"nodes": 128}, 0.50)))
    assert len(warned) == 1 and "nodes=128 is the largest value searched (32..128)" in warned[0]
    assert "widen --nodes upwards" in warned[0] and "the best val_loss at 128, 0.2000, beats the 0.3000 at 64" in warned[0]
    low = boundary_warnings({"nodes": 32}, space, trials=_rows(({"nodes": 32}, 0.20), ({"nodes": 64}, 0.30)))
    assert len(low) == 1 and "nodes=32 is the smallest value searched" in low[0] and "downwards" in low[0]
    # The nearest value with trials is the one weighed: 64 has none here, so 32's.
    skipped = boundary_warnings({"nodes": 128}, space, trials=_rows(({"nodes": 128}, 0.20), ({"nodes": 32}, 0.25)))
    assert len(skipped) == 1 and "beats the 0.2500 at 32" in skipped[0]
    # Not noted: the edge is better by less than EDGE_MARGIN (3%), or no trial took another value (no evidence).
    assert boundary_warnings({"nodes": 128}, space, trials=_rows(({"nodes": 128}, 0.295), ({"nodes": 64}, 0.30))) == []
    assert boundary_warnings({"nodes": 128}, space, trials=_rows(({"nodes": 128}, 0.20), ({"nodes": 128}, 0.30))) == []


def test_a_baseline_winner_is_not_told_to_widen_the_ranges_it_was_placed_at_the_top_of():
    search = SearchSettings(space="modern", tuner="asha")  # on 50 px images, where a fourth conv block would fit
    space = {"conv_layers": [1, 2, 3], "nodes": [32, 64, 128], "dense_layers": [0, 1, 2]}
    baseline = modern_baseline([1, 2, 3], [32, 64, 128], [0, 1, 2], 50)
    smaller = {**baseline, "conv_layers": 2, "nodes": 64, "dense_layers": 1}
    edges = {**baseline, "nodes": 128, "dense_layers": 2}
    assert baseline["nodes"] == 64 and boundary_warnings(baseline, space, 50, search, _rows((baseline, 0.1), (smaller, 0.4))) == []
    # A configuration the search proposed (another dropout) at the core's edges, with the same evidence: noted.
    proposed = {**edges, "dropout": 0.1}
    warned = boundary_warnings(proposed, space, 50, search, _rows((proposed, 0.1), (smaller, 0.4)))
    assert [message.split(" is ")[0] for message in warned] == [
        "the winner's conv_layers=3", "the winner's nodes=128", "the winner's dense_layers=2"]


def test_a_continuous_edge_is_noted_when_its_outer_tenth_beats_the_rest_of_the_range():
    search = SearchSettings(space="modern", tuner="random")
    space = {"learning_rate": [0.001, 0.0095]}
    trials = _rows(({"learning_rate": 0.0095}, 0.20), ({"learning_rate": 0.001}, 0.30))
    warned = boundary_warnings({"learning_rate": 0.0095}, space, 28, search, trials)
    assert len(warned) == 1 and "lies in the top 10% of the range searched" in warned[0]
    assert "the best val_loss there, 0.2000, beats the 0.3000 of the rest of the range" in warned[0]
    close = _rows(({"learning_rate": 0.0095}, 0.20), ({"learning_rate": 0.001}, 0.201))
    assert boundary_warnings({"learning_rate": 0.0095}, space, 28, search, close) == []


def _a_loser_at_nodes_2(run_copy):
    """As if nodes 2 had been searched too and lost clearly: the winner's 4 is then the top of the range, and the
    trials say val_loss improves toward it."""
    winner, loser = (row.trial for row in rank_trials(Run(run_copy))[0])
    edit_json(run_copy / "settings.json", lambda settings: settings["search"].update(nodes=[2, 4]))
    edit_json(run_copy / "trials" / f"trial_{loser}" / "trial.json",
              lambda state: state["hyperparameters"]["values"].update(nodes=2))

    def worse(history):
        for epoch in history["epochs"]:
            epoch["val_loss"] += 1.0

    edit_json(run_copy / "history" / f"trial_{loser}.json", worse)


def test_the_report_warns_when_the_winner_is_at_the_edge(run_copy, capsys):
    _a_loser_at_nodes_2(run_copy)
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 0
    out = capsys.readouterr().out
    assert "note: the winner's nodes=4 is the largest value searched (2..4)" in out and "widen --nodes" in out
    assert "nodes=4 is the largest" in (run_copy / "results.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--top", "0"], "--top must be a whole number of at least 1, got 0"),
    (["--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    assert report_script.main(argv) == 2
    one_error_line(capsys, message)


def test_bad_run_directories_exit_2_with_one_line(run_copy, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert report_script.main(["--run-dir", str(tmp_path / "nowhere")]) == 2
    one_error_line(capsys, "does not exist")
    assert report_script.main(["--run-dir", str(tmp_path / "empty")]) == 2
    one_error_line(capsys, "is not a run directory")
    monkeypatch.chdir(tmp_path / "empty")
    assert report_script.main([]) == 2
    one_error_line(capsys, "found no run under 'runs/'")

    for trial in ("0", "1"):
        edit_json(run_copy / "trials" / f"trial_{trial}" / "trial.json", lambda state: state.update(status="RUNNING"))
    assert report_script.main(["--run-dir", str(run_copy)]) == 2
    one_error_line(capsys, "has no completed trial yet (2 running, 1 failed: 3 conv+pool blocks need")
    with pytest.raises(TunerUsageError, match="no completed trial yet"):
        build_report(ReportSettings(run_dir=str(run_copy)))


def test_help_answers_without_importing_tensorflow():
    result = subprocess.run([sys.executable, "-X", "importtime", "report.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--no-retrain" in result.stdout
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr


def test_an_unreadable_trial_file_is_reported_with_its_path_not_dropped_silently(run_copy, capsys):
    damaged = run_copy / "trials" / "trial_0" / "trial.json"
    damaged.write_text("{broken")
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain"]) == 0
    out = capsys.readouterr().out
    note = f"note: 1 trial file(s) could not be read, so their trials are not ranked: '{damaged}' is damaged (not valid JSON)"
    assert note in out
    assert str(damaged) in (run_copy / "results.md").read_text()
    assert any(str(damaged) in message for message in json.loads((run_copy / "results.json").read_text())["notes"])
    assert damaged.read_text() == "{broken"


def test_the_terminal_and_results_md_show_the_same_summary(run_copy, capsys):
    _a_loser_at_nodes_2(run_copy)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain", "--no-export"]) == 0
    out = capsys.readouterr().out
    report = build_report(ReportSettings(run_dir=str(run_copy), confirm=(0,)))
    terminal, markdown = summary_lines(report), summary_lines(report, markdown=True)
    assert "\n".join(terminal) in out and "\n".join(markdown) in (run_copy / "results.md").read_text()
    # The same sentences, under the terminal's headings or Markdown's.
    counts = f"{report.counts()}; trials ranked by best val_loss (lowest first)."
    assert terminal[0] == markdown[0] == counts and len(report.notes) == 1
    assert f"note: {report.notes[0]}" in terminal and f"- {report.notes[0]}" in markdown
    assert "failed trials (1):" in terminal and "## Failed trials (1)" in markdown
    assert report.ranking[0].rank == 1 and not report.excluded and report.written[0] == run_copy / "results.csv"


def test_a_run_whose_every_trial_failed_exits_1_with_one_line(run_copy, capsys):
    for trial in ("0", "1"):
        edit_json(run_copy / "trials" / f"trial_{trial}" / "trial.json",
                  lambda state: state.update(status="FAILED", message="ValueError: out of memory"))
    assert report_script.main(["--run-dir", str(run_copy)]) == 1
    one_error_line(capsys, "all 3 trial(s) of run")
    assert not (run_copy / "best").exists() and not (run_copy / "confirm").exists()


def test_a_report_while_the_search_holds_the_run_is_refused_and_trains_nothing(run_copy, capsys):
    from tuner.rundir import RunLock

    before = sorted(path.relative_to(run_copy) for path in run_copy.rglob("*"))
    with RunLock(Run(run_copy)):
        assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--workers", "0"]) == 2
    one_error_line(capsys, "(search.py); the search is still running there (or another report is); run report.py again")
    assert sorted(path.relative_to(run_copy) for path in run_copy.rglob("*")) == before  # no confirm run, no results


def test_a_search_while_a_report_holds_the_run_is_refused_naming_the_report(run_copy):
    from tuner.rundir import RunLock

    with RunLock(Run(run_copy), holder="report.py"):
        with pytest.raises(TunerUsageError, match=r"is in use by process \d+ on .* \(report.py\); wait for it"):
            RunLock(Run(run_copy)).__enter__()


# What TensorFlow, absl and CUDA print when they start: none of it may reach report.py's stderr, its pool's included.
START_UP = ("WARNING: All log messages before absl", "oneDNN", "cuda", "cuInit", "cpu_feature_guard", "rebuild TensorFlow",
            "This TensorFlow binary")


def test_report_stderr_holds_no_library_start_up_lines_from_it_or_its_confirm_processes(run_copy):
    result = subprocess.run([sys.executable, "report.py", "--run-dir", str(run_copy), "--confirm", "1", "1",
                             "--workers", "1", "--no-export", "--no-html"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("Starting 1 confirm process") for line in lines), lines  # the pool did start one
    noise = [line for line in lines if any(marker.lower() in line.lower() for marker in START_UP)
             or re.match(r"[IWEF]\d{4} ", line)]  # absl's own line format
    assert noise == [], result.stderr


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_left_alone(run_copy, tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    (run_copy / ".search.lock").unlink(missing_ok=True)
    (run_copy / ".search.lock").symlink_to(target)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0"]) == 2
    one_error_line(capsys, "lock file")
    assert target.read_text() == "keep" and not (run_copy / "best").exists()
