"""The one rule for the model's output: two classes get one sigmoid unit, more get a softmax."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Head:
    """The output layer, loss and label type that go with a number of classes.

    Two classes train one sigmoid unit with binary cross-entropy (float labels, as Keras
    wants for it); more train a softmax with sparse categorical cross-entropy (integer labels).
    """

    num_classes: int

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2 for a classifier, got {self.num_classes}.")

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def units(self) -> int:
        return 1 if self.binary else self.num_classes

    @property
    def activation(self) -> str:
        return "sigmoid" if self.binary else "softmax"

    @property
    def loss(self) -> str:
        return "binary_crossentropy" if self.binary else "sparse_categorical_crossentropy"

    def labels(self, y: np.ndarray) -> np.ndarray:
        """Integer labels in the dtype this head's loss expects."""
        return np.asarray(y).astype(np.float32 if self.binary else np.int32)


def decide(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn model outputs into class indices and the probability of each chosen class.

    A single sigmoid unit's output is the probability of class 1; like Keras' binary
    accuracy, p > 0.5 means class 1. Softmax outputs pick the largest.

    Args:
        probabilities: model output, shape (images, 1) or (images, classes).

    Returns:
        The class index per image and the probability of that class.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"expected model output of shape (images, units), got {probabilities.shape}.")
    if probabilities.shape[1] == 1:
        positive = probabilities[:, 0]
        indices = (positive > 0.5).astype(np.int64)
        return indices, np.where(indices == 1, positive, 1.0 - positive)
    indices = probabilities.argmax(axis=1)
    return indices, probabilities[np.arange(len(indices)), indices]
