"""Decode a folder's image files on every core, uint8 end to end, in a result order that scheduling never changes."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.data.images import CHANNELS, decode_image
from tuner.quiet import quiet_stderr, silence_stderr

_MIN_FILES_FOR_POOL = 64  # below this, starting processes costs more than it saves


def _init_worker() -> None:
    # No cv2.setNumThreads(1) here: in a forked child of a process whose OpenCV thread pool has run, it
    # deadlocks destroying the pool's inherited condition variables. The images are small anyway.
    silence_stderr()


def _decode_batch(task: tuple[int, list[str], int, str]) -> tuple[int, np.ndarray, list[str | None]]:
    """Decode a batch of files; only the small uint8 images and the reasons for skipped files travel back."""
    start, paths, img_size, color = task
    images, reasons = [], []
    for path in paths:
        image, reason = decode_image(path, img_size, color)
        reasons.append(reason)
        if image is not None:
            images.append(image)
    shape = (len(images), img_size, img_size, CHANNELS[color])
    return start, (np.stack(images) if images else np.empty(shape, np.uint8)), reasons


class _ProgressBar:
    """A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second."""

    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self.total, self.done, self.label, self._last = total, 0, label, 0.0
        self.enabled = enabled and total > 0 and sys.stderr.isatty()

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            filled = 30 * self.done // self.total
            sys.stderr.write(f"\r{self.label} {self.done:>{len(str(self.total))}}/{self.total} "
                             f"[{'#' * filled}{'.' * (30 - filled)}] {100 * self.done // self.total:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def resolve_workers(requested: int) -> int:
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))  # respects CPU pinning and container limits
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _start_method() -> str:
    # fork starts workers in milliseconds, but is unsafe once TensorFlow's threads exist (search.py).
    if "fork" in multiprocessing.get_all_start_methods() and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


def _decode_here(task: tuple[int, list[str], int, str]) -> tuple[int, np.ndarray, list[str | None]]:
    with quiet_stderr():
        return _decode_batch(task)


def _run_batches(tasks: list[tuple[int, list[str], int, str]], workers: int, absorb: Any) -> None:
    """Decode every batch with `workers` processes in all: this one plus workers - 1 started for the purpose.

    This process decodes too, rather than waiting: one process fewer to start and to hold in memory.
    It takes batches from the back of the queue while the others take them from the front.
    """
    if workers == 1:
        for task in tasks:
            absorb(_decode_here(task))
        return
    method = _start_method()
    forking = method == "fork"
    if forking:
        # Load OpenCV before forking so the workers share its pages instead of each loading a copy, and
        # freeze the heap so that their garbage collector doesn't copy it page by page either.
        import cv2  # noqa: F401
        gc.freeze()
    try:
        pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context(method), initializer=_init_worker)
        futures = [pool.submit(_decode_batch, task) for task in tasks]  # with fork, the workers start here
    finally:
        if forking:
            gc.unfreeze()
    try:
        outstanding = set(futures)
        for task, future in zip(reversed(tasks), reversed(futures)):
            if not future.cancel():  # a worker has it, and so every batch before it
                break
            outstanding.discard(future)
            absorb(_decode_here(task))
            for finished in [item for item in outstanding if item.done()]:
                outstanding.discard(finished)
                absorb(finished.result())
        for future in as_completed(outstanding):
            absorb(future.result())
    except BaseException as error:  # Ctrl-C or a failure: drop the queued batches instead of finishing them
        pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(error, BrokenProcessPool):
            raise RuntimeError("a decoding process died (did OpenCV crash on a file?); "
                               "rerun with --workers 1 to see which file") from error
        raise
    pool.shutdown()


@dataclass
class Decoded:
    images: np.ndarray  # (loaded, S, S, C) uint8, in the order the batches finished
    rows: np.ndarray  # file index -> row in `images`, or -1 if skipped
    reasons: list[str | None]


def decode_all(paths: list[str], img_size: int, color: str, workers: int, progress: bool) -> Decoded:
    total = len(paths)
    images = np.empty((total, img_size, img_size, CHANNELS[color]), np.uint8)
    decoded = Decoded(images, np.full(total, -1, np.int64), [None] * total)
    loaded = 0
    workers = min(resolve_workers(workers), max(1, total // 16))
    if total < _MIN_FILES_FOR_POOL:
        workers = 1
    batch = max(8, min(256, -(-total // (workers * 8))))  # ~8 batches per worker: small scheduling cost, even finish
    tasks = [(start, paths[start:start + batch], img_size, color) for start in range(0, total, batch)]
    bar = _ProgressBar(total, progress, f"decoding {total:,} files with {workers} process{'es' if workers > 1 else ''}")

    def absorb(result: tuple[int, np.ndarray, list[str | None]]) -> None:
        nonlocal loaded
        start, batch_images, reasons = result
        ok = [start + offset for offset, reason in enumerate(reasons) if reason is None]
        images[loaded:loaded + len(ok)] = batch_images
        decoded.rows[ok] = np.arange(loaded, loaded + len(ok))
        decoded.reasons[start:start + len(reasons)] = reasons
        loaded += len(ok)
        bar.update(len(reasons))

    try:
        _run_batches(tasks, workers, absorb)
    finally:
        bar.close()
    # Rows are in completion order; everything downstream goes through `rows`, so scheduling never changes results.
    decoded.images = images[:loaded]
    return decoded
