"""The search's winner retrained on train + validation, scored once on the test split, and saved for predict.py."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data.cache import PreparedDataset, dataset_identity
from tuner.config import SearchSettings
from tuner.config.spaces import MODERN
from tuner.errors import TunerUsageError
from tuner.winner.export import export_winner, format_export_checks
from tuner.files import atomic_write_bytes, atomic_write_json, check_regular_file, make_staging_dir
from tuner.model.head import Head, decide
from tuner.model.mirror import MirrorDecision, average_with_mirror, choose_mirror
from tuner.winner.mistakes import Mistake, find_mistakes, format_mistakes
from tuner.names import for_terminal
from tuner.trials.rows import CONFIRM_COLUMNS, FOOTPRINT_COLUMNS, TrialRow
from tuner.rundir import METADATA_FILE, MODEL_FILE, Run, RunRecord, load_run_dataset
from tuner.stats import wilson_interval

log = logging.getLogger(__name__)
# The modern space's retrain, in multiples of the winner's best epoch (retrain_epochs).
MODERN_RETRAIN_FACTOR = 2
# How the test accuracy's interval is computed, as metadata.json and results.json name it.
INTERVAL_NAME = "Wilson score interval, 95%"


@dataclass(frozen=True)
class Winner:
    """The saved best model and its one evaluation on the test split."""

    model_dir: Path
    trial_id: str
    retrained: bool
    epochs: int | None
    test_loss: float
    test_accuracy: float
    class_names: list[str]
    confusion_matrix: list[list[int]]
    per_class: list[dict[str, Any]]
    test_images: int
    test_interval: tuple[float, float]
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    misclassified: tuple[Mistake, ...] = ()  # most confident first
    mirror: MirrorDecision = MirrorDecision(False, "not decided")

    def to_json(self) -> dict[str, Any]:
        """What results.json records of the winner."""
        return {"trial": self.trial_id, "retrained": self.retrained, "epochs": self.epochs, "model": str(self.model_dir),
                "test": {"images": self.test_images, "loss": self.test_loss, "accuracy": self.test_accuracy,
                         "accuracy_interval": list(self.test_interval), "interval": INTERVAL_NAME,
                         "per_class": self.per_class},
                "mirror_average": self.mirror.to_json(), "exports": self.exports,
                "misclassified": [item.to_json() for item in self.misclassified]}


def retrain_best(run: Run, record: RunRecord, winner: TrialRow, retrain: bool = True, export: bool = True,
                 int8: bool = False, dataset: PreparedDataset | None = None, tta: str = "auto") -> Winner:
    """Rebuild the winning trial's model, train it on train + validation, and score it once on test.

    As in KerasTuner's "Retrain the model" guide: the winner's hyperparameters are built
    afresh and fitted, seeded, for the epoch count at which its trial reached its best
    val_loss (the median over seeds when it was confirmed), with a TensorBoard log in RUN/tensorboard/best. With retrain=False the
    trial's own best-epoch weights are loaded instead. With mirror averaging (`tta`), the model
    saved answers with the mean of its answers for an image and its mirror image. Either way it is evaluated
    on the test split (which the search never saw) and saved to RUN/best/ as model.keras
    plus metadata.json, with model.tflite (and model_int8.tflite) exported for LiteRT and
    checked against it on the test split (export.export_winner); the folder is replaced in
    one rename, so a kill never leaves a half-written winner.

    Args:
        run: the run directory.
        record: the run's settings.json.
        winner: the first row of the report's ranking.
        retrain: False to reuse the trial's checkpoint.
        export: write the float LiteRT export.
        int8: write the full-integer LiteRT export too.
        dataset: the run's prepared dataset if the caller loaded it already (else loaded and checked here).
        tta: "on" to save the model averaged over each image and its mirror (mirror.average_with_mirror), "off" not
            to, "auto" to do it when that lowers the trial checkpoint's validation loss (mirror.choose_mirror).

    Returns:
        Where the winner went and its test metrics.
    """
    import keras  # TensorFlow loads only when a model is needed, so ranking stays fast.

    from tuner.model.hypermodel import build_hypermodel, build_model

    dataset = load_run_dataset(record) if dataset is None else dataset  # the script passes the one it loaded
    if len(dataset.y_test) == 0:
        raise TunerUsageError("the prepared dataset has no test images; prepare it again with --test-fraction above 0.")
    search = record.search
    values = winner.configuration()
    epochs = retrain_epochs(winner, search) if retrain else None
    hypermodel = build_hypermodel(search, dataset)
    # The trial's own best-epoch weights: the winner itself with --no-retrain, else only the judge of the mirror.
    checkpoint = (load_checkpoint(run, winner.trial, build_model(hypermodel, values), required=not retrain)
                  if not retrain or tta == "auto" else None)
    model = retrain_configuration(dataset, search, values, epochs, run.retrain_tensorboard) if epochs else checkpoint
    mirror = choose_mirror(tta, checkpoint, dataset)
    # What is scored is what is saved and exported: with the mirror, both passes are inside the saved model.
    final = average_with_mirror(model) if mirror.use else model
    predicted, probability = decide(final.predict(dataset.x_test, batch_size=256, verbose=0))
    test = evaluate_on_test(final, dataset, predicted)
    mistakes = find_mistakes(dataset.y_test, predicted, probability, dataset.class_names, dataset.test_files)
    exports = export_winner(model, dataset, predicted, int8, search.seed, mirror.use) if export or int8 else []
    metadata = {
        "trial_id": winner.trial,
        "source": "retrained on train+validation" if retrain else "the trial's best-epoch weights",
        "epochs": epochs,
        "class_names": list(dataset.class_names),
        "img_size": dataset.img_size,
        "color": dataset.color,
        "input_shape": list(dataset.input_shape),
        "hyperparameters": values,
        "validation": {"val_loss": winner.val_loss, "val_accuracy": winner.val_accuracy, "best_epoch": winner.best_epoch,
                       **winner.to_record(CONFIRM_COLUMNS)},
        "test": test,
        "exports": {item.kind: item.check for item in exports},
        "mirror_average": mirror.to_json(),
        "footprint": winner.to_record(FOOTPRINT_COLUMNS),
        "dataset": {"path": record.dataset.path, "identity": dataset_identity(dataset),
                    "fingerprint": dataset.manifest.get("fingerprint")},
        "seed": search.seed,
        "run_dir": str(run.root.resolve()),
        "keras_version": keras.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    model_dir = publish_winner(run, final, metadata, {item.file_name: item.content for item in exports})
    return Winner(model_dir, winner.trial, retrain, epochs, test["loss"], test["accuracy"], list(dataset.class_names),
                  test["confusion_matrix"], test["per_class"], test["images"], tuple(test["accuracy_interval"]),
                  metadata["exports"], mistakes, mirror)


def retrain_epochs(winner: TrialRow, search: SearchSettings) -> int:
    """How long the winner is retrained: the epoch of its best val_loss (the median over seeds when confirmed, which
    is steadier than one run's), twice that for the modern space.

    The search compares configurations at --epochs; the one model that is kept is trained once. A modern model's
    learning rate decays along a cosine over the retrain's own length, so a longer retrain anneals more slowly rather
    than training on at a high rate. Retraining the 4 configurations that had won benchmark splits (batch norm or not,
    flatten or global average pooling; 11 pairs of split and configuration) for about twice their epochs made 99 test
    errors instead of 121, and more in none of the 11 (BENCHMARKS.md, "Better models"). The tutorial space's constant
    rate keeps its best epoch, as the tutorial does.
    """
    best = int(winner.median_best_epoch or winner.best_epoch or search.epochs)
    return best * MODERN_RETRAIN_FACTOR if search.space == MODERN else best


def retrain_configuration(dataset: PreparedDataset, search: SearchSettings, values: dict[str, Any], epochs: int,
                          log_dir: Path) -> Any:
    """A configuration built afresh, seeded with the search's --seed, and trained on train + validation for `epochs`
    (the winner's retrain, and bench/selection.py's of every confirmed configuration)."""
    import keras

    from tuner.model.hypermodel import build_hypermodel, build_model, steps_per_epoch

    keras.utils.set_random_seed(search.seed)
    # The retrain's learning rate (a modern space's) decays over its own steps: train + validation, its epochs.
    total_steps = steps_per_epoch(len(dataset.y_train) + len(dataset.y_val), search.batch_size) * epochs
    model = build_model(build_hypermodel(search, dataset), values, total_steps)
    _fit_on_train_and_validation(model, dataset, search, epochs, log_dir)
    return model


def load_checkpoint(run: Run, trial: str, model: Any, required: bool) -> Any | None:
    """`model` (built for `trial`'s configuration) with the trial's best-epoch weights; None if it saved none and
    they are not `required` (a damaged file is refused either way)."""
    from tuner.search.kerastuner import checkpoint_path  # loads KerasTuner, which only a model's use needs

    checkpoint = checkpoint_path(run.trial_dir(trial))
    try:
        check_regular_file(checkpoint, "checkpoint")  # h5py would block on a FIFO and read a device without end
    except FileNotFoundError:
        if not required:
            return None
        raise TunerUsageError(f"trial {trial} has no saved weights ({checkpoint} is missing); run report.py without --no-retrain.") from None
    # The checkpoint holds Adam's state too; building the optimizer first lets it load instead of being skipped.
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(str(checkpoint))
    except Exception as error:  # h5py and Keras raise OSError, ValueError or KeyError for a damaged file
        instead = "without --no-retrain to retrain the winner instead" if required else "with --tta on or --tta off, which do not read it"
        raise TunerUsageError(
            f"'{checkpoint}' is damaged ({' '.join(str(error).split())[:160] or type(error).__name__}); run report.py {instead}."
        ) from None
    return model


def _fit_on_train_and_validation(model: Any, dataset: PreparedDataset, search: SearchSettings, epochs: int,
                                 log_dir: Path) -> list[dict[str, Any]]:
    from tuner.model.pipeline import retraining_pipeline
    from tuner.model.training import TrainingPlan, build_callbacks, fit

    train = retraining_pipeline(dataset, search.batch_size, search.seed)
    images = len(dataset.y_train) + len(dataset.y_val)
    # A rerun replaces the previous retraining's curve instead of drawing over it.
    shutil.rmtree(log_dir, ignore_errors=True)
    log.info("Retraining on %d train+validation images for %d epoch(s)...", images, epochs)
    # No validation split is left to stop early on: the epoch count was chosen on it already.
    callbacks, curve = build_callbacks(TrainingPlan(tensorboard_dir=log_dir, progress_label="retrain"))
    fit(model, train, epochs=epochs, callbacks=callbacks)
    return curve.epochs


def evaluate_on_test(model: Any, dataset: PreparedDataset, predicted: np.ndarray) -> dict[str, Any]:
    """Score a model on the test split: loss, accuracy, confusion matrix and per-class precision and recall.

    Args:
        model: the model (its loss is computed here).
        dataset: the prepared dataset.
        predicted: the model's class index for each test image (head.decide of its predictions).

    Returns:
        A JSON-ready dict: loss, accuracy (the share of correct predictions), correct, images,
        accuracy_interval ([low, high], the 95% Wilson interval) and interval (its name), confusion_matrix (rows: true class,
        columns: predicted class, in class-name order) and per_class (class, precision,
        recall, support; precision is None for a class never predicted).
    """
    y_true = dataset.y_test.astype(np.int64)
    scores = model.evaluate(dataset.x_test, Head(dataset.num_classes).labels(y_true), batch_size=256,
                            verbose=0, return_dict=True)
    count = dataset.num_classes
    matrix = np.zeros((count, count), dtype=np.int64)
    np.add.at(matrix, (y_true, predicted), 1)
    per_class = []
    for index, name in enumerate(dataset.class_names):
        hits, predicted_as, actual = matrix[index, index], matrix[:, index].sum(), matrix[index, :].sum()
        per_class.append({"class": name, "precision": float(hits / predicted_as) if predicted_as else None,
                          "recall": float(hits / actual) if actual else None, "support": int(actual)})
    correct = int(np.trace(matrix))
    return {"loss": float(scores["loss"]), "accuracy": correct / len(y_true), "correct": correct, "images": int(len(y_true)),
            "accuracy_interval": list(wilson_interval(correct, len(y_true))), "interval": INTERVAL_NAME,
            "confusion_matrix": matrix.tolist(), "per_class": per_class}


def publish_winner(run: Run, model: Any, metadata: dict[str, Any], files: dict[str, bytes] | None = None) -> Path:
    """Save model.keras, `files` (name -> contents: the LiteRT exports) and metadata.json to RUN/best/, replacing
    any previous winner in one rename.

    All files are written into a hidden staging folder first; metadata.json, which
    predict.py requires, is written last. The old RUN/best is renamed aside just before the
    staging folder takes its name, so a kill at any moment leaves the old winner, the new
    one, or no RUN/best at all, never a mix; leftovers are removed on the next run.

    Returns:
        RUN/best.
    """
    final = run.best
    for leftover in run.root.glob(f".{final.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = make_staging_dir(run.root, prefix=f".{final.name}.new-")
    retired = run.root / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        model.save(staging / MODEL_FILE)
        for name, content in (files or {}).items():
            atomic_write_bytes(staging / name, content)
        atomic_write_json(staging / METADATA_FILE, metadata)
        if final.exists():
            os.replace(final, retired)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not final.exists():
            os.replace(retired, final)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return final


def format_winner(winner: Winner) -> str:
    """The winner's test score, confusion matrix, per-class precision and recall and its mistakes, as text."""
    from tabulate import tabulate

    how = f"retrained for {winner.epochs} epoch(s) on train+validation" if winner.retrained else "the trial's best-epoch weights"
    lines = [f"winner: trial {winner.trial_id} ({how})",
             f"test ({winner.test_images} images, scored once): loss {winner.test_loss:.4f}, accuracy {winner.test_accuracy:.4f} "
             f"(95% interval {winner.test_interval[0]:.3f}-{winner.test_interval[1]:.3f})",
             f"mirror averaging (each image's answer averaged with its mirror image's): "
             f"{'on' if winner.mirror.use else 'off'}, {winner.mirror.reason}",
             "", "confusion matrix (rows: true class, columns: predicted):"]
    names = [for_terminal(name) for name in winner.class_names]  # class names are folder names: data, not markup
    lines.append(tabulate([[name, *counts] for name, counts in zip(names, winner.confusion_matrix)],
                          headers=["", *names], tablefmt="simple"))
    lines.append("")
    lines.append(tabulate([[for_terminal(item["class"]), _ratio(item["precision"]), _ratio(item["recall"]), item["support"]]
                           for item in winner.per_class], headers=["class", "precision", "recall", "support"],
                          tablefmt="simple", disable_numparse=True, colalign=["left", "right", "right", "right"]))
    lines += ["", format_mistakes(winner.misclassified)]
    if winner.exports:
        lines += ["", *format_export_checks(winner.exports)]
    saved_beside = [*(check["file"] for check in winner.exports.values()), METADATA_FILE]
    lines += ["", f"saved: {winner.model_dir / MODEL_FILE} (+ {', '.join(saved_beside)})"]
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
