"""tuner.winner.mistakes: the misclassified test images, most confident first, named by their source files."""

import numpy as np
import pytest

from tuner.model.head import decide
from tuner.winner.mistakes import Mistake, find_mistakes, format_mistakes


def off_diagonal(y_true, predicted, classes):
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (y_true, predicted), 1)
    return int(matrix.sum() - np.trace(matrix))


def test_sigmoid_mistakes_carry_the_probability_of_the_predicted_class():
    # One sigmoid unit: the output is P(class 1), so a wrong "cat" at 0.1 was predicted with p = 0.9.
    outputs = np.array([[0.9], [0.1], [0.7], [0.4], [0.2], [0.55]], np.float32)
    y_true = np.array([1, 1, 0, 1, 0, 0])
    predicted, probability = decide(outputs)
    files = [f"{'dog' if label else 'cat'}/{row}.png" for row, label in enumerate(y_true)]
    mistakes = find_mistakes(y_true, predicted, probability, ["cat", "dog"], files)
    assert len(mistakes) == off_diagonal(y_true, predicted, 2) == 4
    assert [item.index for item in mistakes] == [1, 2, 3, 5]  # 0.9, 0.7, 0.6, 0.55
    assert mistakes[0] == Mistake(1, "dog/1.png", "dog", "cat", pytest.approx(0.9))
    assert mistakes[1].to_json() == {"index": 2, "file": "cat/2.png", "true": "cat", "predicted": "dog",
                                     "probability": pytest.approx(0.7)}
    assert all(isinstance(item.probability, float) and isinstance(item.index, int) for item in mistakes)


def test_softmax_mistakes_most_confident_first_ties_in_row_order():
    outputs = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0.9, 0.05, 0.05]])
    y_true = np.array([0, 0, 1, 2, 0])
    predicted, probability = decide(outputs)
    mistakes = find_mistakes(y_true, predicted, probability, ["a", "b", "c"], None)
    assert len(mistakes) == off_diagonal(y_true, predicted, 3) == 3
    assert [(item.index, item.true, item.predicted) for item in mistakes] == [(0, "a", "b"), (2, "b", "c"), (3, "c", "a")]
    assert [item.probability for item in mistakes] == pytest.approx([0.8, 0.8, 0.6])
    assert all(item.file is None for item in mistakes)  # a cache prepared before test_files: names unknown


def test_a_perfect_model_has_no_mistakes():
    assert find_mistakes(np.array([0, 1]), np.array([0, 1]), np.array([0.9, 0.8]), ["a", "b"], ["a/0", "b/1"]) == ()
    assert format_mistakes(()) == "no misclassified test images"


def test_files_that_do_not_align_are_refused():
    with pytest.raises(ValueError, match="one prediction, probability \\(and file\\) per test image \\(2\\)"):
        find_mistakes(np.array([0, 1]), np.array([1, 0]), np.array([0.9, 0.8]), ["a", "b"], ["a/0"])


def test_the_terminal_line_shows_the_top_three_escaped():
    mistakes = [Mistake(4, "ca\tt/\x1b[31mred.png", "ca\tt", "dog", 0.974), Mistake(0, None, "dog", "ca\tt", 0.9),
                Mistake(2, "dog/b.png", "dog", "ca\tt", 0.8), Mistake(1, "dog/c.png", "dog", "ca\tt", 0.7)]
    line = format_mistakes(mistakes)
    assert line == ("4 misclassified test images; the most confident: ca\\tt/\\x1b[31mred.png (true ca\\tt, predicted dog, "
                    "p=0.97), test image 0 (true dog, predicted ca\\tt, p=0.90), dog/b.png (true dog, predicted ca\\tt, p=0.80)")
    assert "\n" not in line and "\x1b" not in line
    assert format_mistakes(mistakes[:1]).startswith("1 misclassified test image; ")
