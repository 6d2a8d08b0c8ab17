"""Time `python data_prep.py` against the original tutorial's loader on a generated PetImages-like folder.

    python bench/data_prep.py                  # 2,000 JPEGs of 250-500 px plus a few broken files, 5 rounds

Both run as whole processes on the same folder, page cache warm. Prints each one's wall and CPU
time (medians over runs during which nothing else used the CPU), the ratio, and peak memory: the
largest single process's RSS, and the whole process tree's proportional set size (PSS: every page
shared between processes split between them) and its anonymous part (the memory the loader itself
allocated, which no other program can share), sampled in separate runs so sampling slows no timed run.
"""

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIME = os.path.exists("/usr/bin/time")  # GNU time, for a clean peak RSS and CPU time of each run

# The loader from the tutorial this project replaces (sentdex, "Loading in your own data"), minus its
# tqdm progress bar and matplotlib preview: one process, cv2.imread + cv2.resize, broken files
# swallowed by try/except, the result pickled.
TUTORIAL = """
import os, pickle, random, sys
import cv2
import numpy as np

DATADIR, OUT = sys.argv[1], sys.argv[2]
CATEGORIES = ["Dog", "Cat"]
IMG_SIZE = 50
training_data = []
for category in CATEGORIES:
    path = os.path.join(DATADIR, category)
    class_num = CATEGORIES.index(category)
    for img in os.listdir(path):
        try:
            img_array = cv2.imread(os.path.join(path, img), cv2.IMREAD_GRAYSCALE)
            new_array = cv2.resize(img_array, (IMG_SIZE, IMG_SIZE))
            training_data.append([new_array, class_num])
        except Exception as e:
            pass
random.shuffle(training_data)
X = []
y = []
for features, label in training_data:
    X.append(features)
    y.append(label)
X = np.array(X).reshape(-1, IMG_SIZE, IMG_SIZE, 1)
with open(os.path.join(OUT, "X.pickle"), "wb") as pickle_out:
    pickle.dump(X, pickle_out)
with open(os.path.join(OUT, "y.pickle"), "wb") as pickle_out:
    pickle.dump(y, pickle_out)
"""


