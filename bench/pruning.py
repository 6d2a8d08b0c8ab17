"""How the pruning settings trade time for the best val_loss: the 27-configuration grid under each.

    python bench/pruning.py                      # both datasets, 5 settings each: about 25 minutes here
    python bench/pruning.py --replay RUN...      # replay unpruned runs' curves under 24 settings: seconds

Every setting runs `search.py` with its defaults otherwise (every core, patience 3; no confirm
runs, which pruning does not touch) on the same prepared data, as a whole process: its wall time, how many trials were pruned, the best
val_loss found, and whether the winner is the one the unpruned search (`--prune none`) found.
Each trial is seeded on its own, so an unpruned trial's curve is the same under every setting;
what pruning can lose is only the trials it stops.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import DATASETS, ROOT, prepared  # noqa: E402

SETTINGS = {
    "none": ["--prune", "none"],
    "median, 5 trials, 2 epochs": ["--prune-warmup-trials", "5", "--prune-warmup-epochs", "2"],
    "median, 3 trials, 1 epoch": ["--prune-warmup-trials", "3", "--prune-warmup-epochs", "1"],
    "median, 5 trials, 1 epoch": ["--prune-warmup-trials", "5", "--prune-warmup-epochs", "1"],
    "median, 10 trials, 3 epochs": ["--prune-warmup-trials", "10", "--prune-warmup-epochs", "3"],
}


def run(data, run_dir, flags):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "search.py", "--data", data, "--run-dir", str(run_dir), "--overwrite",
                             "--quiet", "--confirm", "0", *flags], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"search failed: {result.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    best = re.search(r"best: trial (\S+), val_loss ([0-9.]+)", result.stdout)
    pruned = re.search(r"\((\d+) of them pruned\)", result.stdout)
    return seconds, best.group(1), float(best.group(2)), int(pruned.group(1)) if pruned else 0


def replay(run_dir, warmup_trials, warmup_epochs):
    """Apply the median rule (tuner.search.pruning's own) to a finished --prune none run, trial by trial in id order.

    Returns the share of the run's training seconds that would be spent, the number pruned, and
    the best val_loss (with its trial) the pruned search would report.
    """
    sys.path.insert(0, str(ROOT))
    from tuner.search.pruning import median_verdict
    from tuner.rundir import Run
    from tuner.trials.records import iter_trials

    finished, spent, full, pruned, best = [], 0.0, 0.0, 0, (float("inf"), None)
    for record in iter_trials(Run(run_dir)):
        losses = [row["val_loss"] for row in record.history]
        seconds = [row["seconds"] for row in record.history]
        stop = len(losses)
        for epoch in range(1, len(losses) + 1):
            if median_verdict(epoch, min(losses[:epoch]), finished, warmup_trials, warmup_epochs):
                stop = epoch
                break
        spent, full = spent + seconds[stop - 1], full + seconds[-1]
        best = min(best, (min(losses[:stop]), record.trial_id))
        if stop < len(losses):
            pruned += 1
        else:
            finished.append({index + 1: loss for index, loss in enumerate(losses)})
    return spent / full, pruned, best


def replay_all(run_dirs):
    print("| run | warm-up trials | warm-up epochs | training time | pruned | best trial | best val_loss | vs unpruned |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run_dir in run_dirs:
        unpruned = replay(run_dir, 10**9, 0)[2]
        for warmup_trials in (3, 5, 10):
            for warmup_epochs in (1, 2, 3, 4):
                share, pruned, best = replay(run_dir, warmup_trials, warmup_epochs)
                print(f"| {Path(run_dir).name} | {warmup_trials} | {warmup_epochs} | {share:.2f} | {pruned} | {best[1]} | "
                      f"{best[0]:.4f} | {best[0] - unpruned[0]:+.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sample", "animals5"], choices=DATASETS)
    parser.add_argument("--replay", nargs="+", metavar="RUN", help="finished --prune none runs to replay instead")
    args = parser.parse_args()
    if args.replay:
        replay_all(args.replay)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-pruning-"))
    print(f"work folder: {work}")
    for dataset in args.datasets:
        data = str(prepared(dataset))
        print(f"\n== {dataset}\n| setting | wall s | vs none | pruned | best trial | best val_loss | vs none |", flush=True)
        print("| --- | --- | --- | --- | --- | --- | --- |")
        baseline = None
        for index, (name, flags) in enumerate(SETTINGS.items()):
            seconds, trial, best, pruned = run(data, work / f"{dataset}-{index}", flags)
            baseline = baseline or (seconds, trial, best)
            print(f"| {name} | {seconds:.1f} | {seconds / baseline[0]:.2f} | {pruned} | {trial}"
                  f"{' (same)' if trial == baseline[1] else ''} | {best:.4f} | {best - baseline[2]:+.4f} |", flush=True)


if __name__ == "__main__":
    main()
