"""Quality benchmark: the test accuracy and time of the tutorial's procedure and this tool's procedures, over several splits.

    python bench/report.py                                  # 5 splits of the sample, 3 of animals5, 3 of animals10
    python bench/report.py --datasets sample --splits 3 --procedures tutorial modern    # a quicker look

For each dataset (bench/datasets.py: the built-in sample, and 5 and all 10 Animal-MNIST classes) and
each split seed 1..N (`data_prep.py --seed N`: another train/validation/test split of the same
images), as whole processes, one after the other:
  (a) tutorial: the hand-written 27-model loop (bench/tutorial.py); the model with the lowest
      val_loss, as it stands after its 10 epochs, is scored on the test split;
  (b) defaults: `search.py --space tutorial && report.py` (the tutorial's grid, the tool's defaults
      otherwise); report.py's retrained winner (RUN/best/metadata.json) holds its test accuracy;
  (c) modern:   `search.py --space modern --tuner asha && report.py` (the recipe space, searched by
      asynchronous successive halving);
  and, only when asked for, bayesian: (c) with `--proposals bayesian` (KerasTuner's Gaussian process proposes
      asha's new configurations); augment: `search.py --space tutorial --augment on && report.py` (the tutorial's
      grid, every model trained with random flips, shifts and zoom).
Each step's result is saved in WORK/<dataset>-seed<N>/results.json as soon as it is done, so a
rerun of this script continues where it stopped (delete the folder to measure again).
It prints every split, then per dataset the mean and spread of each procedure's test accuracy, its
test-error cut against (a) (1 - errors/errors(a), errors = (1 - accuracy) * test images), its time as
a ratio to (a)'s loop in the same split, paired wins, and the targets the modern procedure is held to
(BENCHMARKS.md, "Better models"): (c) cuts (a)'s test errors by >= 40% on the mean of every dataset, (c)'s search + report take <= 0.5x (a)'s time, and (c)
beats (a) in >= 10 of 11 splits.
"""

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed  # noqa: E402
from datasets import DATASETS, ROOT, prepared  # noqa: E402
from tutorial import TUTORIAL_LOOP  # noqa: E402

# The tool's procedures: the flags search.py gets beside --data and --run-dir (report.py gets only --run-dir).
VARIANTS = {"defaults": ["--space", "tutorial"], "modern": ["--space", "modern", "--tuner", "asha"],
            "bayesian": ["--space", "modern", "--tuner", "asha", "--proposals", "bayesian"],
            "augment": ["--space", "tutorial", "--augment", "on"]}
PROCEDURES = ("tutorial", *VARIANTS)
DEFAULT_PROCEDURES = ["tutorial", "defaults", "modern"]
DEFAULT_SPLITS = {"sample": 5, "animals5": 3, "animals10": 3}
# The modern procedure's targets against the tutorial's loop: its errors cut by 40%, in half the loop's time, winning 10 of 11 splits.
TARGET_ERROR_CUT, TARGET_TIME_RATIO, TARGET_WINS = 0.40, 0.50, (10, 11)


def tutorial(data, folder):
    seconds, out = timed([sys.executable, "-c", TUTORIAL_LOOP, str(data), str(folder / "tutorial-logs"), "--score-test"],
                         folder / "tutorial.log")
    result = json.loads(out.strip().splitlines()[-1])
    return {"seconds": seconds, "test_accuracy": result["test_accuracy"], "pick": result["pick"]}


def tool(data, folder, name, flags):
    run = folder / name
    shutil.rmtree(run, ignore_errors=True)  # an interrupted attempt is timed again from the start
    search_seconds, _ = timed([sys.executable, "search.py", "--data", str(data), "--run-dir", str(run), "--quiet", *flags],
                              folder / f"{name}-search.log")
    report_seconds, _ = timed([sys.executable, "report.py", "--run-dir", str(run)], folder / f"{name}-report.log")
    metadata = json.loads((run / "best" / "metadata.json").read_text())
    test = metadata["test"]
    return {"seconds": search_seconds + report_seconds, "search_seconds": search_seconds, "report_seconds": report_seconds,
            "test_accuracy": test["accuracy"], "interval": test["accuracy_interval"], "images": test["images"],
            "pick": f"trial {metadata['trial_id']}: {metadata['hyperparameters']}", "epochs": metadata["epochs"],
            "mirror_average": metadata.get("mirror_average")}


