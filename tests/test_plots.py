"""tuner.plots: the curves and hyperparameter plots of a ranked run, written as whole PNG files."""


import report as report_script

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_are_written_and_non_empty(run_copy):
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 0
    for name in ("val_loss_curves.png", "hyperparameters.png"):
        data = (run_copy / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert not list((run_copy / "plots").glob(".*"))
