"""Benchmark the winner report.py retrains against the tutorial's procedure, on the same test split of the built-in sample.

    python bench/report.py              # runs both 27-trial searches first: about 10 minutes on a 2-core CPU
    python bench/report.py --ours runs/grid --tutorial runs/grid-patience0 --seeds 5

Both procedures choose among the tutorial's 27 configurations (search.py's default grid) on
data/prepared (prepared from the built-in sample if missing), and each choice is scored once on
the test split, which neither search reads:
  tutorial:  every configuration trained for 10 epochs without early stopping (`search.py
             --patience 0`, or the run given with --tutorial); the trial with the lowest val_loss
             is picked, and that configuration's model after all 10 epochs on the train split is
             scored, since the tutorial saves the model it has just fitted. The model is trained
             again with the trial's seed, and the script checks that this reproduces the trial;
  this tool: `search.py` with its defaults (or the run given with --ours), then what report.py
             does (tuner.report.retrain_best): the winner rebuilt and trained on train+validation
             for the epoch count of its best val_loss. The --no-retrain variant (the trial's own
             best-epoch weights) is shown as well.
Prints both test accuracies side by side and whether the target of issue 5 is met: this tool's
test accuracy at least the tutorial's. One split of about 300 images has a standard error near
0.01, so --seeds N also trains the tool's chosen configuration under seeds 1..N all three ways.
Like report.py, it leaves the --ours run's winner in RUN/best.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_search(data, run_dir, extra_flags, log_path):
    """Run search.py as its own process, as a user would; returns its wall time in seconds."""
    command = [sys.executable, "search.py", "--data", str(data), "--run-dir", str(run_dir), "--quiet", *extra_flags]
    print(f"running: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        sys.exit(f"search failed (exit {completed.returncode}): {' '.join(command)}; see {log_path}")
    return time.perf_counter() - started


def train_on_train_split(search, dataset, hyperparameters, seed):
    """Build one configuration and fit it on the train split for search.epochs epochs, as a trial of a
    --patience 0 search does; returns the model after the last epoch, its val_loss per epoch, and the
    weights of the epoch with the lowest val_loss."""
    import keras

    from tuner.hypermodel import build_hypermodel, build_model
    from tuner.pipeline import search_pipelines

    keras.utils.set_random_seed(seed)
    model = build_model(build_hypermodel(search, dataset), hyperparameters)
    train, validation = search_pipelines(dataset, search.batch_size, seed)
    best = {"val_loss": float("inf"), "weights": None}

    def keep_best(epoch, logs):
        if logs["val_loss"] < best["val_loss"]:
            best.update(val_loss=logs["val_loss"], weights=model.get_weights())

    history = model.fit(train, validation_data=validation, epochs=search.epochs, verbose=0, shuffle=False,
                        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=keep_best)])
    return model, history.history["val_loss"], best["weights"]


def describe(row):
    from tuner.trials import hyperparameters_of

    values = " ".join(f"{name}={value}" for name, value in hyperparameters_of(row).items() if value is not None)
    return f"trial {row['trial']}: {values}"


def seed_study(record, pick, dataset, seeds, work):
    """The tool's chosen configuration under seeds 1..seeds: tutorial-style, best-epoch weights, retrained."""
    import dataclasses

    from tuner.rundir import Run
    from tuner.trials import hyperparameters_of
    from tuner.winner import evaluate_on_test, retrain_best

    search = record.search
    values = {name: value for name, value in hyperparameters_of(pick).items() if value is not None}
    rows = []
    for seed in range(1, seeds + 1):
        model, val_losses, best_weights = train_on_train_split(search, dataset, values, seed)
        tutorial = evaluate_on_test(model, dataset)["accuracy"]
        best_epoch = val_losses.index(min(val_losses)) + 1
        model.set_weights(best_weights)
        best_weights_accuracy = evaluate_on_test(model, dataset)["accuracy"]
        # retrain_best seeds with the run's settings and saves into the run directory it is given, so each seed
        # gets settings with that seed and a scratch directory, and the run's own RUN/best stays the main result.
        scratch = Run(work / f"seed-{seed}")
        scratch.root.mkdir(parents=True, exist_ok=True)
        seeded = dataclasses.replace(record, search=dataclasses.replace(record.search, seed=seed))
        retrained = retrain_best(scratch, seeded, {**pick, "best_epoch": best_epoch}).test_accuracy
        rows.append([seed, best_epoch, tutorial, best_weights_accuracy, retrained])
        print(f"seed {seed}: best epoch {best_epoch}, tutorial {tutorial:.4f}, best-epoch weights "
              f"{best_weights_accuracy:.4f}, retrained {retrained:.4f}", file=sys.stderr, flush=True)
    means = [sum(row[column] for row in rows) / len(rows) for column in (2, 3, 4)]
    return [[*row[:2], *(f"{value:.4f}" for value in row[2:])] for row in rows] + [["mean", "", *(f"{mean:.4f}" for mean in means)]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "prepared"),
                        help="prepared dataset the searches run on (prepared from the built-in sample if missing)")
    parser.add_argument("--ours", help="a finished run of search.py with its defaults (default: search now)")
    parser.add_argument("--tutorial", help="a finished run of search.py --patience 0 (default: search now)")
    parser.add_argument("--seeds", type=int, default=0, help="also compare the tool's pick under seeds 1..N")
    parser.add_argument("--work", help="folder for the searches' runs and logs (default: a new temporary folder)")
    args = parser.parse_args(argv)

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-report-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}")
    data = Path(args.data).resolve()
    times = {}
    if not (args.ours and args.tutorial) and not (data / "manifest.json").is_file():
        subprocess.run([sys.executable, "data_prep.py", "--out", str(data), "--quiet"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    ours_dir, tutorial_dir = args.ours, args.tutorial
    if ours_dir is None:
        ours_dir = work / "ours"
        times["search.py (defaults)"] = run_search(data, ours_dir, [], work / "ours.log")
    if tutorial_dir is None:
        tutorial_dir = work / "tutorial"
        times["search.py --patience 0"] = run_search(data, tutorial_dir, ["--patience", "0"], work / "tutorial.log")

    import numpy as np
    from tabulate import tabulate

    from tuner.report import rank_trials
    from tuner.rundir import open_run
    from tuner.trials import hyperparameters_of
    from tuner.winner import evaluate_on_test, load_run_dataset, retrain_best

    tutorial_paths, tutorial_settings = open_run(tutorial_dir)
    tutorial_search = tutorial_settings.search
    if tutorial_search.patience != 0:
        sys.exit(f"--tutorial run '{tutorial_dir}' stopped trials early (--patience {tutorial_search.patience}); "
                 f"the tutorial's procedure needs a run of search.py --patience 0.")
    ours_paths, ours_settings = open_run(ours_dir)
    tutorial_data, ours_data = load_run_dataset(tutorial_settings), load_run_dataset(ours_settings)
    if not (np.array_equal(tutorial_data.x_test, ours_data.x_test) and np.array_equal(tutorial_data.y_test, ours_data.y_test)):
        sys.exit("the two runs were searched on datasets with different test splits; search both on the same prepared data.")

    tutorial_pick = rank_trials(tutorial_paths)[0][0]
    values = {name: value for name, value in hyperparameters_of(tutorial_pick).items() if value is not None}
    model, val_losses, _ = train_on_train_split(tutorial_search, tutorial_data, values,
                                                tutorial_search.seed + int(tutorial_pick["trial"]))
    tutorial_test = evaluate_on_test(model, tutorial_data)
    reproduced = abs(min(val_losses) - tutorial_pick["val_loss"]) <= 1e-6

    ours_pick = rank_trials(ours_paths)[0][0]
    kept = retrain_best(ours_paths, ours_settings, ours_pick, retrain=False)
    # Retrained last, so that RUN/best ends up as report.py leaves it.
    retrained = retrain_best(ours_paths, ours_settings, ours_pick)

    images = tutorial_test["images"]
    print()
    print(f"test split: {images} images; tutorial run {tutorial_dir}, this tool's run {ours_dir}")
    print(f"tutorial's pick trained again with its trial's seed: lowest val_loss {min(val_losses):.6f}, the search "
          f"recorded {tutorial_pick['val_loss']:.6f} ({'reproduced' if reproduced else 'NOT reproduced'})")
    for name, seconds in times.items():
        print(f"{name}: {seconds / 60:.1f} min")
    print()
    print(tabulate([
        ["tutorial: lowest val_loss, its model after all 10 epochs", describe(tutorial_pick),
         f"{tutorial_test['accuracy']:.4f}", f"{tutorial_test['loss']:.4f}"],
        [f"this tool: retrained on train+validation for {retrained.epochs} epoch(s)", describe(ours_pick),
         f"{retrained.test_accuracy:.4f}", f"{retrained.test_loss:.4f}"],
        ["this tool, --no-retrain: the trial's best-epoch weights", describe(ours_pick),
         f"{kept.test_accuracy:.4f}", f"{kept.test_loss:.4f}"],
    ], headers=["procedure", "picked", "test accuracy", "test loss"], disable_numparse=True))
    difference = retrained.test_accuracy - tutorial_test["accuracy"]
    met = retrained.test_accuracy >= tutorial_test["accuracy"]
    print(f"\ntarget (retrained winner's test accuracy >= the tutorial's): {'met' if met else 'NOT met'}, "
          f"{retrained.test_accuracy:.4f} vs {tutorial_test['accuracy']:.4f} "
          f"({difference:+.4f}, {round(difference * images):+d} of {images} images)")

    if args.seeds > 0:
        print(f"\nthis tool's pick ({describe(ours_pick)}) under seeds 1..{args.seeds}:", flush=True)
        rows = seed_study(ours_settings, ours_pick, ours_data, args.seeds, work)
        print(tabulate(rows, headers=["seed", "best epoch", "tutorial (10 epochs, train only)",
                                      "best-epoch weights (train only)", "retrained (train+val, best epoch count)"],
                       disable_numparse=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
