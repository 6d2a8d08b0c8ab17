"""Search the space of small CNNs on a prepared dataset with KerasTuner.

    python search.py                                       # the modern space, by successive halving (runs/asha)
    python search.py --space tutorial --run-dir runs/grid  # the tutorial's 27-configuration grid
"""

import logging
import sys

from tuner.cli import import_tensorflow_quietly, run_cli
from tuner.config import parse_search_flags


def _search(argv):
    settings, options = parse_search_flags(argv)
    logging.getLogger("tuner").setLevel(logging.WARNING if options.quiet else logging.NOTSET)
    # Imported here so that --help and flag errors answer without loading TensorFlow.
    import_tensorflow_quietly()
    from tuner.execution.roles import replace_this_process, run_search

    summary = run_search(settings, options)
    if summary.retired:
        replace_this_process()  # a worker's --trials-per-process are done: go on as a fresh process
    if options.role == "worker":
        return 0  # the chief, or the launcher that started this worker, sums the search up
    pruned = f" ({summary.pruned} of them pruned)" if summary.pruned else ""
    print(f"{summary.completed} trial(s) completed{pruned}, {summary.failed} failed, in {summary.run_dir}")
    if summary.best_trial_id is not None:
        print(f"best: trial {summary.best_trial_id}, val_loss {summary.best_val_loss:.4f}")
    if summary.confirm_runs:
        print(f"confirm runs: {summary.confirm_runs} saved in {summary.run_dir / 'confirm'} (the top configurations "
              f"under more seeds; report.py ranks by them)")
    print(f"next: python report.py --run-dir {summary.run_dir}")
    print(f"curves: tensorboard --logdir {summary.run_dir}/tensorboard")
    return 0


def main(argv=None):
    return run_cli(_search, argv)


if __name__ == "__main__":
    sys.exit(main())
