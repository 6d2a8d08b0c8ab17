"""The test images a model gets wrong: which row, its source file, the true and predicted class, and how sure it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.names import for_terminal


@dataclass(frozen=True)
class Mistake:
    """One misclassified test image."""

    index: int  # its row in x_test / y_test
    file: str | None  # its source file, relative to the data folder (the manifest's test_files); None if unknown
    true: str  # class names
    predicted: str
    probability: float  # the probability the model gave the class it predicted

    def to_json(self) -> dict[str, Any]:
        """What results.json records of the mistake."""
        return {"index": self.index, "file": self.file, "true": self.true, "predicted": self.predicted,
                "probability": self.probability}


def find_mistakes(y_true: np.ndarray, predicted: np.ndarray, probability: np.ndarray, class_names: list[str],
                  files: list[str] | None) -> tuple[Mistake, ...]:
    """The misclassified test images, most confident first.

    A confident mistake is the likeliest to be a mislabelled or junk image rather than a hard one,
    so those come first; equal probabilities keep the test split's order.

    Args:
        y_true: the true class index of each test image.
        predicted, probability: head.decide of the model's output for the same images.
        class_names: the dataset's class names, in label order.
        files: the dataset's test_files (aligned with y_true), or None when the cache does not record them.

    Returns:
        One Mistake per image whose predicted class is not its true class; as many as the
        confusion matrix's off-diagonal sum.
    """
    y_true, predicted = np.asarray(y_true, np.int64), np.asarray(predicted, np.int64)
    probability = np.asarray(probability, np.float64)
    if not len(y_true) == len(predicted) == len(probability) or (files is not None and len(files) != len(y_true)):
        raise ValueError(f"expected one prediction, probability (and file) per test image ({len(y_true)}), got "
                         f"{len(predicted)}, {len(probability)}" + ("" if files is None else f" and {len(files)}"))
    wrong = np.flatnonzero(y_true != predicted)
    # A stable sort on the negated probability: highest first, ties in row order.
    wrong = wrong[np.argsort(-probability[wrong], kind="stable")]
    return tuple(Mistake(int(index), None if files is None else files[index], class_names[y_true[index]],
                         class_names[predicted[index]], float(probability[index])) for index in wrong)


def format_mistakes(mistakes: tuple[Mistake, ...] | list[Mistake], shown: int = 3) -> str:
    """One line: how many test images were misclassified and the most confident few, names escaped for a terminal."""
    if not mistakes:
        return "no misclassified test images"
    count = len(mistakes)
    examples = ", ".join(
        f"{for_terminal(item.file) if item.file is not None else f'test image {item.index}'} (true "
        f"{for_terminal(item.true)}, predicted {for_terminal(item.predicted)}, p={item.probability:.2f})"
        for item in mistakes[:shown])
    return f"{count} misclassified test image{'' if count == 1 else 's'}; the most confident: {examples}"
