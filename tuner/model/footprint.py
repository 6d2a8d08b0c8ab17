"""How big and how fast a model is: its parameters, its weights' bytes, and its inference speed on this machine.

Every trial of a search is measured once, when its training ends (training.CurveWriter), so the
report can rank by size and speed too, keep to a budget, and draw the Pareto front.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from tuner.rundir.checks import shown_number

# At batch 1, up to this many timed passes, stopping early once they have taken LATENCY_SECONDS: a few
# hundred for a small model, fewer for a big one, so measuring stays a few percent of even a pruned trial.
LATENCY_PASSES = 300
LATENCY_SECONDS = 0.1
# Throughput is measured at this batch size: large enough for the kernels' batched speed, small enough
# that a few passes of the largest model of the default grid take a fraction of a second.
THROUGHPUT_BATCH = 64
THROUGHPUT_PASSES = 3
# An untimed pass before timing each batch size: the first call builds its kernels and caches.
WARMUP_PASSES = 1


@dataclass(frozen=True)
class Footprint:
    """A model's size and speed, as the run records them (RUN/history/trial_<id>.json, "footprint").

    Attributes:
        params: model.count_params(), every weight of the model (not the optimizer's).
        weight_bytes: the bytes those weights take (float32: 4 per parameter).
        latency_ms: median milliseconds per image at batch 1.
        images_per_second: images classified per second at batch `batch`.
        threads: the threads TensorFlow could use for one operation while measuring.
        batch: the batch size of images_per_second.
        passes: the timed batch-1 passes behind latency_ms.
        seconds: how long measuring took (its cost to the search).
    """

    params: int
    weight_bytes: int
    latency_ms: float
    images_per_second: float
    threads: int
    batch: int
    passes: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Footprint | None:
        """A footprint read back from a run, or None if `data` is not one (missing, or damaged: see footprint_problem)."""
        if footprint_problem(data) is not None:
            return None
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


# Counts (parameters, bytes, threads, batch, passes) become float64 in the report's tables and plots, whose
# integers are exact only up to 2**53; no model or machine this tool measures comes near it.
MAX_COUNT = 2**53
# A measured count that cannot be 0: a model has weights, a measurement a thread, a batch and a pass.
POSITIVE = ("params", "weight_bytes", "threads", "batch", "passes")
# The measured figures' ranges (a NaN fails every comparison, so it is refused too): an hour per image, a trillion
# images a second and three years of measuring are far past any model or machine, and keep the report's sums and
# ratios of many such values far from float overflow.
MAX_MEASURES = {"latency_ms": 3.6e6, "images_per_second": 1e12, "seconds": 1e8}


def footprint_problem(data: Any) -> str | None:
    """What is wrong with a footprint read back from a run (RUN/history/trial_<id>.json's "footprint"), or None.

    The counts are whole numbers of at least 1 and at most MAX_COUNT, the measured figures numbers within
    MAX_MEASURES; a latency and a throughput of 0 are no measurement.
    """
    if not isinstance(data, dict):
        return "its footprint is not an object"
    missing = [name for name in Footprint.__dataclass_fields__ if name not in data]
    if missing:
        return f"its footprint has no {', '.join(missing)}"
    for name in POSITIVE:
        # Checked as ints, before anything converts them: JSON's integers have no size limit, a float's do.
        if isinstance(data[name], bool) or not isinstance(data[name], int) or not 1 <= data[name] <= MAX_COUNT:
            return f"its footprint's {name} {shown_number(data[name])} is not a whole number from 1 to 2**53"
    for name, top in MAX_MEASURES.items():
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            return f"its footprint's {name} {shown_number(value)} is not a number from 0 to {top:g}"
    for name in ("latency_ms", "images_per_second"):
        if data[name] == 0:
            return f"its footprint's {name} is 0, which no measurement gives"
    return None


def weight_bytes(model: Any) -> int:
    """The bytes the model's weights take in memory (and, for float32, in a float LiteRT file, give or take its graph)."""
    return int(sum(np.prod(weight.shape, dtype=np.int64) * np.dtype(weight.dtype).itemsize for weight in model.weights))


def intra_op_threads() -> int:
    """The threads TensorFlow may use for one operation in this process (the launcher's workers use 1 each)."""
    import tensorflow as tf

    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured:
        return configured
    from_environment = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    if from_environment.isdigit() and int(from_environment) > 0:
        return int(from_environment)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def measure_footprint(model: Any) -> Footprint:
    """Count a model's parameters and bytes and time its forward pass (inference mode) on zero images.

    The pass is one compiled TensorFlow graph, as model.predict runs it but without predict's
    per-call bookkeeping, which would dwarf a small CNN's own time. Latency depends on the
    architecture, not on the trained weights, so any model of the configuration gives the same figures.

    Args:
        model: a built Keras model taking uint8 images of a fixed shape.

    Returns:
        The footprint; latency_ms is the median of the timed batch-1 passes.
    """
    import tensorflow as tf

    started = time.perf_counter()
    shape = tuple(int(side) for side in model.input_shape[1:])
    dtype = tf.as_dtype(model.inputs[0].dtype)
    # A concrete function is called without tf.function's argument matching, a quarter of a
    # millisecond a call here: the smallest models' own time is about that.
    forward = tf.function(lambda images: model(images, training=False)).get_concrete_function(
        tf.TensorSpec((None, *shape), dtype))
    single, batch = tf.zeros((1, *shape), dtype), tf.zeros((THROUGHPUT_BATCH, *shape), dtype)
    # .numpy() waits for the result, so each pass is timed to its end.
    latencies = timed_passes(lambda: forward(single).numpy(), LATENCY_PASSES, LATENCY_SECONDS)
    batch_seconds = timed_passes(lambda: forward(batch).numpy(), THROUGHPUT_PASSES)
    return Footprint(
        params=int(model.count_params()), weight_bytes=weight_bytes(model),
        latency_ms=round(statistics.median(latencies) * 1000, 4),
        images_per_second=round(THROUGHPUT_BATCH / statistics.median(batch_seconds), 1),
        threads=intra_op_threads(), batch=THROUGHPUT_BATCH, passes=len(latencies),
        seconds=round(time.perf_counter() - started, 3),
    )


def timed_passes(run_pass: Callable[[], Any], most: int, seconds: float = 0.0) -> list[float]:
    """Seconds of each of up to `most` calls of `run_pass`, after WARMUP_PASSES untimed ones.

    With `seconds`, stops early once that much time has gone by (at least one pass is timed).
    Shared by the search's TensorFlow measurement and the LiteRT check of an export.
    """
    for _ in range(WARMUP_PASSES):
        run_pass()
    timings: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(timings) < most:
        start = time.perf_counter()
        run_pass()
        timings.append(time.perf_counter() - start)
        if seconds and start >= deadline:
            break
    return timings


def write_footprint_summary(log_dir: Any, footprint: Footprint) -> None:
    """The footprint as TensorBoard scalars in `log_dir`, where the HParams dashboard lists them as metrics."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name in ("params", "weight_bytes", "latency_ms", "images_per_second"):
            tf.summary.scalar(name, float(getattr(footprint, name)), step=0)
    writer.close()
