"""tuner.search.neighbours: one step along a dimension, and a neighbour of a configuration (no training)."""

import math
import random

import keras_tuner

from tuner.search.neighbours import SETTLED, neighbour, step


def modern_like_space():
    space = keras_tuner.HyperParameters()
    space.Choice("conv_layers", [1, 2, 3])
    space.Choice("nodes", [32, 64, 128])
    space.Choice("filters", ["constant", "double"])
    space.Boolean("batch_norm")
    space.Choice("head", ["flatten", "gap"])
    space.Choice("dropout", [0.0, 0.1, 0.2, 0.3])
    space.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    return space


PARENT = {"conv_layers": 3, "nodes": 64, "filters": "double", "batch_norm": True, "head": "gap", "dropout": 0.2,
          "learning_rate": 0.003}


def hyperparameter(space, name):
    return next(item for item in space.space if item.name == name)


def test_an_ordered_choice_moves_to_a_value_next_to_it_and_an_edge_value_inwards():
    space, rng = modern_like_space(), random.Random(0)
    assert {step(hyperparameter(space, "nodes"), 64, rng) for _ in range(50)} == {32, 128}
    assert {step(hyperparameter(space, "conv_layers"), 3, rng) for _ in range(50)} == {2}
    assert {step(hyperparameter(space, "dropout"), 0.0, rng) for _ in range(50)} == {0.1}


def test_an_unordered_choice_moves_to_another_value():
    space, rng = modern_like_space(), random.Random(0)
    assert {step(hyperparameter(space, "filters"), "double", rng) for _ in range(20)} == {"constant"}
    assert {step(hyperparameter(space, "batch_norm"), True, rng) for _ in range(20)} == {False}


def test_a_log_range_moves_within_3x_either_way_and_stays_in_the_range():
    space, rng = modern_like_space(), random.Random(0)
    rate = hyperparameter(space, "learning_rate")
    moved = [step(rate, 0.003, rng) for _ in range(200)]
    assert all(0.001 - 1e-12 <= value <= 0.009 + 1e-12 for value in moved)
    assert min(moved) < 0.0015 and max(moved) > 0.006  # the whole step is used, not a fixed grid
    assert all(1e-4 <= step(rate, 1.2e-4, rng) <= 3.6e-4 for _ in range(50))
    assert all(step(rate, 0.009, rng) <= 1e-2 for _ in range(50))


def test_a_neighbour_moves_one_or_two_dimensions_never_the_settled_ones_and_is_never_the_parent():
    space, rng = modern_like_space(), random.Random(1)
    moved_counts = set()
    for _ in range(200):
        values = neighbour(PARENT, space.space, rng)
        moved = {name for name in PARENT if values[name] != PARENT[name]}
        assert 1 <= len(moved) <= 2 and not moved & SETTLED
        moved_counts.add(len(moved))
        assert set(values) == set(PARENT)
    assert moved_counts == {1, 2}


def test_a_neighbour_is_one_the_caller_allows_or_none_when_none_is_left():
    space, rng = modern_like_space(), random.Random(2)
    values = neighbour(PARENT, space.space, rng, allowed=lambda values: values["nodes"] == 128)
    assert values["nodes"] == 128
    assert neighbour(PARENT, space.space, rng, allowed=lambda values: False) is None


def test_the_same_seed_gives_the_same_neighbours():
    space = modern_like_space()
    first = [neighbour(PARENT, space.space, random.Random(seed)) for seed in range(5)]
    assert first == [neighbour(PARENT, space.space, random.Random(seed)) for seed in range(5)]
    assert not any(math.isnan(values["learning_rate"]) for values in first)
