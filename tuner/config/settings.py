"""The settings of every step, one frozen dataclass each, validated when made; a search's are two: the run and its execution."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.config.confirm_counts import confirm_counts, require_confirm
from tuner.config.spaces import DEFAULT_SPACE, DEFAULT_TUNERS, MODERN, SPACE_NAMES, has_grid
from tuner.errors import TunerUsageError

DEFAULT_PREPARED_DIR = "data/prepared"
DEFAULT_SAMPLE_DIR = "data/sample"
DEFAULT_RUNS_DIR = "runs"
TUNER_NAMES = ("grid", "random", "bayesian", "hyperband", "asha")
COLOR_MODES = ("grayscale", "rgb")
REPORT_FORMATS = ("table", "markdown", "csv", "json")
PREDICT_FORMATS = ("tsv", "csv", "json")
# What predict.py runs: the Keras model, or report.py's LiteRT exports (float, or full-integer with --int8).
RUNTIMES = ("keras", "litert", "litert-int8")
# report.py --tta: mirror averaging when the validation split says it helps (mirror.choose_mirror), always, or never.
TTA_CHOICES = ("auto", "on", "off")
ROLES = ("chief", "worker")  # the parts of a distributed search started by hand
PRUNE_RULES = ("median", "none")
# How --tuner asha proposes new configurations: KerasTuner's random search, near the best so far, or its Bayesian one.
PROPOSALS = ("random", "neighbours", "bayesian")
AUGMENT_CHOICES = ("off", "on")
# NumPy and TensorFlow take seeds below 2**32; no search of small CNNs needs more epochs or bigger batches.
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_WORKERS = 1024
# --lease-seconds: the least is more than two of a worker's 2-second heartbeats; the most, a day.
DEFAULT_LEASE_SECONDS, MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 30, 5, 86400
# `--workers` as written by a person: auto, or a whole number without sign, spaces or leading zeros.
_WORKERS_PATTERN = re.compile(r"auto|0|[1-9][0-9]*", re.ASCII)


def _opt(default: Any, help: str, *, may_change: bool = False, positional: bool = False, **argparse_extras: Any) -> Any:
    """A dataclass field whose help text and argparse extras (choices, metavar) become its flag.

    `may_change` marks a SearchSettings field that a resumed run may give another value
    (--max-trials extends a finished search); every other one defines the run.
    """
    return field(default=default, metadata={"help": help, "may_change": may_change, "positional": positional,
                                            "argparse": argparse_extras})


@dataclass(frozen=True)
class PrepSettings:
    """How `data_prep.py` turns an image folder into a prepared dataset."""

    data_dir: str | None = _opt(None, "image folder with one subfolder per class (omitted: the built-in sample)")
    out: str = _opt(DEFAULT_PREPARED_DIR, "where the prepared dataset (dataset.npz + manifest.json) is written")
    img_size: int | None = _opt(None, "side of the square images, 8..512 (default 50 as in the tutorial; the sample keeps its native 28)")
    color: str = _opt("grayscale", "colour mode of the prepared images", choices=COLOR_MODES)
    seed: int = _opt(1337, "seed for balancing and splitting, so a rerun gives the same splits")
    val_fraction: float = _opt(0.15, "share of each class for the validation split (model selection)")
    test_fraction: float = _opt(0.15, "share of each class for the test split (scored once, by report.py)")
    no_balance: bool = _opt(False, "keep every image instead of undersampling to the smallest class")
    workers: int = _opt(0, "decoding processes (0: one per core)")
    force: bool = _opt(False, "rebuild even if an up-to-date cache exists")
    quiet: bool = _opt(False, "no progress bar")
    debug: bool = _opt(False, "show full tracebacks")

    def __post_init__(self) -> None:
        if self.img_size is not None and not 8 <= self.img_size <= 512:
            raise TunerUsageError(f"--img-size must be between 8 and 512 pixels, got {self.img_size}; try the tutorial's 50.")
        _require_choice("--color", self.color, COLOR_MODES)
        for flag, value in (("--val-fraction", self.val_fraction), ("--test-fraction", self.test_fraction)):
            if not 0.0 < value < 1.0:
                raise TunerUsageError(f"{flag} must be between 0 and 1 (exclusive), got {value}; the default is 0.15.")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise TunerUsageError(
                f"--val-fraction + --test-fraction must leave room for a training split, "
                f"got {self.val_fraction} + {self.test_fraction} >= 1; lower one of them."
            )
        if self.workers < 0:
            raise TunerUsageError(f"--workers must be 0 (one per core) or more, got {self.workers}.")
        _require_range("--seed", self.seed, 0, MAX_SEED)


@dataclass(frozen=True)
class SearchSettings:
    """What a search is: its space, tuner, training and pruning. Saved in settings.json and compared on resume."""

    # None until __post_init__ puts the space's own (DEFAULT_TUNERS); settings.json always holds the resolved name.
    tuner: str | None = _opt(None, "search algorithm (omitted: asha, successive halving, for --space modern; grid, all "
                                   "27 configurations, for --space tutorial)", choices=TUNER_NAMES)
    space: str = _opt(DEFAULT_SPACE, "search space: tutorial (conv layers x nodes x dense layers, the tutorial's grid) "
                                     "or modern (the same core plus batch norm, filter doubling, global average pooling, "
                                     "dropout, a log-scale learning rate with cosine decay, augmentation)", choices=SPACE_NAMES)
    # The one setting a resume may change: a finished search can be extended with more trials.
    max_trials: int | None = _opt(None, "stop after this many trials (omitted: the whole grid, or 10 for random/bayesian); for asha, the new configurations (omitted: 18)",
                                  may_change=True)
    proposals: str = _opt("random", "how --tuner asha proposes new configurations: random, neighbours (one or two "
                                    "dimensions of the best so far moved one step), or bayesian (KerasTuner's Gaussian "
                                    "process on the first rung's results)", choices=PROPOSALS)
    epochs: int = _opt(10, "epochs per trial, as in the tutorial (the maximum for hyperband)")
    conv_layers: tuple[int, ...] = _opt((1, 2, 3), "numbers of conv+pool blocks to try")
    nodes: tuple[int, ...] = _opt((32, 64, 128), "layer sizes to try (filters of each conv layer, units of each dense layer)")
    dense_layers: tuple[int, ...] = _opt((0, 1, 2), "numbers of hidden dense layers to try")
    learning_rates: tuple[float, ...] = _opt((), "Adam learning rates to try (omitted: Keras' default 0.001, not searched)")
    dropouts: tuple[float, ...] = _opt((), "dropout rates before the output layer to try (omitted: no dropout, not searched)")
    # Off by default, as in the tutorial's grid: it beat the defaults in 6 of 8 benchmark splits, not yet a clear win (BENCHMARKS.md).
    augment: tuple[str, ...] = _opt((), "training-time augmentation to try: off, on (random flips, shifts and zoom), or both (omitted: off, not searched)", choices=AUGMENT_CHOICES)
    batch_size: int = _opt(32, "training batch size, as in the tutorial")
    patience: int = _opt(3, "stop a trial after this many epochs without a better val_loss (0: never stop early)")
    seed: int = _opt(1337, "seed for Python, NumPy, TensorFlow and the tuner")
    # Pruning and its warm-ups were picked by measurement (BENCHMARKS.md): one warm-up epoch halves a
    # grid's training time; 5 finished trials (Optuna's default) keep the first medians sound.
    prune: str = _opt("median", "stop a trial whose val_loss is behind the median of the finished trials at the same epoch", choices=PRUNE_RULES)
    prune_warmup_trials: int = _opt(5, "finished trials before any trial is pruned")
    prune_warmup_epochs: int = _opt(1, "epochs of every trial that are never pruned")
    # Trained by the search's own workers once its trials are done; report.py reuses them (confirm.py).
    confirm: tuple[int, ...] = _opt((), "once the trials are done, train the top K configurations with R more seeds each, "
                                        "for report.py to rank them by their mean val_loss: K R, or 0 for off (default: "
                                        "2 1 for asha, 3 2 for the other tuners)", may_change=True)

    def __post_init__(self) -> None:
        if self.tuner is None and self.space in DEFAULT_TUNERS:
            object.__setattr__(self, "tuner", DEFAULT_TUNERS[self.space])
        _require_choice("--tuner", self.tuner, TUNER_NAMES)
        _require_range("--epochs", self.epochs, 1, MAX_EPOCHS)
        _require_range("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)
        _require_range("--seed", self.seed, 0, MAX_SEED)
        if self.max_trials is not None:
            _require_positive("--max-trials", self.max_trials)
        if self.patience < 0:
            raise TunerUsageError(f"--patience must be 0 (off) or more epochs, got {self.patience}.")
        if self.tuner == "hyperband" and self.epochs < 2:
            raise TunerUsageError(f"--tuner hyperband needs --epochs of at least 2 (it trains in growing rounds), got {self.epochs}.")
        # Successive halving's first rung trains 2 epochs (search/halving.py, MIN_FIRST_RUNG); --epochs 2 is that one
        # rung alone, a random search whose trials train to the end.
        if self.tuner == "asha" and self.epochs < 2:
            raise TunerUsageError(f"--tuner asha needs --epochs of at least 2 (its first rung trains 2 epochs), got {self.epochs}.")
        _require_choice("--proposals", self.proposals, PROPOSALS)
        if self.proposals != "random" and self.tuner != "asha":
            raise TunerUsageError(f"--proposals {self.proposals} is how --tuner asha proposes configurations; "
                                  f"--tuner {self.tuner} has its own, so leave --proposals out (or use --tuner bayesian).")
        _require_values("--conv-layers", self.conv_layers, low=1, high=8)
        _require_values("--nodes", self.nodes, low=1, high=4096)
        _require_values("--dense-layers", self.dense_layers, low=0, high=8)
        for rate in self.learning_rates:
            if not 0.0 < rate < 1.0:
                raise TunerUsageError(f"--learning-rates must be between 0 and 1, got {rate}; e.g. 0.001 0.0003.")
        for rate in self.dropouts:
            if not 0.0 <= rate < 1.0:
                raise TunerUsageError(f"--dropouts must be at least 0 and below 1, got {rate}; e.g. 0 0.25 0.5.")
        for choice in self.augment:
            if choice not in AUGMENT_CHOICES:
                raise TunerUsageError(f"--augment values must be off or on, got {choice!r}; e.g. --augment off on.")
        if len(set(self.augment)) != len(self.augment):
            raise TunerUsageError(f"--augment lists a value twice ({' '.join(self.augment)}); give off, on, or both.")
        self._check_space()
        _require_choice("--prune", self.prune, PRUNE_RULES)
        if self.prune_warmup_trials < 1:
            raise TunerUsageError(f"--prune-warmup-trials must be at least 1 (a median needs a trial), got {self.prune_warmup_trials}.")
        if self.prune_warmup_epochs < 0:
            raise TunerUsageError(f"--prune-warmup-epochs must be 0 or more, got {self.prune_warmup_epochs}.")
        require_confirm(self.confirm)

    @property
    def confirm_counts(self) -> tuple[int, int]:
        """(K, R): the configurations the search confirms and the further seeds each; (0, 0) when off."""
        return confirm_counts(self.confirm, self.tuner)

    @property
    def median_pruning(self) -> bool:
        """Whether trials behind the median are stopped: never under asha, which is its own early stopping."""
        return self.prune == "median" and self.tuner != "asha"

    def _check_space(self) -> None:
        _require_choice("--space", self.space, SPACE_NAMES)
        if self.space != MODERN:
            return
        if self.tuner == "grid" and not has_grid(self.space):
            raise TunerUsageError("--space modern (the default) searches a continuous learning rate, so it has no grid; use --tuner asha (successive halving), random, bayesian or hyperband with it, or add --space tutorial for the tutorial's grid.")
        extras = [flag for flag, values in (("--learning-rates", self.learning_rates), ("--dropouts", self.dropouts),
                                            ("--augment", self.augment)) if values]
        if extras:
            raise TunerUsageError(f"--space modern (the default) searches learning_rate, dropout and augment over its "
                                  f"own ranges, so {' and '.join(extras)} must be left out; or add --space tutorial "
                                  f"to search them on the tutorial's grid.")


# Derived, so a new run-defining setting is compared on resume without anyone having to list it:
# resuming with any of these changed would mix incomparable trials.
COMPARED_ON_RESUME = tuple(item.name for item in dataclasses.fields(SearchSettings) if not item.metadata["may_change"])


@dataclass(frozen=True)
class ExecutionOptions:
    """How this process takes part in a search: data, run directory, processes, role, output. Never saved."""

    data: str = _opt(DEFAULT_PREPARED_DIR, "prepared dataset folder (prepared from the built-in sample if missing)")
    run_dir: str | None = _opt(None, "where trials, histories and TensorBoard logs go (omitted: runs/<tuner>)")
    overwrite: bool = _opt(False, "start the run directory afresh instead of resuming it")
    # One process cannot keep several cores busy with small CNNs; replacing it every 20 trials bounds
    # the memory TensorFlow keeps of every model (about 7 MB each) at one TensorFlow import's cost.
    workers: str = _opt("auto", "trial (then confirm-run) processes on this machine: auto (one per core, or per GPU), a number, or 0 to train in this process")
    trials_per_process: int = _opt(20, "replace a trial process after this many trials, so memory stays bounded (0: never)")
    role: str | None = _opt(None, "part in a distributed search started by hand", choices=ROLES)
    oracle: str | None = _opt(None, "HOST:PORT of the chief's oracle, with --role")
    connect_timeout: int = _opt(30, "seconds a worker waits for the chief at start-up before giving up")
    # Workers beat every 2 s; longer leaves a dead worker's trial (and a restarted chief's confirm runs) waiting.
    lease_seconds: int = _opt(DEFAULT_LEASE_SECONDS, "seconds a silent worker keeps its trial or confirm run before another gets it (the chief's, or --workers')")
    quiet: bool = _opt(False, "print only the summary, not a line per trial")
    debug: bool = _opt(False, "show full tracebacks")

    def __post_init__(self) -> None:
        _require_workers(self.workers)
        if self.trials_per_process < 0:
            raise TunerUsageError(f"--trials-per-process must be 0 (never replace) or more, got {self.trials_per_process}.")
        _require_positive("--connect-timeout", self.connect_timeout)
        _require_range("--lease-seconds", self.lease_seconds, MIN_LEASE_SECONDS, MAX_LEASE_SECONDS)
        if self.role is not None:
            _require_choice("--role", self.role, ROLES)
        if (self.role is None) != (self.oracle is None):
            raise TunerUsageError("--role and --oracle go together: give both (e.g. --role worker --oracle 127.0.0.1:8000) or neither.")
        if self.role is not None and self.workers != "auto":
            raise TunerUsageError("--workers starts its own chief and workers on this machine; don't combine it with --role/--oracle.")

    def resolved_run_dir(self, settings: SearchSettings) -> Path:
        """The run directory, defaulting to runs/<tuner> so the same command resumes the same run."""
        return Path(self.run_dir) if self.run_dir else Path(DEFAULT_RUNS_DIR) / settings.tuner

    def for_worker(self, oracle: str) -> ExecutionOptions:
        """The options of a worker the launcher starts for the chief at `oracle`: the same data, run directory and output;
        how many workers to start and whether to clear the run directory were the launcher's to decide."""
        return dataclasses.replace(self, role="worker", oracle=oracle, workers="auto", overwrite=False)


