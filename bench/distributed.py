"""Benchmark scaling out: the 27-configuration grid on the built-in sample with 1 worker, then 2.

    python bench/distributed.py        # about 10 minutes on a 2-core machine

Both runs go through `search.py --workers N --confirm 0` (a chief plus N worker processes on
loopback, each worker's TensorFlow single-threaded; the trials only), in one run, on the same prepared data;
it prints each wall time and the speed-up (target on 2 cores: at least 1.6x).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.rundir import Run  # noqa: E402
from tuner.trials.records import iter_trials  # noqa: E402


def timed_search(data, run_dir, workers, extra):
    command = [sys.executable, "search.py", "--data", data, "--run-dir", str(run_dir), "--workers", str(workers),
               "--overwrite", "--quiet", "--confirm", "0", *extra]
    # Single-threaded TensorFlow in every worker, as the target is stated, so the comparison is
    # one training process against two.
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1"}
    started = time.perf_counter()
    with open(f"{run_dir}.log", "w") as log:
        result = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"search failed ({result.returncode}); see {run_dir}.log")
    records = list(iter_trials(Run(run_dir)))
    configurations = Counter(json.dumps(record.hyperparameters, sort_keys=True) for record in records
                             if record.status == "COMPLETED")
    return seconds, len(configurations), max(configurations.values(), default=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared", help="prepared dataset (made from the sample if missing)")
    parser.add_argument("--epochs", default="10", help="epochs per trial (the tutorial's 10)")
    args = parser.parse_args()
    subprocess.run([sys.executable, "data_prep.py", "--out", args.data, "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    print(f"work folder: {work}")
    extra = ["--epochs", args.epochs, "--patience", "0", "--prune", "none"]
    times = {}
    for workers in (1, 2):
        seconds, distinct, most = timed_search(args.data, work / f"workers{workers}", workers, extra)
        times[workers] = seconds
        print(f"--workers {workers}: {seconds:.1f} s, {distinct} configurations completed, each at most {most} time(s)",
              flush=True)
    print(f"speed-up 1 -> 2 workers = {times[1] / times[2]:.2f}x   (target >= 1.6)")


if __name__ == "__main__":
    main()
