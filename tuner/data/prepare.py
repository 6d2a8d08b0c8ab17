"""Image folder -> cleaned, deduplicated, balanced, split uint8 arrays, cached as dataset.npz + manifest.json."""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data import cache
from tuner.data.cache import (DATASET_FILE, MANIFEST_FILE, SPLITS, PreparedDataset, cached_fingerprint, load_prepared,
                         write_prepared)
from tuner.config import DEFAULT_PREPARED_DIR, DEFAULT_SAMPLE_DIR, PrepSettings
from tuner.data.decoding import Decoded, decode_all, resolve_workers
from tuner.errors import TunerUsageError
from tuner.names import as_text, for_terminal

try:  # CPython's built-in SHA-256, as the standard library's random.py does: hashlib would map OpenSSL's
    from _sha2 import sha256  # libcrypto (3.5 MB) into every run just for the source fingerprint. 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.10 and 3.11
    except ImportError:  # pragma: no cover - interpreters built without it
        from hashlib import sha256

logger = logging.getLogger(__name__)

DEFAULT_IMG_SIZE = 50  # the tutorial's size for a user's own photos
SAMPLE_IMG_SIZE = 28  # Animal-MNIST's native size: upscaling adds no information
# ---------------------------------------------------------------------------------------------- the source folder

@dataclass
class _Source:
    root: Path
    builtin: bool
    folders: list[str]  # the class folders' names on disk, which may not be valid UTF-8
    labels: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # POSIX paths relative to root, sorted within each class
    fingerprint: str = ""

    @property
    def class_names(self) -> list[str]:
        """The folders' names as valid text: what the manifest, the model's metadata and predictions show."""
        return [as_text(folder) for folder in self.folders]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _find_classes(root: Path) -> list[str]:
    hint = "one subfolder per class (e.g. PetImages/ with Cat/ and Dog/)"
    if not root.exists():
        raise TunerUsageError(f"data folder '{root}' does not exist; pass --data-dir with a folder holding {hint}.")
    if not root.is_dir():
        kind = "a file, not a folder" if root.is_file() else "a FIFO, socket or device, not a folder"
        raise TunerUsageError(f"--data-dir '{root}' is {kind}; pass the folder holding {hint}.")
    with os.scandir(root) as entries:
        names = sorted(entry.name for entry in entries if entry.is_dir() and not _hidden(entry.name))
    if len(names) < 2:
        found = f"{len(names)} class folder{'' if len(names) == 1 else 's'}" + (f" ({names[0]})" if names else "")
        raise TunerUsageError(f"data folder '{root}' has {found}; need at least 2, {hint}.")
    shown = [as_text(name) for name in names]
    if len(set(shown)) < len(shown):
        twice = sorted(name for name in set(shown) if shown.count(name) > 1)
        raise TunerUsageError(f"data folder '{root}' has two class folders that read as the same name ({', '.join(twice)}: "
                              f"one of them is not valid UTF-8); rename one of them.")
    return names