@dataclass(frozen=True)
class ReportSettings:
    """How `report.py` ranks a run's trials and retrains the winner."""

    run_dir: str | None = _opt(None, "run directory to report on (default: the most recent under runs/)")
    format: str = _opt("table", "how the ranking is printed", choices=REPORT_FORMATS)
    top: int | None = _opt(None, "print only the best K trials and plot their curves (default: print all, plot 5); results.csv/.md keep all")
    # Empty: what the search confirmed, which confirm_counts resolves.
    confirm: tuple[int, ...] = _opt((), "before retraining, train the top K configurations with R more seeds each and rank "
                                        "them by their mean val_loss: K R, or 0 for off (default: as the search did, "
                                        "whose own runs are reused)")
    # As search.py's trials: a small CNN cannot keep several cores busy from one process.
    workers: str = _opt("auto", "processes for the confirm runs the search did not train: auto (one per core, or per GPU), a number, or 0 to train them in this process")
    no_retrain: bool = _opt(False, "don't retrain; save the best trial's own weights as the winner")
    tta: str = _opt("auto", "test-time augmentation: the saved winner averages its answers for each image and its left-right "
                            "mirror image; auto does so when that lowers the winner's validation loss", choices=TTA_CHOICES)
    max_params: int | None = _opt(None, "pick the winner among the trials whose model has at most N parameters (e.g. 100000); the rest are listed as excluded", metavar="N")
    max_latency_ms: float | None = _opt(None, "pick the winner among the trials taking at most X ms per image at batch 1, as the search measured them", metavar="MS")
    int8: bool = _opt(False, "also write best/model_int8.tflite, a full-integer model quantized with training images, checked on the test split")
    no_export: bool = _opt(False, "don't write best/model.tflite, the LiteRT export of the winner")
    no_html: bool = _opt(False, "don't write report.html, the whole report as one page that opens from disk")
    debug: bool = _opt(False, "show full tracebacks")

    def __post_init__(self) -> None:
        if self.top is not None:
            _require_positive("--top", self.top)
        if self.max_params is not None:
            _require_positive("--max-params", self.max_params)
        if self.max_latency_ms is not None and not 0 < self.max_latency_ms < float("inf"):
            raise TunerUsageError(f"--max-latency-ms must be a number of milliseconds above 0, got {self.max_latency_ms}.")
        _require_workers(self.workers)
        _require_choice("--tta", self.tta, TTA_CHOICES)
        if self.int8 and self.no_export:
            raise TunerUsageError("--int8 writes a LiteRT export, --no-export writes none; pass one of them.")
        require_confirm(self.confirm)

    def confirm_counts(self, search: SearchSettings) -> tuple[int, int]:
        """(K, R) for a run searched with `search`: configurations to confirm and further seeds each; (0, 0) when off."""
        return confirm_counts(self.confirm or search.confirm, search.tuner)


