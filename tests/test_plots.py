"""tuner.report.plots: the curves, hyperparameter and Pareto figures read on their own (axis labels with units, a title, a
legend, the winner marked), and are written as whole PNG files."""

from dataclasses import replace

import report as report_script
from tuner.report.budget import Budget
from tuner.report.plots import curves_figure, hyperparameters_figure, pareto_figure
from tuner.report import rank_trials
from tuner.rundir import Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_are_written_and_non_empty(run_copy):
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain", "--confirm", "0", "--no-export", "--no-html"]) == 0
    for name in ("val_loss_curves.png", "hyperparameters.png", "pareto.png"):
        data = (run_copy / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert not list((run_copy / "plots").glob(".*"))


def _legend_texts(figure):
    legends = [*figure.legends, *(axes.get_legend() for axes in figure.axes if axes.get_legend())]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_every_figure_names_its_axes_and_units_and_marks_the_winner(run):
    ranking, failed, _ = rank_trials(Run(run))
    names = list(ranking[0].hyperparameters)
    space = {"conv_layers": [1, 2, 3], "nodes": [4], "dense_layers": [0]}
    # The runner-up as a trial the pruner stopped: its curve must say so.
    ranking = [ranking[0], replace(ranking[1], pruned=ranking[1].epochs)]

    curves = curves_figure(Run(run), ranking, names)
    axes = curves.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("epoch", "validation loss (cross-entropy)")
    assert axes.get_title()
    legend = _legend_texts(curves)
    assert any("(winner)" in text for text in legend)
    assert any(f"trial {ranking[1].trial} (pruned at epoch" in text for text in legend)
    assert any(line.get_marker() == "x" for line in axes.get_lines())

    panels = hyperparameters_figure(ranking, failed, names, space)
    assert [axes.get_xlabel() for axes in panels.axes] == [f"{name} (value searched)" for name in names]
    assert panels.axes[0].get_ylabel() == "validation loss (cross-entropy)" and panels.get_suptitle()
    assert any(text.startswith("winner") for text in _legend_texts(panels))

    pareto = pareto_figure(ranking, ranking[0], Budget(max_params=10_000))
    axes = pareto.axes[0]
    assert axes.get_xlabel() == "parameters (count, log scale)" and "validation loss" in axes.get_ylabel()
    assert axes.get_title()
    legend = _legend_texts(pareto)
    assert f"winner (trial {ranking[0].trial})" in legend and "--max-params 10,000" in legend
