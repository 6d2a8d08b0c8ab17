"""The benchmarks' prepared datasets: the built-in sample, and 5-class and 10-class folders built from Animal-MNIST.

    python bench/datasets.py          # prepare all three under bench-data/ (a few seconds)
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Animal-MNIST's labels are alphabetical (its README lists the 10 classes), 1,000 silhouettes each.
ALL_CLASSES = {0: "Bear", 1: "Bird", 2: "Cat", 3: "Cow", 4: "Dog", 5: "Elephant", 6: "Giraffe", 7: "Horse", 8: "Sheep",
               9: "Zebra"}
# Five of its other classes than the sample's Cat and Dog: a second image set of its own kind, with more
# classes and 2.5x the images of the Cat/Dog sample.
FIVE_CLASSES = {label: ALL_CLASSES[label] for label in (0, 1, 3, 5, 6)}
# The folders built from Animal-MNIST (name -> the classes written), beside the built-in sample.
FOLDERS = {"animals5": FIVE_CLASSES, "animals10": ALL_CLASSES}
DATASETS = ("sample", *FOLDERS)


def write_class_folder(dest: Path, classes: dict) -> Path:
    """Write one folder of 1,000 PNGs per Animal-MNIST class in `classes` (label -> name); skipped if already there."""
    import cv2

    from tuner.data.sample import load_animal_mnist

    if all(len(list((dest / name).glob("*.png"))) == 1000 for name in classes.values()):
        return dest
    images, labels = load_animal_mnist()
    for label, name in classes.items():
        (dest / name).mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(images[labels == label]):
            ok, encoded = cv2.imencode(".png", image)
            if not ok:
                raise RuntimeError(f"could not encode {name} #{index}")
            (dest / name / f"{name.lower()}_{index:04d}.png").write_bytes(encoded.tobytes())
    return dest


def write_five_class_folder(dest: Path) -> Path:
    """Write Bear/, Bird/, Cow/, Elephant/ and Giraffe/ with 1,000 PNGs each (skipped if already there)."""
    return write_class_folder(dest, FIVE_CLASSES)


def prepared(name: str, root: Path = ROOT / "bench-data", seed: int = 1337) -> Path:
    """The prepared dataset `name` (one of DATASETS) for a split seed, made with data_prep.py if missing."""
    out = root / f"{name}-seed{seed}"
    argv = [sys.executable, "data_prep.py", "--out", str(out), "--seed", str(seed), "--quiet"]
    if name in FOLDERS:
        # 28x28, their native size, as the sample is prepared.
        argv += ["--data-dir", str(write_class_folder(root / f"{name}-images", FOLDERS[name])), "--img-size", "28"]
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


if __name__ == "__main__":
    for dataset in DATASETS:
        print(prepared(dataset))
