"""tuner.model.head: the one rule for two classes (one sigmoid unit) and more (softmax), in training and prediction."""

import numpy as np
import pytest

from tuner.model.head import Head, decide


def test_two_classes_get_one_sigmoid_unit_with_float_labels():
    head = Head(2)
    assert (head.units, head.activation, head.loss) == (1, "sigmoid", "binary_crossentropy")
    assert head.labels(np.array([0, 1])).dtype == np.float32


def test_more_classes_get_a_softmax_with_integer_labels():
    head = Head(5)
    assert (head.units, head.activation, head.loss) == (5, "softmax", "sparse_categorical_crossentropy")
    assert head.labels(np.array([0, 4])).dtype == np.int32


def test_fewer_than_two_classes_are_refused():
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        Head(1)


def test_decide_matches_the_heads_of_both_kinds():
    indices, probabilities = decide(np.array([[0.2], [0.5], [0.9]]))
    assert indices.tolist() == [0, 0, 1]  # p > 0.5 is class 1, as Keras' binary accuracy counts it
    assert probabilities.tolist() == pytest.approx([0.8, 0.5, 0.9])
    indices, probabilities = decide(np.array([[0.1, 0.7, 0.2]]))
    assert indices.tolist() == [1] and probabilities.tolist() == pytest.approx([0.7])
    with pytest.raises(ValueError, match="expected model output of shape"):
        decide(np.zeros(3))
