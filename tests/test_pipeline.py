"""tuner.model.pipeline: the one tf.data pipeline for trials and retraining: uint8 images, the head's labels, seeded order."""

import numpy as np

from tests.tiny_data import write_tiny_prepared
from tuner.data.cache import load_prepared
from tuner.model.pipeline import retraining_pipeline, search_pipelines


def batches(pipeline):
    return [(x.numpy(), y.numpy()) for x, y in pipeline]


def test_a_trial_gets_shuffled_training_batches_and_whole_validation_batches(tmp_path):
    dataset = load_prepared(write_tiny_prepared(tmp_path / "p", per_class=(10, 4, 4)))
    train, validation = search_pipelines(dataset, batch_size=8, seed=1)
    train_batches, validation_batches = batches(train), batches(validation)
    assert [len(y) for _, y in train_batches] == [8, 8, 4] and len(validation_batches) == 1
    assert train_batches[0][0].dtype == np.uint8 and train_batches[0][1].dtype == np.float32  # binary: float labels
    assert np.array_equal(validation_batches[0][1], dataset.y_val)  # validation keeps its order
    again, _ = search_pipelines(dataset, batch_size=8, seed=1)
    other, _ = search_pipelines(dataset, batch_size=8, seed=2)
    assert np.array_equal(batches(again)[0][1], train_batches[0][1])
    assert sorted(np.concatenate([y for _, y in train_batches])) == sorted(dataset.y_train)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(batches(other), train_batches))


def test_more_classes_get_integer_labels_and_retraining_uses_train_plus_validation(tmp_path):
    dataset = load_prepared(write_tiny_prepared(tmp_path / "p", per_class=(6, 2, 2), num_classes=3))
    retraining = batches(retraining_pipeline(dataset, batch_size=100, seed=1))
    assert len(retraining) == 1 and retraining[0][1].dtype == np.int32
    assert sorted(retraining[0][1]) == sorted(np.concatenate([dataset.y_train, dataset.y_val]))
