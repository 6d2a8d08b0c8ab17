"""Quality benchmark: test errors and time of the tutorial's loop, this tool's procedures, its control and its peers.

    python bench/report.py                                  # 5 splits of the sample, 3 of animals5, 3 of animals10
    python bench/report.py --datasets sample --splits 3 --procedures tutorial modern baseline   # a quicker look
    pip install -r bench/requirements.txt                   # for the peers: autokeras, kt-hyperband, kt-bayesian, optuna

For each dataset (bench/datasets.py: the built-in sample, and 5 and all 10 Animal-MNIST classes) and
each split seed 1..N (`data_prep.py --seed N`: another train/validation/test split of the same
images), as whole processes, one after the other:
  (a) tutorial: the hand-written 27-model loop (bench/tutorial.py), once per training seed (TUTORIAL_SEEDS);
      the model with the lowest val_loss, as it stands after its 10 epochs, is scored on the test split; the
      mean over the seeds is (a)'s result;
  (b) baseline: the modern space's baseline alone (`search.py --max-trials 1`: successive halving proposes it
      first), confirmed, retrained and scored exactly as a winner is: the control the search must beat;
  (c) modern: `python search.py && python report.py` with nothing but the paths: the defaults;
  (d)-(f) the peers (bench/peers.py), each given (c)'s time on the same split: autokeras (AutoKeras' AutoModel
      with an image block), kt-hyperband and kt-bayesian (KerasTuner's own tuners over this tool's HyperModel, as
      a KerasTuner user writes them), optuna (TPE with a pruner over the same space);
  and, only when asked for, defaults: `search.py --space tutorial && report.py` (the tutorial's grid, the tool's
      defaults otherwise); bayesian and neighbours: (c) with `--proposals bayesian` or `neighbours`; augment: the
      tutorial's grid with `--augment on`.
Each step's result is saved in WORK/<dataset>-seed<N>/results.json as soon as it is done, so a
rerun of this script continues where it stopped (delete the folder to measure again).
It prints every split, then per dataset each procedure's mean and spread of test errors
((1 - accuracy) * test images) and accuracy, its cut of the mean test errors against (a) and against (b),
its time as a ratio to (a)'s loop in the same split, paired wins, and the targets the defaults are held to
(BENCHMARKS.md, "A search worth running"): (c) cuts (a)'s test errors by >= TARGET_ERROR_CUT on the mean of every
dataset, (c)'s search + report take <= 0.5x (a)'s time, and (c) beats (a) in >= 10 of 11 splits.
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
            # (c) proposing neighbours of the best so far instead of random draws.
            "neighbours": ["--space", "modern", "--tuner", "asha", "--proposals", "neighbours"],
            "augment": ["--space", "tutorial", "--augment", "on"],
            # The control the search must beat: the modern space's baseline alone (asha proposes it first), confirmed,
            # retrained and scored exactly as a winner is.
            "baseline": ["--space", "modern", "--tuner", "asha", "--max-trials", "1"]}
# The tools a user would pick instead (bench/peers.py, its packages in bench/requirements.txt), each given the time the
# defaults ("modern") took on the same split.
PEERS = ("autokeras", "kt-hyperband", "kt-bayesian", "optuna")
PROCEDURES = ("tutorial", *VARIANTS, *PEERS)
DEFAULT_PROCEDURES = ["tutorial", "baseline", "modern", *PEERS]
DEFAULT_SPLITS = {"sample": 5, "animals5": 3, "animals10": 3}
# The loop's training seeds: one run of it moves its pick's test errors by half, so (a) is the mean of two.
TUTORIAL_SEEDS = (1337, 1)
# The defaults' targets against the tutorial's loop: its mean errors cut by 60%, in half the loop's time, winning 10 of 11 splits.
TARGET_ERROR_CUT, TARGET_TIME_RATIO, TARGET_WINS = 0.60, 0.50, (10, 11)


def tutorial(data, folder, seeds=TUTORIAL_SEEDS):
    """The loop once per training seed: its mean test accuracy and mean time, and each run's."""
    runs = []
    for seed in seeds:
        seconds, out = timed([sys.executable, "-c", TUTORIAL_LOOP, str(data), str(folder / f"tutorial-logs-{seed}"),
                              "--score-test", f"--seed={seed}"], folder / f"tutorial-{seed}.log")
        result = json.loads(out.strip().splitlines()[-1])
        runs.append({"seed": seed, "seconds": seconds, "test_accuracy": result["test_accuracy"], "pick": result["pick"]})
    return {"seconds": statistics.mean(run["seconds"] for run in runs),
            "test_accuracy": statistics.mean(run["test_accuracy"] for run in runs),
            "pick": "; ".join(f"seed {run['seed']}: {run['pick']} ({run['test_accuracy']:.4f})" for run in runs),
            "runs": runs}


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


