"""Rank a run's trials, confirm the best over seeds, plot them, retrain the winner and score it once on the test split.

    python report.py --run-dir runs/asha --top 10 --confirm 3 2
"""

import sys

from tuner.cli import import_tensorflow_quietly, run_cli
from tuner.config import ReportSettings, parse_settings


def _report(argv):
    settings = parse_settings(ReportSettings, argv, "report.py", "Rank a run's trials, confirm the best over seeds, retrain the winner and score it on the test split.")
    from tuner.report import build_report, format_table, record_winner, summary_lines, to_dataframe
    from tuner.report.html import write_html
    from tuner.rundir import load_run_dataset
    from tuner.winner.retrain import format_winner, retrain_best

    if settings.confirm != (0,):
        import_tensorflow_quietly()  # the confirm runs train models
    report = build_report(settings)
    # With --format csv|json stdout holds only that document, so it can be piped; the rest goes to stderr.
    notes = sys.stderr if settings.format in ("csv", "json") else sys.stdout
    print(format_table(to_dataframe(report.ranking[: settings.top]), settings.format).rstrip("\n"))
    print("", *summary_lines(report), "", f"wrote {', '.join(map(str, report.written))}", sep="\n", file=notes)
    import_tensorflow_quietly()
    dataset = load_run_dataset(report.record)  # once, for the retrain and the page's thumbnails
    winner = retrain_best(report.run, report.record, report.ranking[0], retrain=not settings.no_retrain,
                          export=not settings.no_export, int8=settings.int8, dataset=dataset, tta=settings.tta)
    record_winner(report.run, winner.to_json())
    print(f"\n{format_winner(winner)}", file=notes)
    if not settings.no_html:
        print(f"wrote {write_html(report.run, report, winner.to_json(), dataset)}", file=notes)
    print(f"next: python predict.py --model {winner.model_dir} PATH...", file=notes)
    if winner.exports:
        print(f"  or, without TensorFlow: python predict.py --runtime litert --model {winner.model_dir} PATH...", file=notes)
    return 0


def main(argv=None):
    return run_cli(_report, argv)


if __name__ == "__main__":
    sys.exit(main())
