"""Deployment benchmark: what size and speed measuring costs a search, what budgets buy, and LiteRT vs Keras prediction.

    python bench/deploy.py                 # 3 splits of the built-in sample: about 25 minutes on 2 cores
    python bench/deploy.py --splits 1      # a quicker look

For each split seed 1..N of the sample (`data_prep.py --seed N`), as whole processes:
  search   `search.py` with its defaults; every trial's footprint (RUN/history/trial_<id>.json)
           says how long measuring it took: the overhead is that time against the trials' training time;
  reports  `report.py --int8` (no budget), `report.py --max-params 50000`, and `report.py --max-latency-ms X`
           with X the run's 25th percentile of trial latencies (a fixed figure would be a different
           budget on every machine); each winner's size, latency, test accuracy and LiteRT checks are kept;
  predict  on the unconstrained winner, `predict.py` with --runtime keras, litert and litert-int8 on 1 image
           (start-up: the whole process) and on 2,000 test images written as PNG files (throughput:
           the extra images over the extra time), the median of 3 runs each; the labels must agree.
Each split's results are saved in bench-data/deploy/sample-seed<N>/results.json as soon as a step is
done, so a rerun continues where it stopped (delete the folder to measure again).
"""

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed  # noqa: E402
from datasets import ROOT, prepared  # noqa: E402

WORK = ROOT / "bench-data" / "deploy"
PARAMS_BUDGET = 50_000
LATENCY_QUANTILE = 0.25
PREDICT_IMAGES = 2000
RUNTIMES = ("keras", "litert", "litert-int8")


def search(data, folder):
    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)
    seconds, _ = timed([sys.executable, "search.py", "--data", str(data), "--run-dir", str(run), "--quiet"], folder / "search.log")
    histories = [json.loads(path.read_text()) for path in sorted((run / "history").glob("trial_*.json"))]
    footprints = [history["footprint"] for history in histories if "footprint" in history]
    measuring = sum(item["seconds"] for item in footprints)
    training = sum(history["seconds"] for history in histories)
    latencies = sorted(item["latency_ms"] for item in footprints)
    return {"seconds": seconds, "trials": len(histories), "measured": len(footprints), "measuring_seconds": measuring,
            "training_seconds": training, "overhead": measuring / training, "threads": footprints[0]["threads"],
            "latency_budget": round(float(np.quantile(latencies, LATENCY_QUANTILE)), 4)}


def report(folder, name, flags):
    run = folder / "run"
    seconds, _ = timed([sys.executable, "report.py", "--run-dir", str(run), *flags], folder / f"report-{name}.log")
    metadata = json.loads((run / "best" / "metadata.json").read_text())
    shutil.copytree(run / "best", folder / f"best-{name}", dirs_exist_ok=True)
    results = json.loads((run / "results.json").read_text())
    return {"seconds": seconds, "flags": flags, "trial": metadata["trial_id"], "hyperparameters": metadata["hyperparameters"],
            **{field: metadata["footprint"][field] for field in ("params", "weight_bytes", "latency_ms")},
            "test_accuracy": metadata["test"]["accuracy"], "interval": metadata["test"]["accuracy_interval"],
            "excluded": len(results["excluded"]), "exports": metadata["exports"]}


def predict(data, folder):
    import cv2

    images = folder / "predict-images"
    if not images.is_dir():
        arrays = np.load(data / "dataset.npz", allow_pickle=False)
        test = arrays["x_test"]
        staging = folder / "predict-images.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for index in range(PREDICT_IMAGES):
            cv2.imwrite(str(staging / f"{index:05d}.png"), test[index % len(test)])
        staging.rename(images)
    one = sorted(images.iterdir())[0]
    model = folder / "best-unconstrained"
    results, labels = {}, {}
    for runtime in RUNTIMES:
        command = [sys.executable, "predict.py", "--runtime", runtime, "--model", str(model)]
        start_up = statistics.median(timed([*command, str(one)], folder / "predict.log")[0] for _ in range(3))
        runs = [timed([*command, str(images)], folder / "predict.log") for _ in range(3)]
        whole = statistics.median(seconds for seconds, _ in runs)
        labels[runtime] = [line.split("\t")[1] for line in runs[0][1].splitlines()]
        results[runtime] = {"start_up_seconds": start_up, "seconds": whole,
                            "images_per_second": (PREDICT_IMAGES - 1) / (whole - start_up)}
    for runtime in RUNTIMES:
        results[runtime]["agreement_with_keras"] = float(np.mean([a == b for a, b in zip(labels[runtime], labels["keras"])]))
    return results