def make_folder(root, count, seed=0):
    """Cat/ and Dog/ with `count` photo-like colour JPEGs (250-500 px a side, ~33 KB each) and PetImages' kinds of junk."""
    rng = np.random.default_rng(seed)
    for name in ("Cat", "Dog"):
        (root / name).mkdir(parents=True)
    total_bytes = 0
    for index in range(count):
        height, width = (int(side) for side in rng.integers(250, 501, 2))
        # Smooth colour fields plus fine grain: compresses like a photo, unlike pure noise.
        base = cv2.resize(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
        grain = cv2.resize(rng.integers(-10, 11, (height // 2, width // 2)).astype(np.float32), (width, height))
        image = np.clip(base + grain[..., None], 0, 255).astype(np.uint8)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (root / ("Cat", "Dog")[index % 2] / f"{index // 2}.jpg").write_bytes(encoded.tobytes())
        total_bytes += encoded.size
    (root / "Cat" / "666.jpg").write_bytes(b"")  # PetImages' zero-byte files
    (root / "Dog" / "11702.jpg").write_bytes(b"")
    (root / "Cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))
    whole = (root / "Dog" / "0.jpg").read_bytes()
    (root / "Dog" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    ok, encoded = cv2.imencode(".png", image)
    (root / "Cat" / "really a png.jpg").write_bytes(encoded.tobytes())
    (root / "Dog" / "notes.txt").write_text("not an image\n")
    return total_bytes / count


def _tree(pid):
    """pid and all its descendants, from /proc (children files need Linux 3.5+)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except OSError:
            pass
    return found


def _memory_kib(pid):
    """(PSS, anonymous PSS) of one process: its share of every page, and of the pages it allocated itself."""
    values = {"Pss:": 0, "Pss_Anon:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                key = line.split(maxsplit=1)[0]
                if key in values:
                    values[key] = int(line.split()[1])
    except OSError:
        pass
    return values["Pss:"], values["Pss_Anon:"]


def _busy_seconds():
    """CPU seconds all processes on the machine have used since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in handle.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(command, sample_memory=False):
    """Run a command to completion and measure it.

    Returns a dict: wall and CPU seconds, `others` (CPU seconds other processes used meanwhile, so a
    busy machine shows), peak RSS of the largest process (from GNU time: Linux carries a process's
    peak RSS across fork and exec, so wait4 here would report this bigger process instead) and,
    with sample_memory, the peak PSS and anonymous PSS summed over the process tree.
    """
    peak = {"pss": 0, "anon": 0}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        wrapped = ["/usr/bin/time", "-f", "%M %U %S", "-o", report.name, *command] if TIME else command
        busy = _busy_seconds()
        started = time.perf_counter()
        process = subprocess.Popen(wrapped, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = threading.Event()

        def sample():
            while not done.is_set():  # the tree below GNU time: the loader and its workers
                sizes = [_memory_kib(pid) for pid in _tree(process.pid)[1 if TIME else 0:]]
                peak["pss"] = max(peak["pss"], sum(size[0] for size in sizes))
                peak["anon"] = max(peak["anon"], sum(size[1] for size in sizes))
                done.wait(0.005)

        sampler = threading.Thread(target=sample, daemon=True) if sample_memory else None
        if sampler:
            sampler.start()
        code = process.wait()
        wall = time.perf_counter() - started
        busy = _busy_seconds() - busy
        done.set()
        if sampler:
            sampler.join()
        if code != 0:
            raise SystemExit(f"{' '.join(command[:3])} ... failed with exit code {code}")
        max_rss_kib, user, system = (float(value) for value in report.read().split()[-3:]) if TIME else (0, 0, 0)
    return {"wall": wall, "cpu": user + system, "others": max(0.0, busy - user - system), "rss": max_rss_kib / 1024,
            "pss": peak["pss"] / 1024, "anon": peak["anon"] / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEGs to generate")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each loader on a quiet machine (median reported)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_data_prep_") as temp:
        temp = Path(temp)
        mean_size = make_folder(temp / "PetImages", args.images)
        (temp / "tutorial").mkdir()
        commands = {
            "tutorial loader": [sys.executable, "-c", TUTORIAL, str(temp / "PetImages"), str(temp / "tutorial")],
            "data_prep.py": [sys.executable, "data_prep.py", "--data-dir", str(temp / "PetImages"),
                             "--out", str(temp / "prepared"), "--force", "--quiet"],
        }
        for command in commands.values():  # warm-up: page cache, .pyc files
            run(command)
        # Alternate the two and keep only runs during which other processes used (almost) no CPU:
        # data_prep.py needs both cores, so a neighbour's work would count against it alone.
        clean = {name: [] for name in commands}
        attempts = 0
        while min(map(len, clean.values())) < args.rounds and attempts < 6 * args.rounds:
            attempts += 1
            for name, command in commands.items():
                result = run(command)
                if result["others"] <= 0.05 * result["wall"] + 0.02:  # kernel threads and the like
                    clean[name].append(result)
        memory = {name: [run(command, sample_memory=True) for _ in range(3)] for name, command in commands.items()}
        with open(temp / "tutorial" / "X.pickle", "rb") as stream:
            tutorial_images = len(pickle.load(stream))
        with np.load(temp / "prepared" / "dataset.npz", allow_pickle=False) as archive:
            ours_images = sum(len(archive[f"y_{split}"]) for split in ("train", "val", "test"))

    def median(name, key, runs):
        return statistics.median(result[key] for result in runs[name]) if runs[name] else float("nan")

    print(f"{args.images:,} JPEGs of 250-500 px (mean {mean_size / 1024:.0f} KiB) + 6 broken or non-image files; "
          f"{os.cpu_count()} CPUs; medians of {min(map(len, clean.values()))}+ quiet runs out of {attempts} rounds")
    print(f"{'loader':<16} {'wall s':>7} {'CPU s':>6} {'peak RSS MiB':>13} {'peak PSS MiB':>13} {'peak anon MiB':>14} {'images':>7}")
    for name, count in (("tutorial loader", tutorial_images), ("data_prep.py", ours_images)):
        print(f"{name:<16} {median(name, 'wall', clean):>7.3f} {median(name, 'cpu', clean):>6.2f} "
              f"{max(result['rss'] for result in memory[name]):>13.1f} {median(name, 'pss', memory):>13.1f} "
              f"{median(name, 'anon', memory):>14.1f} {count:>7,}")
    ratio = median("tutorial loader", "wall", clean) / median("data_prep.py", "wall", clean)
    print(f"data_prep.py is {ratio:.2f}x as fast as the tutorial's loader (target: 2.5x)")
    print("peak RSS: the largest single process; PSS and anon: summed over the process tree (each shared page "
          "split between its users), sampled every 5 ms in separate runs")
    if min(map(len, clean.values())) < args.rounds:
        print("warning: the machine was busy; too few quiet runs, rerun when it is idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
