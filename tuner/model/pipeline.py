"""The one tf.data pipeline that feeds cached uint8 arrays to Keras, for the search and for retraining."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tuner.data.cache import PreparedDataset
from tuner.model.head import Head

# Forward passes alone (validation) need no small batches; larger ones are just faster.
EVALUATION_BATCH_SIZE = 256


def training_pipeline(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled (reshuffled every epoch, seeded) batches of images and labels in the head's label type.

    The images stay uint8: the model rescales them itself, so nothing is copied to float.
    """
    return (
        tf.data.Dataset.from_tensor_slices((x, Head(num_classes).labels(y)))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_pipeline(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int) -> tf.data.Dataset:
    """Unshuffled, cached batches for validation during training."""
    return (
        tf.data.Dataset.from_tensor_slices((x, Head(num_classes).labels(y)))
        .batch(max(batch_size, EVALUATION_BATCH_SIZE))
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


def search_pipelines(dataset: PreparedDataset, batch_size: int, seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training and validation pipelines of a trial over a prepared dataset."""
    train = training_pipeline(dataset.x_train, dataset.y_train, dataset.num_classes, batch_size, seed)
    validation = evaluation_pipeline(dataset.x_val, dataset.y_val, dataset.num_classes, batch_size)
    return train, validation


def retraining_pipeline(dataset: PreparedDataset, batch_size: int, seed: int) -> tf.data.Dataset:
    """The winner's final training data: train and validation together, shuffled as a trial's."""
    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    return training_pipeline(x, y, dataset.num_classes, batch_size, seed)