def _scan(root: Path, builtin: bool, folders: list[str], output_key: dict[str, Any]) -> _Source:
    """List every file under each class folder and fingerprint the listing plus the settings that shape the output."""
    source = _Source(root, builtin, folders)
    digest = sha256(json.dumps({**output_key, "data_dir": str(root.resolve()), "format": cache.FORMAT_VERSION},
                               sort_keys=True).encode())
    prefix = len(str(root)) + 1
    for label, name in enumerate(source.folders):
        for folder, subfolders, filenames in os.walk(os.path.join(str(root), name)):  # keeps "./" so prefix fits
            subfolders[:] = sorted(sub for sub in subfolders if not _hidden(sub))
            for filename in sorted(filenames):
                path = os.path.join(folder, filename)
                try:
                    info = os.stat(path)
                except OSError:  # a broken link; decoding will report it
                    info = os.lstat(path)
                relative = path[prefix:].replace(os.sep, "/")
                source.labels.append(label)
                source.files.append(relative)
                digest.update(f"{label}\0{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    source.fingerprint = digest.hexdigest()
    return source


def _check_output(out: Path, root: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TunerUsageError(f"--out '{out}' is a file; pass a folder for the prepared dataset (default {DEFAULT_PREPARED_DIR}).")
    if out.resolve().is_relative_to(root.resolve()):
        raise TunerUsageError(f"--out '{out}' is inside the data folder '{root}', where it would be read as a class; "
                              f"pass an --out outside it.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise TunerUsageError(f"cannot write to output folder '{out}' ({error.strerror or error}); "
                              f"pass a writable --out.") from None


# ---------------------------------------------------------------------------------------------- cleaning and splitting

def _group_identical(decoded: Decoded) -> list[list[int]]:
    """Group the loaded files by identical pixels (file indices, in file order, groups ordered by first file).

    A 64-bit hash narrows the search and a byte comparison decides, so a hash collision can't merge two images.
    """
    buckets: dict[int, list[list[int]]] = defaultdict(list)
    groups: list[list[int]] = []
    for index in np.flatnonzero(decoded.rows >= 0).tolist():
        pixels = decoded.images[decoded.rows[index]]
        candidates = buckets[hash(pixels.tobytes())]
        for group in candidates:
            if np.array_equal(decoded.images[decoded.rows[group[0]]], pixels):
                group.append(index)
                break
        else:
            candidates.append([index])
            groups.append(candidates[-1])
    return groups


def _build(source: _Source, decoded: Decoded, img_size: int,
           settings: PrepSettings) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Drop duplicates, balance and split; returns the arrays and the manifest describing every decision."""
    names, labels, files = source.class_names, source.labels, source.files
    counts: dict[str, dict[str, Any]] = {
        name: {"found": 0, "loaded": 0, "skipped": Counter(), "duplicates": 0, "mislabelled": 0} for name in names}
    skipped, identical = [], _group_identical(decoded)
    for index, (label, reason) in enumerate(zip(labels, decoded.reasons)):
        entry = counts[names[label]]
        entry["found"] += 1
        if reason is None:
            entry["loaded"] += 1
        else:
            entry["skipped"][reason] += 1
            skipped.append({"file": as_text(files[index]), "reason": reason})
    # Same pixels under two classes: no way to tell which label is right, so every copy goes.
    # Same pixels twice in one class: keep the first, so no image can sit in both train and test.
    unique: list[list[int]] = [[] for _ in names]
    duplicates, mislabelled = [], []
    for group in identical:
        if len({labels[index] for index in group}) > 1:
            mislabelled.append({"files": [as_text(files[index]) for index in group]})
            for index in group:
                counts[names[labels[index]]]["mislabelled"] += 1
            continue
        unique[labels[group[0]]].append(group[0])
        counts[names[labels[group[0]]]]["duplicates"] += len(group) - 1
        duplicates += [{"file": as_text(files[index]), "same_as": as_text(files[group[0]])} for index in group[1:]]
    for name, indices in zip(names, unique):
        if not indices:
            entry = counts[name]
            reasons = ", ".join(f"{count} {reason}" for reason, count in entry["skipped"].most_common()) or "none skipped"
            raise TunerUsageError(
                f"class folder '{source.root / name}' has no usable image ({entry['found']} files; {reasons}; "
                f"{entry['mislabelled']} also in another class); add images to it or remove the folder.")

    # Python's own generator: numpy.random would cost 15 ms and 6 MB to import for a few shuffles.
    rng = random.Random(settings.seed)
    keep = None if settings.no_balance else min(map(len, unique))  # undersample to the smallest class
    parts: dict[str, list[int]] = {split: [] for split in SPLITS}
    for name, indices in zip(names, unique):
        chosen = rng.sample(indices, len(indices))[:keep]
        total = len(chosen)
        n_val, n_test = int(total * settings.val_fraction + 0.5), int(total * settings.test_fraction + 0.5)
        n_train = total - n_val - n_test
        if min(n_train, n_val, n_test) < 1:
            raise TunerUsageError(
                f"class '{name}' has {total} usable images, too few for --val-fraction {settings.val_fraction} and "
                f"--test-fraction {settings.test_fraction} (train/val/test would get {n_train}/{n_val}/{n_test}); "
                f"each split needs at least 1 image per class: add images or change the fractions.")
        parts["train"] += chosen[:n_train]
        parts["val"] += chosen[n_train:n_train + n_val]
        parts["test"] += chosen[n_train + n_val:]
        counts[name].update(kept=total, train=n_train, val=n_val, test=n_test)

    all_labels = np.asarray(labels, np.int32)
    arrays = {}
    for split in SPLITS:
        rng.shuffle(parts[split])  # mix the classes within each split
        indices = np.asarray(parts[split], np.int64)
        arrays[f"x_{split}"] = decoded.images[decoded.rows[indices]]
        arrays[f"y_{split}"] = all_labels[indices]
    # Row i of x_test came from test_files[i]: the report names a misclassified image's file so a person can fix it.
    test_files = [as_text(files[index]) for index in parts["test"]]
    manifest = {
        "class_names": names, "img_size": img_size, "color": settings.color, "seed": settings.seed,
        "val_fraction": settings.val_fraction, "test_fraction": settings.test_fraction,
        "balanced": not settings.no_balance, "fingerprint": source.fingerprint,
        "source": {"data_dir": as_text(str(source.root)), "builtin_sample": source.builtin, "files": len(files)},
        "counts": {name: {**entry, "skipped": dict(entry["skipped"].most_common())} for name, entry in counts.items()},
        "skipped": skipped, "duplicates": duplicates,
        "mislabelled": mislabelled, "test_files": test_files,
    }
    return arrays, manifest


# ---------------------------------------------------------------------------------------------- the whole step

def prepare_dataset(settings: PrepSettings, progress: bool = True) -> tuple[PreparedDataset, bool]:
    """Turn an image folder (or the built-in sample) into a prepared dataset in `settings.out`.

    Args:
        settings: what to read, how to preprocess and split, where to write.
        progress: draw a progress bar on stderr while decoding (only on a terminal).

    Returns:
        (the dataset, True if an up-to-date cache was reused instead of decoding again).
    """
    builtin = settings.data_dir is None
    if builtin:
        from tuner.data.sample import write_sample  # only the sample needs it

        root = write_sample(DEFAULT_SAMPLE_DIR)
    else:
        root = Path(settings.data_dir)
    img_size = settings.img_size or (SAMPLE_IMG_SIZE if builtin else DEFAULT_IMG_SIZE)
    output_key = {"img_size": img_size, "color": settings.color, "seed": settings.seed, "balanced": not settings.no_balance,
                  "val_fraction": settings.val_fraction, "test_fraction": settings.test_fraction}
    folders = _find_classes(root)
    out = Path(settings.out)
    _check_output(out, root)
    source = _scan(root, builtin, folders, output_key)
    if not settings.force and cached_fingerprint(out) == source.fingerprint:
        logger.debug("Reusing the prepared dataset in %s: the source folder and settings are unchanged", out)
        return load_prepared(out), True
    started = time.perf_counter()
    workers = resolve_workers(settings.workers)
    logger.debug("Decoding %d files from %s with up to %d processes", len(source.files), root, workers)
    decoded = decode_all([str(root / name) for name in source.files], img_size, settings.color, workers, progress)
    arrays, manifest = _build(source, decoded, img_size, settings)
    del decoded
    dataset = write_prepared(out, arrays, manifest)
    splits = dataset.manifest["splits"]
    logger.info("Prepared %s of %s files in %.1f s: %s train, %s validation, %s test", f"{sum(splits.values()):,}",
                f"{len(source.files):,}", time.perf_counter() - started, *(f"{splits[name]:,}" for name in SPLITS))
    return dataset, False


def ensure_prepared(directory: str | os.PathLike, quiet: bool = False) -> PreparedDataset:
    """The prepared dataset in `directory`; if it is the default folder and still empty, prepare the built-in sample there.

    Args:
        directory: a prepared-dataset folder (search.py's --data).
        quiet: no progress bar.

    Returns:
        The dataset. Raises TunerUsageError if a non-default folder has none.
    """
    folder = Path(directory)
    if not (folder / DATASET_FILE).exists() and folder.resolve() == Path(DEFAULT_PREPARED_DIR).resolve():
        logger.info("No prepared dataset in %s yet: preparing the built-in sample there, as python data_prep.py does", folder)
        # The sample is 2,000 tiny PNGs: decoding in this process is quick and safe even with TensorFlow loaded.
        return prepare_dataset(PrepSettings(out=str(folder), workers=1, quiet=quiet), progress=not quiet)[0]
    return load_prepared(folder)


def format_summary(dataset_or_manifest: PreparedDataset | dict[str, Any], max_files: int = 20) -> str:
    """A readable summary: counts per class (found, loaded, skipped, duplicates, kept, per split) and skipped files.

    Args:
        dataset_or_manifest: a PreparedDataset or its manifest dict.
        max_files: list at most this many skipped files (the manifest has them all).

    Returns:
        Several lines of text, without a trailing newline.
    """
    manifest = dataset_or_manifest.manifest if isinstance(dataset_or_manifest, PreparedDataset) else dataset_or_manifest
    names, counts = manifest["class_names"], manifest.get("counts", {})
    source = manifest.get("source", {})
    origin = "the built-in sample" if source.get("builtin_sample") else for_terminal(str(source.get("data_dir", "arrays")))
    lines = [f"{len(names)} classes, {manifest['img_size']}x{manifest['img_size']} {manifest['color']}, "
             f"from {origin}" + (f" ({source['data_dir']})" if source.get("builtin_sample") else "")
             + (f", seed {manifest['seed']}" if "seed" in manifest else "")]
    columns = ("found", "loaded", "skipped", "duplicates", "mislabelled", "kept", *SPLITS)
    rows = []
    for name in names:
        entry = counts.get(name, {})
        rows.append([for_terminal(name)] + [sum(entry.get(c, {}).values()) if c == "skipped" else entry.get(c, 0) for c in columns])
    rows.append(["total"] + [sum(row[i + 1] for row in rows) for i in range(len(columns))])
    width = max(len(str(row[0])) for row in rows + [["class"]])
    lines.append(f"{'class':<{width}}  " + "  ".join(f"{c:>{max(len(c), 5)}}" for c in columns))
    lines += [f"{row[0]:<{width}}  " + "  ".join(f"{v:>{max(len(c), 5)}}" for c, v in zip(columns, row[1:])) for row in rows]
    total = rows[-1]
    if "duplicates" in manifest:
        lines.append(f"duplicates: {total[4]} exact repeats within a class kept once; {total[5]} images found "
                     f"under more than one class dropped as mislabelled")
    if "balanced" in manifest:
        lines.append(f"balanced: undersampled to {min(counts[n]['kept'] for n in names)} images per class"
                     if manifest["balanced"] else "not balanced (--no-balance)")
    skipped = manifest.get("skipped", [])
    if skipped:
        reasons = Counter(item["reason"] for item in skipped)
        lines.append(f"skipped {len(skipped)} files: " + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()))
        lines += [f"  {for_terminal(item['file'])}: {item['reason']}" for item in skipped[:max_files]]
        if len(skipped) > max_files:
            lines.append(f"  ... and {len(skipped) - max_files} more in {MANIFEST_FILE}")
    return "\n".join(lines)
