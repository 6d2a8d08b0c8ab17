"""tuner.report.plots: the curves, hyperparameter and Pareto figures read on their own (axis labels with units, a title, a
legend, the winner marked), and are written as whole PNG files."""

from dataclasses import replace

import report as report_script
from tuner.report.budget import Budget
from tuner.report.plot_data import curves_info, hyperparameters_info, pareto_info
from tuner.report.plots import curves_figure, hyperparameters_figure, pareto_figure
from tuner.rundir import Run
from tuner.trials.ranking import rank_records
from tuner.trials.records import scan_trials

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
    records, _ = scan_trials(Run(run))
    ranking, failed, _ = rank_records(records)
    names = list(ranking[0].hyperparameters)
    space = {"conv_layers": [1, 2, 3], "nodes": [4, 8], "dense_layers": [0]}
    # The runner-up as a trial the pruner stopped: its curve must say so.
    ranking = [ranking[0], replace(ranking[1], pruned=ranking[1].epochs)]

    curves = curves_figure(curves_info(records, ranking, names))
    axes = curves.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("epoch", "validation loss (cross-entropy)")
    assert axes.get_title()
    legend = _legend_texts(curves)
    assert any("(winner)" in text for text in legend)
    assert any(f"trial {ranking[1].trial} (pruned at epoch" in text for text in legend)
    assert any(line.get_marker() == "x" for line in axes.get_lines())

    # A panel per hyperparameter searched over more than one value, all on one val_loss axis labelled once.
    panels = hyperparameters_figure(hyperparameters_info(ranking, failed, names, space))
    assert [axes.get_xlabel() for axes in panels.axes] == ["conv_layers", "nodes"]
    assert panels.get_supylabel() == "validation loss (cross-entropy)" and panels.get_suptitle()
    assert any(text.startswith("winner") for text in _legend_texts(panels))

    pareto = pareto_figure(pareto_info(ranking, ranking[0], Budget(max_params=10_000)))
    axes = pareto.axes[0]
    assert axes.get_xlabel() == "parameters (count, log scale)" and "validation loss" in axes.get_ylabel()
    assert axes.get_title()
    legend = _legend_texts(pareto)
    assert f"winner (trial {ranking[0].trial})" in legend and "--max-params 10,000" in legend


def _legend_box(figure):
    figure.canvas.draw()
    return figure.legends[0].get_window_extent(), figure.bbox


def test_a_long_configuration_keeps_the_curves_legend_within_the_figure(run):
    # The modern space's nine hyperparameters in every label: the legend wraps them instead of outgrowing the figure.
    records, _ = scan_trials(Run(run))
    ranking, _, _ = rank_records(records)
    long = {"conv_layers": 3, "nodes": 128, "dense_layers": 2, "filters": "double", "batch_norm": True, "head": "gap",
            "dropout": 0.2, "learning_rate": 0.0043037812, "augment": "on"}
    ranking = [replace(row, hyperparameters=long) for row in ranking]
    legend, page = _legend_box(curves_figure(curves_info(records, ranking, list(long))))
    assert page.x0 <= legend.x0 and legend.x1 <= page.x1


def test_many_hyperparameters_are_drawn_three_panels_to_a_row():
    from tuner.trials.rows import TrialRow

    names = [f"choice_{index}" for index in range(7)]
    space = {name: ["a_long_value", "another_long_value", "third"] for name in names}
    ranking = [TrialRow(str(index), {name: space[name][index % 3] for name in names}, rank=index + 1,
                        val_loss=0.2 + index / 10) for index in range(3)]
    figure = hyperparameters_figure(hyperparameters_info(ranking, [], names, space))
    figure.canvas.draw()
    columns = sorted({round(axes.get_position().x0, 2) for axes in figure.axes})
    assert len(figure.axes) == 7 and len(columns) == 3
    # Long categorical values are turned, so neighbouring labels do not run into each other, and stay on the figure.
    labels = [label for axes in figure.axes for label in axes.get_xticklabels() if label.get_text()]
    assert {label.get_rotation() for label in labels} == {30}
    assert all(figure.bbox.x0 <= label.get_window_extent().x0 for label in labels)
    assert figure.get_figwidth() <= 11