def run_split(seed):
    folder = WORK / f"sample-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    saved_path = folder / "results.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    data = prepared("sample", seed=seed)

    def step(name, work):
        if name not in saved:
            print(f"  seed {seed}: {name}...", flush=True)
            saved[name] = work()
            saved_path.write_text(json.dumps(saved, indent=2))
        return saved[name]

    budget = step("search", lambda: search(data, folder))["latency_budget"]
    for name, flags in (("unconstrained", ["--int8"]), ("max-params", ["--max-params", str(PARAMS_BUDGET)]),
                        ("max-latency", ["--max-latency-ms", str(budget)])):
        step(name, lambda: report(folder, name, flags))
    step("predict", lambda: predict(data, folder))
    return saved


def summarize(splits):
    overheads = [s["search"]["overhead"] for s in splits]
    print(f"\nsearch: measuring size and speed costs {statistics.mean(overheads):.1%} of the trials' training time "
          f"(per split: {', '.join(f'{value:.1%}' for value in overheads)}); "
          f"{splits[0]['search']['threads']} thread(s) per measurement")
    print("\n| winner | params | weight KiB | latency ms (TF, batch 1) | test accuracy (mean ± std) | per split |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("unconstrained", "max-params", "max-latency"):
        rows = [s[name] for s in splits]
        accuracy = [row["test_accuracy"] for row in rows]
        print(f"| {name} {' '.join(rows[0]['flags']) if name != 'max-latency' else '(25th percentile)'} | "
              f"{statistics.mean(row['params'] for row in rows):,.0f} | {statistics.mean(row['weight_bytes'] for row in rows) / 1024:,.0f} | "
              f"{statistics.mean(row['latency_ms'] for row in rows):.3f} | {statistics.mean(accuracy):.4f} ± "
              f"{statistics.stdev(accuracy) if len(accuracy) > 1 else 0:.4f} | "
              f"{', '.join(f'{value:.3f}' for value in accuracy)} |")
    print("\n| export (unconstrained winner) | KiB | agreement with Keras | accuracy | Keras accuracy | LiteRT latency ms (1 thread) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind in ("float", "int8"):
        checks = [s["unconstrained"]["exports"][kind] for s in splits]
        print(f"| {kind} | {statistics.mean(c['bytes'] for c in checks) / 1024:,.0f} | "
              f"{statistics.mean(c['agreement'] for c in checks):.4f} (min {min(c['agreement'] for c in checks):.4f}) | "
              f"{statistics.mean(c['accuracy'] for c in checks):.4f} | {statistics.mean(c['keras_accuracy'] for c in checks):.4f} | "
              f"{statistics.mean(c['latency_ms'] for c in checks):.3f} |")
    print(f"\n| predict.py --runtime | start-up s (1 image) | {PREDICT_IMAGES} images s | images/s | vs keras start-up | vs keras images/s | labels = keras |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for runtime in RUNTIMES:
        rows = [s["predict"][runtime] for s in splits]
        keras = [s["predict"]["keras"] for s in splits]
        start_up, whole = statistics.mean(r["start_up_seconds"] for r in rows), statistics.mean(r["seconds"] for r in rows)
        rate = statistics.mean(r["images_per_second"] for r in rows)
        print(f"| {runtime} | {start_up:.2f} | {whole:.2f} | {rate:,.0f} | "
              f"{start_up / statistics.mean(r['start_up_seconds'] for r in keras):.2f}x | "
              f"{rate / statistics.mean(r['images_per_second'] for r in keras):.2f}x | "
              f"{min(r['agreement_with_keras'] for r in rows):.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=3, help="split seeds 1..N of the sample (default 3)")
    args = parser.parse_args(argv)
    splits = []
    for seed in range(1, args.splits + 1):
        splits.append(run_split(seed))
    summarize(splits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