@dataclass(frozen=True)
class PredictSettings:
    """How `predict.py` classifies images with the saved winner."""

    paths: tuple[str, ...] = _opt((), "image files or folders (searched recursively)", positional=True)
    model: str | None = _opt(None, "folder of the saved winner (default: RUN/best of the most recent run)")
    format: str = _opt("tsv", "output format: path<TAB>label<TAB>probability, or csv/json", choices=PREDICT_FORMATS)
    batch_size: int = _opt(64, "images classified at a time")
    runtime: str = _opt("keras", "run model.keras with Keras, or report.py's LiteRT export (model.tflite, or model_int8.tflite) with the LiteRT interpreter, without TensorFlow", choices=RUNTIMES)
    debug: bool = _opt(False, "show full tracebacks")

    def __post_init__(self) -> None:
        _require_positive("--batch-size", self.batch_size)


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """A JSON-ready dict of a Settings instance (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(settings)))


def _require_workers(workers: str) -> None:
    # A pattern, not int(): int() takes "+1", " 1" and "00", and "00" once reached the launcher as 0 workers.
    if not _WORKERS_PATTERN.fullmatch(workers) or (workers != "auto" and int(workers) > MAX_WORKERS):
        raise TunerUsageError(
            f"--workers must be auto or a number of processes from 0 to {MAX_WORKERS}, got {workers!r}; "
            f"write it plainly, e.g. --workers 2."
        )


def _require_choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TunerUsageError(f"{flag} must be one of {', '.join(choices)}, got {value!r}.")


def _require_range(flag: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise TunerUsageError(f"{flag} must be a whole number from {low} to {high}, got {value}.")


def _require_positive(flag: str, value: int) -> None:
    if value < 1:
        raise TunerUsageError(f"{flag} must be a whole number of at least 1, got {value}.")


def _require_values(flag: str, values: tuple[int, ...], low: int, high: int) -> None:
    if not values:
        raise TunerUsageError(f"{flag} needs at least one value, e.g. {flag} {low} {low + 1}.")
    for value in values:
        if not low <= value <= high:
            raise TunerUsageError(f"{flag} values must be between {low} and {high}, got {value}.")
