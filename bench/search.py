"""Benchmark the search against the tutorial's hand-written 27-run loop, on two prepared datasets.

    python bench/search.py                       # both datasets: about 25 minutes on a 2-core laptop CPU
    python bench/search.py --datasets sample     # the built-in sample only
    python bench/search.py --memory              # the 100-trial memory run instead

For each dataset (bench/datasets.py: the built-in sample, and 5 Animal-MNIST classes), in one
run, as whole processes on the same prepared data, it times:
  (a) the tutorial's loop: 27 configurations, 10 epochs each, plain model.fit on float
      arrays, one TensorBoard folder per model, no early stopping;
  (b) `search.py --prune none --workers 1 --patience 0 --confirm 0`: the same work through the tool
      (one worker process beside the chief; no confirm runs, which the loop has no counterpart of):
      b/a is its overhead (target <= 1.10);
  (b0) the same with `--workers 0` (trials in the search process, no worker processes);
  (c) `search.py` with its defaults, whatever they are when run, its confirm runs included: c/a
      (target <= 0.5) and the best val_loss of each (target: c no more than 0.01 above a).
      BENCHMARKS.md's "Search" figures were measured with the defaults of 2026-11-29: the tutorial's
      grid with median pruning on every core, and no confirm runs in the search (report.py trained them).
--memory runs a 100-trial random search (1 epoch per trial, a 324-configuration space) with the
default process replacement, and once with --trials-per-process 0, sampling the RSS of the whole
process tree after each finished trial; it prints the slope over trials 10-100 (target <= 3 MB).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed  # noqa: E402
from datasets import DATASETS, ROOT, prepared  # noqa: E402
from tutorial import TUTORIAL_LOOP  # noqa: E402



def best_of_run(stdout):
    match = re.search(r"val_loss ([0-9.]+)", stdout)
    return float(match.group(1)) if match else float("nan")


def pruned_of_run(stdout):
    match = re.search(r"\((\d+) of them pruned\)", stdout)
    return int(match.group(1)) if match else 0


def compare(dataset, work):
    data = str(prepared(dataset))
    print(f"\n== {dataset} ({data})", flush=True)
    a_seconds, out = timed([sys.executable, "-c", TUTORIAL_LOOP, data, str(work / f"{dataset}-a-logs")], work / f"{dataset}-a.log")
    a_best = json.loads(out.strip().splitlines()[-1])["best_val_loss"]
    print(f"(a) tutorial loop: {a_seconds:.1f} s, best val_loss {a_best:.4f}", flush=True)
    search = [sys.executable, "search.py", "--data", data, "--overwrite", "--quiet"]
    rows = {}
    for label, flags in (("b", ["--prune", "none", "--workers", "1", "--patience", "0", "--confirm", "0"]),
                         ("b0", ["--prune", "none", "--workers", "0", "--patience", "0", "--confirm", "0"]),
                         ("c", [])):
        seconds, out = timed(search + ["--run-dir", str(work / f"{dataset}-{label}"), *flags], work / f"{dataset}-{label}.log")
        rows[label] = (seconds, best_of_run(out), pruned_of_run(out))
        print(f"({label}) search.py {' '.join(flags) or '(defaults)'}: {seconds:.1f} s, best val_loss "
              f"{rows[label][1]:.4f}, {rows[label][2]} of 27 pruned", flush=True)
    print(f"overhead b/a = {rows['b'][0] / a_seconds:.2f}, b0/a = {rows['b0'][0] / a_seconds:.2f}   (target <= 1.10)")
    print(f"defaults c/a = {rows['c'][0] / a_seconds:.2f}   (target <= 0.50)")
    print(f"best val_loss c - a = {rows['c'][1] - a_best:+.4f}   (target <= +0.01)", flush=True)


def tree_rss_mb(pid):
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def memory_run(data, run_dir, extra):
    """A 100-trial random search; the process tree's RSS after each finished trial (MB, by trial count)."""
    sys.path.insert(0, str(ROOT))
    from tuner.rundir import Run
    from tuner.trials.records import FINISHED, iter_trials

    argv = [sys.executable, "search.py", "--data", data, "--run-dir", str(run_dir), "--overwrite", "--quiet",
            "--tuner", "random", "--max-trials", "100", "--epochs", "1", "--prune", "none",
            "--learning-rates", "0.001", "0.0005", "0.0003", "0.0002", "--dropouts", "0", "0.25", "0.5", *extra]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, finished = {}, 0
    while process.poll() is None:
        time.sleep(0.25)
        count = sum(record.status in FINISHED for record in iter_trials(Run(run_dir)))
        if count > finished:
            finished = count
            samples[count] = tree_rss_mb(process.pid)
    return samples


def slope(samples, first=10, last=100):
    points = [(trial, rss) for trial, rss in samples.items() if first <= trial <= last]
    if len(points) < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


def memory(work):
    data = str(prepared("sample"))
    for label, extra in (("defaults (a worker is replaced every 20 trials)", []),
                         ("--trials-per-process 0 (never replaced)", ["--trials-per-process", "0"])):
        samples = memory_run(data, work / f"memory-{len(extra)}", extra)
        shown = " ".join(f"{trial}:{rss:.0f}" for trial, rss in sorted(samples.items()) if trial % 10 == 0)
        print(f"{label}: slope over trials 10-100 {slope(samples):+.2f} MB per trial (target <= 3); "
              f"tree RSS at trial 10 {samples.get(10, float('nan')):.0f} MB, at 100 {samples.get(100, float('nan')):.0f} MB",
              flush=True)
        print(f"    trial:MB {shown}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sample", "animals5"], choices=DATASETS)
    parser.add_argument("--memory", action="store_true", help="run the 100-trial memory benchmark instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    print(f"work folder: {work}")
    if args.memory:
        memory(work)
        return
    for dataset in args.datasets:
        compare(dataset, work)


if __name__ == "__main__":
    main()
