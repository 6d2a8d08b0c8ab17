"""Benchmark the search against the tutorial's hand-written 27-run loop, on the prepared built-in sample.

    python bench/search.py            # about 15 minutes on a 2-core laptop CPU

In one run it times, as whole processes on the same prepared data:
  (a) the tutorial's loop: 27 configurations, 10 epochs each, plain model.fit on float
      arrays, one TensorBoard folder per model, no early stopping;
  (b) `search.py` on the same grid with early stopping off: b/a is the tool's overhead
      (target <= 1.10);
  (c) `search.py` with its defaults: c/a (target <= 0.5) and the best val_loss of each
      (target: within 0.01 of the tutorial's).
It also reports the search process's memory growth per trial over (b) (target <= 3 MB).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TUTORIAL_LOOP = r'''
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import keras
from keras.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

data = np.load(os.path.join(sys.argv[1], "dataset.npz"), allow_pickle=False)
# The tutorial keeps float copies of the images, scaled by 255 by hand.
x_train, y_train = data["x_train"] / 255.0, data["y_train"]
x_val, y_val = data["x_val"] / 255.0, data["y_val"]
best = float("inf")
for dense_layers in (0, 1, 2):
    for nodes in (32, 64, 128):
        for conv_layers in (1, 2, 3):
            name = f"{conv_layers}-conv-{nodes}-nodes-{dense_layers}-dense-{int(time.time())}"
            keras.utils.set_random_seed(1337)
            model = keras.Sequential([keras.Input(x_train.shape[1:])])
            model.add(Conv2D(nodes, (3, 3))); model.add(Activation("relu")); model.add(MaxPooling2D(pool_size=(2, 2)))
            for _ in range(conv_layers - 1):
                model.add(Conv2D(nodes, (3, 3))); model.add(Activation("relu")); model.add(MaxPooling2D(pool_size=(2, 2)))
            model.add(Flatten())
            for _ in range(dense_layers):
                model.add(Dense(nodes)); model.add(Activation("relu"))
            model.add(Dense(1)); model.add(Activation("sigmoid"))
            tensorboard = keras.callbacks.TensorBoard(log_dir=os.path.join(sys.argv[2], name))
            model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
            history = model.fit(x_train, y_train, batch_size=32, epochs=10, validation_data=(x_val, y_val),
                                callbacks=[tensorboard], verbose=0)
            best = min(best, min(history.history["val_loss"]))
            print(name, min(history.history["val_loss"]), flush=True)
print(json.dumps({"best_val_loss": best}))
'''


def timed(command, log_path):
    started = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"benchmark step failed ({completed.returncode}): {' '.join(command)}; see {log_path}")
    return seconds, completed.stdout


def best_of_run(stdout):
    match = re.search(r"val_loss ([0-9.]+)", stdout)
    return float(match.group(1)) if match else float("nan")


def memory_per_trial(log_path):
    """Growth of the search process's resident memory per trial, from its --debug lines."""
    rss = [float(value) for value in re.findall(r"rss ([0-9.]+) MB", Path(log_path).read_text())]
    if len(rss) < 4:
        return float("nan"), rss
    # The first trials warm up TensorFlow's caches; the slope over the rest is the leak.
    tail = rss[2:]
    return (tail[-1] - tail[0]) / (len(tail) - 1), rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared", help="prepared dataset (made from the sample if missing)")
    parser.add_argument("--skip-tutorial", action="store_true", help="reuse nothing; only time (b) and (c)")
    args = parser.parse_args()
    subprocess.run([sys.executable, "data_prep.py", "--out", args.data, "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    print(f"work folder: {work}")

    tutorial_seconds, tutorial_best = float("nan"), float("nan")
    if not args.skip_tutorial:
        tutorial_seconds, out = timed([sys.executable, "-c", TUTORIAL_LOOP, args.data, str(work / "tutorial-logs")],
                                      work / "a.log")
        (work / "a.out").write_text(out)  # each configuration's best val_loss, for a closer look
        tutorial_best = json.loads(out.strip().splitlines()[-1])["best_val_loss"]
        print(f"(a) tutorial loop: {tutorial_seconds:.1f} s, best val_loss {tutorial_best:.4f}", flush=True)

    search = [sys.executable, "search.py", "--data", args.data, "--overwrite"]
    overhead_seconds, out = timed(search + ["--run-dir", str(work / "b"), "--patience", "0", "--debug"], work / "b.log")
    growth, rss = memory_per_trial(work / "b.log")
    print(f"(b) search.py, no early stopping: {overhead_seconds:.1f} s, best val_loss {best_of_run(out):.4f}", flush=True)
    print(f"    memory: {growth:+.2f} MB per trial (rss after each trial: {' '.join(f'{v:.0f}' for v in rss)})")
    default_seconds, out = timed(search + ["--run-dir", str(work / "c")], work / "c.log")
    default_best = best_of_run(out)
    print(f"(c) search.py defaults: {default_seconds:.1f} s, best val_loss {default_best:.4f}", flush=True)

    print()
    print(f"overhead b/a = {overhead_seconds / tutorial_seconds:.2f}   (target <= 1.10)")
    print(f"defaults c/a = {default_seconds / tutorial_seconds:.2f}   (target <= 0.50)")
    print(f"best val_loss c - a = {default_best - tutorial_best:+.4f}   (target <= +0.01)")
    print(f"memory growth = {growth:.2f} MB/trial   (target <= 3)")


if __name__ == "__main__":
    main()
