"""The four scripts in a row on an ordinary image folder, as a user runs them."""

import json

import pytest

import data_prep
import predict
import report
import search


@pytest.mark.slow
def test_prepare_search_report_predict(image_folder, tmp_path, capsys):
    prepared, run = tmp_path / "prepared", tmp_path / "run"
    assert data_prep.main(["--data-dir", str(image_folder), "--out", str(prepared), "--img-size", "16",
                           "--quiet"]) == 0
    # The default search, asha over the modern space, made small: 3 configurations, the baseline continued to 3 epochs.
    assert search.main(["--data", str(prepared), "--run-dir", str(run), "--epochs", "3", "--max-trials", "3",
                        "--conv-layers", "1", "--nodes", "4", "--dense-layers", "0", "1", "--quiet"]) == 0
    capsys.readouterr()
    # The search's workers trained the confirm runs; report.py reuses them and trains none again.
    confirm_runs = {path: path.read_bytes() for path in (run / "confirm").rglob("seed_*.json")}
    assert len(confirm_runs) in (2, 3)  # the top 2, and the baseline when it is not among them
    assert report.main(["--run-dir", str(run), "--format", "json"]) == 0
    assert {path: path.read_bytes() for path in (run / "confirm").rglob("seed_*.json")} == confirm_runs
    ranking = json.loads(capsys.readouterr().out)
    assert [row["rank"] for row in ranking] == [1, 2, 3]
    # The top 2 and the baseline were confirmed with 1 more seed each (the default --confirm for an asha run, 2 1)
    # at the full 3 epochs: a configuration that reached 3 epochs in the search (the recipe's baseline) has 2
    # full-length runs, one stopped at the first rung (2 epochs) is ranked by its confirm run alone; which are on
    # top depends on the first rung's results. The confirmed rows come first; the baseline is first of them unless
    # a challenger's mean is lower by more than the seed noise, which two or three runs this short cannot show.
    confirmed = ranking[:len(confirm_runs)]
    assert [row["seeds"] for row in confirmed] == [1 if row["pruned"] else 2 for row in confirmed]
    assert all(row["seeds"] is None for row in ranking[len(confirm_runs):])
    baseline = next(row for row in confirmed if row["pruned"] is None)  # the one configuration promoted to 3 epochs
    assert ranking[0]["trial"] == baseline["trial"] or ranking[0]["mean_val_loss"] < baseline["mean_val_loss"]
    assert (run / "best" / "model.keras").is_file() and (run / "results.csv").is_file()
    assert predict.main(["--model", str(run / "best"), str(image_folder / "cat")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8 and all(line.split("\t")[1] in ("cat", "dog") for line in lines)