def run_split(dataset, seed, work, procedures):
    """The results of every procedure on one split, measuring only those not saved yet."""
    folder = work / f"{dataset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    saved_path = folder / "results.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    data = prepared(dataset, seed=seed)
    for name in procedures:
        if name in saved:
            continue
        print(f"{dataset} split {seed}: {name}...", flush=True)
        saved[name] = tutorial(data, folder) if name == "tutorial" else tool(data, folder, name, VARIANTS[name])
        saved_path.write_text(json.dumps(saved, indent=2))
        print(f"    {saved[name]['test_accuracy']:.4f} in {saved[name]['seconds']:.0f} s ({saved[name]['pick']})", flush=True)
    return saved


def confirm_changed_the_winner(folder, name):
    """Whether report.py's confirm runs crowned another trial than the search's lowest val_loss (None: not known)."""
    try:
        ranking = json.loads((folder / name / "results.json").read_text())["ranking"]
        return ranking[0]["trial"] != min(ranking, key=lambda row: row["val_loss"])["trial"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def errors(result):
    """Test errors: (1 - accuracy) * test images (the tutorial's result has no image count; it shares the split's)."""
    return (1 - result["test_accuracy"]) * result["images"]


def mean_std(values):
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(dataset, splits, procedures, work):
    """Print one dataset's splits and summary; return its paired wins {(winner, loser): (wins, splits)}."""
    from tabulate import tabulate

    images = next((split[name]["images"] for split in splits.values() for name in procedures if name != "tutorial"), None)
    for split in splits.values():
        if "tutorial" in split and images:
            split["tutorial"].setdefault("images", images)
    versus = "tutorial" if "tutorial" in procedures else None
    others = [name for name in procedures if name != "tutorial"]

    print(f"\n== {dataset}: test accuracy per split (seconds)" + (f"; {images} test images" if images else ""))
    headers = ["split seed", *procedures]
    if versus:
        headers += [f"{name}: error cut, time ratio" for name in others]
    rows = []
    for seed, split in splits.items():
        row = [seed, *(f"{split[name]['test_accuracy']:.4f} ({split[name]['seconds']:.0f} s)" for name in procedures)]
        if versus:
            row += [f"{1 - errors(split[name]) / errors(split[versus]):+.0%}, {split[name]['seconds'] / split[versus]['seconds']:.2f}x"
                    for name in others]
        rows.append(row)
    print(tabulate(rows, headers=headers, disable_numparse=True))

    summary_rows = []
    for name in procedures:
        accuracy, spread = mean_std([split[name]["test_accuracy"] for split in splits.values()])
        seconds = statistics.mean(split[name]["seconds"] for split in splits.values())
        row = [name, f"{accuracy:.4f} ± {spread:.4f}", f"{seconds:.0f}"]
        if versus and name != versus:
            cut, cut_spread = mean_std([1 - errors(split[name]) / errors(split[versus]) for split in splits.values()])
            mean_cut = 1 - (1 - accuracy) / (1 - statistics.mean(split[versus]["test_accuracy"] for split in splits.values()))
            ratio, ratio_spread = mean_std([split[name]["seconds"] / split[versus]["seconds"] for split in splits.values()])
            row += [f"{mean_cut:+.0%}", f"{cut:+.0%} ± {cut_spread:.0%}", f"{ratio:.2f}x ± {ratio_spread:.2f}"]
        else:
            row += ["", "", ""]
        summary_rows.append(row)
    print(tabulate(summary_rows, headers=["procedure", "test accuracy (mean ± std)", "mean seconds",
                                          "error cut on the mean", "error cut per split (mean ± std)",
                                          "time ratio (mean ± std)"], disable_numparse=True))

    for name in others:
        changed = [confirm_changed_the_winner(work / f"{dataset}-seed{seed}", name) for seed in splits]
        if None not in changed:
            print(f"{name}: the confirm runs crowned another trial than the search's lowest val_loss in {sum(changed)} of "
                  f"{len(splits)} splits")

    wins = {}
    pairs = [(name, versus) for name in others if versus] + [("modern", "defaults")] * ("modern" in procedures and "defaults" in procedures)
    for winner, loser in pairs:
        paired = [split[winner]["test_accuracy"] - split[loser]["test_accuracy"] for split in splits.values()]
        # Counted in whole test errors: the loop's accuracy is Keras' float32, so an equal count can differ by 1e-8.
        fewer = [round(errors(split[loser])) - round(errors(split[winner])) for split in splits.values()]
        wins[(winner, loser)] = (sum(count > 0 for count in fewer), len(paired))
        print(f"{winner} - {loser}: wins {wins[(winner, loser)][0]} of {len(paired)} splits (per split: "
              f"{' '.join(f'{value:+.4f}' for value in paired)})")

    if versus and "modern" in procedures:
        base = statistics.mean(split[versus]["test_accuracy"] for split in splits.values())
        accuracy = statistics.mean(split["modern"]["test_accuracy"] for split in splits.values())
        cut = 1 - (1 - accuracy) / (1 - base)
        ratio = statistics.mean(split["modern"]["seconds"] / split[versus]["seconds"] for split in splits.values())
        needed = 1 - (1 - base) * (1 - TARGET_ERROR_CUT)
        print(f"target: modern cuts the tutorial's test errors by >= {TARGET_ERROR_CUT:.0%} on the mean "
              f"({base:.4f} -> {needed:.4f} or better): {cut:+.0%} ({accuracy:.4f}), "
              f"{'met' if cut >= TARGET_ERROR_CUT else 'NOT met'}")
        print(f"target: modern's search + report take <= {TARGET_TIME_RATIO:.2f}x the tutorial's loop: {ratio:.2f}x, "
              f"{'met' if ratio <= TARGET_TIME_RATIO else 'NOT met'}")
    return wins


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--splits", type=int, help="split seeds 1..N for every dataset (default: 5 for sample, 3 for animals5 and animals10)")
    parser.add_argument("--procedures", nargs="+", default=DEFAULT_PROCEDURES, choices=PROCEDURES,
                        help="tutorial first if it is measured (default: %(default)s)")
    parser.add_argument("--work", default=str(ROOT / "bench-data" / "report"), help="where runs and results are kept")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    print(f"work folder: {work}", flush=True)
    results = {}
    for dataset in args.datasets:
        count = args.splits or DEFAULT_SPLITS[dataset]
        results[dataset] = {seed: run_split(dataset, seed, work, args.procedures) for seed in range(1, count + 1)}
    wins = {}
    for dataset, splits in results.items():
        for pair, (won, count) in summarize(dataset, splits, args.procedures, work).items():
            wins[pair] = (wins.get(pair, (0, 0))[0] + won, wins.get(pair, (0, 0))[1] + count)
    if ("modern", "tutorial") in wins:
        won, count = wins[("modern", "tutorial")]
        needed, of = TARGET_WINS
        losses_allowed = count - -(-needed * count // of)  # the target's 10 of 11, pro rata: ceil(10/11 * splits) wins
        print(f"\ntarget: modern beats the tutorial in >= {needed} of {of} splits: {won} of {count} over "
              f"{', '.join(results)} ({'met' if count - won <= losses_allowed else 'NOT met'} pro rata: at most "
              f"{losses_allowed} loss(es) in {count}{'' if count >= of else '; fewer splits than the target counts'})")
    for (winner, loser), (won, count) in wins.items():
        if (winner, loser) != ("modern", "tutorial"):
            print(f"{winner} beats {loser} in {won} of {count} splits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
