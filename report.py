"""Rank a run's trials, confirm the best over seeds, plot them, retrain the winner and score it once on the test split.

    python report.py --run-dir runs/asha --top 10 --confirm 3 2
"""

import dataclasses
import sys

from tuner.cli import import_tensorflow_quietly, run_cli
from tuner.config import ReportSettings, parse_settings

# A search still running in the run directory holds its lock. A report then would rank trials still changing and
# train the confirm runs the search is about to train, so it refuses (exit 2); waiting could take hours.
WHILE_SEARCHING = "the search is still running there (or another report is); run report.py again once it has finished."


def _report(argv):
    settings = parse_settings(ReportSettings, argv, "report.py", "Rank a run's trials, confirm the best over seeds, retrain the winner and score it on the test split.")
    # Before the package: importing it imports TensorFlow, whose start-up lines must not reach stderr.
    import_tensorflow_quietly()
    from tuner.names import for_terminal
    from tuner.report import build_report, format_table, record_winner, summary_lines, to_dataframe
    from tuner.report.html import write_html
    from tuner.rundir import RunLock, load_run_dataset, open_run
    from tuner.winner.retrain import format_winner, retrain_best

    # With --format csv|json stdout holds only that document, so it can be piped; the rest goes to stderr.
    notes = sys.stderr if settings.format in ("csv", "json") else sys.stdout

    def say(*texts, file=notes):
        # Paths and names are the user's: every line escaped, so none can repaint the terminal or reorder a line.
        print("\n".join(for_terminal(line) for text in texts for line in str(text).split("\n")), file=file)

    run, _ = open_run(settings.run_dir)  # resolved once, so "the latest run" cannot change under the lock
    with RunLock(run, holder="report.py", advice=WHILE_SEARCHING):
        report = build_report(dataclasses.replace(settings, run_dir=str(run.root)))
        # The table's text cells are escaped where it is made; a csv or json document goes out as it is, to be piped.
        print(format_table(to_dataframe(report.ranking[: settings.top]), settings.format).rstrip("\n"))
        say("", *summary_lines(report), "", f"wrote {', '.join(map(str, report.written))}")
        dataset = load_run_dataset(report.record)  # once, for the retrain and the page's thumbnails
        winner = retrain_best(report.run, report.record, report.ranking[0], retrain=not settings.no_retrain,
                              export=not settings.no_export, int8=settings.int8, dataset=dataset, tta=settings.tta)
        record_winner(report.run, winner.to_json())
        say(f"\n{format_winner(winner)}")
        if not settings.no_html:
            say(f"wrote {write_html(report.run, report, winner.to_json(), dataset)}")
    say(f"next: python predict.py --model {winner.model_dir} PATH...")
    if winner.exports:
        say(f"  or, without TensorFlow: python predict.py --runtime litert --model {winner.model_dir} PATH...")
    return 0


def main(argv=None):
    return run_cli(_report, argv)


if __name__ == "__main__":
    sys.exit(main())
