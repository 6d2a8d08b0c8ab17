"""The benchmarks' two prepared datasets: the built-in sample, and a 5-class folder built from Animal-MNIST.

    python bench/datasets.py          # prepare both under bench-data/ (a few seconds)
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Five of Animal-MNIST's other classes (labels are alphabetical), 1,000 silhouettes each: a second image
# set of its own kind, with more classes and 2.5x the images of the Cat/Dog sample.
FIVE_CLASSES = {0: "Bear", 1: "Bird", 3: "Cow", 5: "Elephant", 6: "Giraffe"}
DATASETS = ("sample", "animals5")


def write_five_class_folder(dest: Path) -> Path:
    """Write Bear/, Bird/, Cow/, Elephant/ and Giraffe/ with 1,000 PNGs each (skipped if already there)."""
    import cv2

    from tuner.sample import load_animal_mnist

    if all(len(list((dest / name).glob("*.png"))) == 1000 for name in FIVE_CLASSES.values()):
        return dest
    images, labels = load_animal_mnist()
    for label, name in FIVE_CLASSES.items():
        (dest / name).mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(images[labels == label]):
            ok, encoded = cv2.imencode(".png", image)
            if not ok:
                raise RuntimeError(f"could not encode {name} #{index}")
            (dest / name / f"{name.lower()}_{index:04d}.png").write_bytes(encoded.tobytes())
    return dest


def prepared(name: str, root: Path = ROOT / "bench-data", seed: int = 1337) -> Path:
    """The prepared dataset `name` (one of DATASETS) for a split seed, made with data_prep.py if missing."""
    out = root / f"{name}-seed{seed}"
    argv = [sys.executable, "data_prep.py", "--out", str(out), "--seed", str(seed), "--quiet"]
    if name == "animals5":
        # 28x28, their native size, as the sample is prepared.
        argv += ["--data-dir", str(write_five_class_folder(root / "animals5-images")), "--img-size", "28"]
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


if __name__ == "__main__":
    for dataset in DATASETS:
        print(prepared(dataset))
