"""Proposals near what works (`--proposals neighbours`): a configuration one or two steps from the best so far.

A uniform draw of the modern space mostly proposes what the benchmark already shows is worse than the
recipe's baseline (random challengers' val_loss was 1.3 to 2.7x the baseline's on the sample). A neighbour
keeps what the parent does and moves one or two of its dimensions one step: the next value of an ordered
choice (one more block, the next --nodes), another value of an unordered one, a learning rate within 3x.
Its challengers came within the seed noise of the baseline (0.4 to 1.1x), but a step's cost is not bounded:
on larger image sets the search climbs to wider models at several times the time, so it is an option, not
the default (BENCHMARKS.md, "A search worth running").
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Iterable

# Dimensions a neighbour never moves: the recipe's parts the benchmark settled (batch norm and global average
# pooling won in every measurement; BENCHMARKS.md, "Better models"), so no step is spent on them.
SETTLED = frozenset({"batch_norm", "head"})
# A continuous dimension's step: a log-scale value is multiplied by up to this factor either way (a linear one
# moves by up to this share of its range).
LOG_STEP = 3.0
LINEAR_STEP = 0.2
# Dimensions moved per neighbour: one or two, drawn evenly.
MOVES = (1, 2)
# Neighbours drawn before giving up on finding one not tried yet (the caller then draws at random).
ATTEMPTS = 50


def is_range(hyperparameter: Any) -> bool:
    """Whether a KerasTuner hyperparameter is a range (Float, Int) rather than a Choice or a Boolean (a Float also
    has `values`: the grid KerasTuner would enumerate, which a step does not keep to)."""
    return hasattr(hyperparameter, "min_value") and hasattr(hyperparameter, "max_value")


def step(hyperparameter: Any, value: Any, rng: random.Random) -> Any:
    """One step from `value` along one KerasTuner hyperparameter; `value` itself when it has nowhere to go."""
    if is_range(hyperparameter):
        low, high = hyperparameter.min_value, hyperparameter.max_value
        if hyperparameter.sampling == "log":
            moved = value * math.exp(rng.uniform(-math.log(LOG_STEP), math.log(LOG_STEP)))
        else:
            moved = value + rng.uniform(-LINEAR_STEP, LINEAR_STEP) * (high - low)
        moved = min(max(moved, low), high)
        return round(moved) if isinstance(low, int) and isinstance(high, int) else moved
    values = list(hyperparameter.values)
    if value not in values:
        return rng.choice(values)
    ordered = all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in values)
    if ordered:
        ranked = sorted(values)
        index = ranked.index(value)
        nearby = [ranked[i] for i in (index - 1, index + 1) if 0 <= i < len(ranked)]
    else:
        nearby = [item for item in values if item != value]
    return rng.choice(nearby) if nearby else value


def neighbour(parent: dict[str, Any], space: Iterable[Any], rng: random.Random,
              allowed: Callable[[dict[str, Any]], bool] = lambda values: True) -> dict[str, Any] | None:
    """A configuration one or two steps from `parent` over the `space`'s movable hyperparameters, that `allowed`
    accepts (e.g. not tried yet, fits the images); None when ATTEMPTS draws found none."""
    movable = [hyperparameter for hyperparameter in space if hyperparameter.name not in SETTLED
               and hyperparameter.name in parent]
    if not movable:
        return None
    for _ in range(ATTEMPTS):
        values = dict(parent)
        for hyperparameter in rng.sample(movable, min(rng.choice(MOVES), len(movable))):
            values[hyperparameter.name] = step(hyperparameter, values[hyperparameter.name], rng)
        if values != parent and allowed(values):
            return values
    return None