def peer(data, folder, name, seconds):
    """A peer tool (bench/peers.py) on one split, given about `seconds` in all: the defaults' time on the same split."""
    work = folder / name
    shutil.rmtree(work, ignore_errors=True)
    took, out = timed([sys.executable, str(Path(__file__).with_name("peers.py")), name, str(data), str(work),
                       "--seconds", f"{seconds:.0f}"], folder / f"{name}.log")
    result = json.loads(out.strip().splitlines()[-1])
    return {"seconds": took, "test_accuracy": result["test_accuracy"], "images": result["images"],
            "pick": result["pick"], "trials": result.get("trials")}


def run_split(dataset, seed, work, procedures):
    """The results of every procedure on one split, measuring only those not saved yet."""
    folder = work / f"{dataset}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    saved_path = folder / "results.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    data = prepared(dataset, seed=seed)
    for name in procedures:
        if name in saved and (name != "tutorial" or "runs" in saved[name]):  # a loop of one seed is measured again
            continue
        print(f"{dataset} split {seed}: {name}...", flush=True)
        if name == "tutorial":
            saved[name] = tutorial(data, folder)
        elif name in PEERS:  # at the defaults' time on this split, so the defaults are measured first
            saved[name] = peer(data, folder, name, saved["modern"]["seconds"])
        else:
            saved[name] = tool(data, folder, name, VARIANTS[name])
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
    control = "baseline" if "baseline" in procedures else None
    for name in procedures:
        counted, count_spread = mean_std([errors(split[name]) for split in splits.values()])
        accuracy, spread = mean_std([split[name]["test_accuracy"] for split in splits.values()])
        seconds = statistics.mean(split[name]["seconds"] for split in splits.values())
        row = [name, f"{counted:.1f} ± {count_spread:.1f}", f"{accuracy:.4f} ± {spread:.4f}", f"{seconds:.0f}"]
        for against in (versus, control):
            cut = 1 - counted / statistics.mean(errors(split[against]) for split in splits.values()) if against else None
            row.append(f"{cut:+.0%}" if against and name != against else "")
        if versus and name != versus:
            ratio, ratio_spread = mean_std([split[name]["seconds"] / split[versus]["seconds"] for split in splits.values()])
            row.append(f"{ratio:.2f}x ± {ratio_spread:.2f}")
        else:
            row.append("")
        summary_rows.append(row)
    print(tabulate(summary_rows, headers=["procedure", "test errors (mean ± std)", "test accuracy (mean ± std)",
                                          "mean seconds", "error cut vs tutorial", "error cut vs baseline",
                                          "time / tutorial (mean ± std)"], disable_numparse=True))

    for name in others:
        changed = [confirm_changed_the_winner(work / f"{dataset}-seed{seed}", name) for seed in splits]
        if None not in changed:
            print(f"{name}: the confirm runs crowned another trial than the search's lowest val_loss in {sum(changed)} of "
                  f"{len(splits)} splits")

    wins = {}
    pairs = [(name, versus) for name in others if versus] + [("modern", "defaults")] * ("modern" in procedures and "defaults" in procedures)
    pairs += [(name, control) for name in others if control and name != control]
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
                        help="run in this order, but the tutorial first and the peers last (default: %(default)s)")
    parser.add_argument("--work", default=str(ROOT / "bench-data" / "report"), help="where runs and results are kept")
    args = parser.parse_args(argv)
    if set(args.procedures) & set(PEERS) and "modern" not in args.procedures:
        parser.error("the peers are given the defaults' time: add modern to --procedures")
    # The tutorial's loop first (every ratio is to it), the peers last (they need modern's time).
    args.procedures.sort(key=lambda name: (name != "tutorial", name in PEERS))
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
