"""The two named search spaces as data: the tutorial's grid, and the modern recipe searched beside the same core.

Both spaces share the core (conv_layers, nodes, dense_layers), whose values the core flags set.
`tutorial` is the tutorial's 27-configuration grid, with the tool's optional extras (--learning-rates,
--dropouts, --augment) and no recipe. `modern` adds the recipe below, whose ranges are fixed here:
what moves small CNNs on small image sets is the training recipe more than layer counts (BENCHMARKS.md,
"Better models").
Here rather than in hypermodel.py, so the report and the run checks know the space without Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

TUTORIAL = "tutorial"
MODERN = "modern"
SPACE_NAMES = (TUTORIAL, MODERN)
# The space a search runs without --space: the recipe too (BENCHMARKS.md, "Better models"). A run's settings.json
# of format 1 written before spaces existed has no space: it searched the tutorial's (rundir/record.py).
DEFAULT_SPACE = MODERN
# The search a space gets when --tuner is omitted: the tutorial's grid is enumerated, all 27 configurations as in the
# tutorial's loop; the modern space has a continuous learning rate and no grid, and successive halving tries more
# configurations in less time than training each one in full (BENCHMARKS.md, "Better models").
DEFAULT_TUNERS = {TUTORIAL: "grid", MODERN: "asha"}


@dataclass(frozen=True)
class FloatRange:
    """A continuous hyperparameter: any value from low to high, sampled evenly or on a log scale.

    `default` is the value of a model built with no value chosen (not part of the range's identity).
    """

    low: float
    high: float
    log: bool = False
    default: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high if self.log else self.low < self.high):
            raise ValueError(f"a FloatRange needs low < high (and low > 0 on a log scale), got {self.low}..{self.high}")

    def contains(self, value: Any) -> bool:
        """Whether `value` is a number in the range (a float written back to JSON keeps its exact value)."""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return is_number and math.isfinite(value) and self.low <= value <= self.high

    def position(self, value: float) -> float:
        """Where `value` lies in the range, from 0 (low) to 1 (high), on the range's own scale."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)


# A dimension is the values a Choice (or Boolean) tries, or a FloatRange.
Dimension = Union[tuple[Any, ...], FloatRange]

# The modern space's recipe, in declaration order; each dimension's first value is the tutorial's (its default),
# so a model built with no value chosen is the tutorial's model with a cosine-decayed learning rate.
MODERN_RECIPE: dict[str, Dimension] = {
    # Doubling per block keeps the last block at --nodes (hypermodel.block_filters): the early blocks, which see
    # the largest feature maps and cost the most compute, get fewer filters, and a model is never wider than --nodes.
    "filters": ("constant", "double"),
    # Convolutions per block before its pooling: the tutorial's one (3x3, no padding), or two 3x3 convolutions padded
    # to keep the block's size, the textbook small CNN's block (two stacked 3x3 see 5x5 with one more ReLU between).
    # Trained once on the train split, 3 blocks of two made 28 test errors over the 5 sample splits (20 with filters
    # doubling to 64) where blocks of one made 38 (BENCHMARKS.md, "A search worth running").
    "convs_per_block": (1, 2),
    # Conv without bias, then BatchNormalization, then ReLU: the conversion folds BN into the conv (LiteRT).
    "batch_norm": (False, True),
    # Global average pooling: a head whose size does not grow with the image (flatten's does, with the side squared).
    "head": ("flatten", "gap"),
    # A Choice, not a Float: exact tenths in reports and trial files, and 0.5 is as far as small CNNs need.
    "dropout": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    # Adam's learning rate, the first thing to tune (Google's tuning playbook), over two decades around Keras'
    # default 0.001, on a log scale; it decays along a cosine over the trial's --epochs.
    "learning_rate": FloatRange(1e-4, 1e-2, log=True, default=1e-3),
    # The existing training-time augmentation (random flips, shifts, zoom): it cut animals5's test errors by 29%.
    "augment": ("off", "on"),
}


# The modern recipe's baseline: the configuration successive halving proposes first and always continues to the full
# epochs (halving.SuccessiveHalvingOracle), and the champion a challenger must clearly beat to win (confirm.selection),
# with the most conv blocks the images allow, the --nodes nearest BASELINE_NODES and the fewest dense layers
# (modern_baseline). The textbook small CNN: blocks of two 3x3 convolutions with batch norm, filters doubling per block
# to 64 in the last, global average pooling, some dropout, augmentation, Adam at 3x Keras' default rate with cosine
# decay. A search that ranks by its low rungs alone loses it: augmentation and batch norm at a high learning rate start
# slowly. Trained once for 20 epochs on the train split of the 5 sample splits, it made 20 test errors; with 128
# filters in the last block 28; blocks of one convolution and two dense layers of 128 on top (the baseline before blocks
# of two existed) 38 (BENCHMARKS.md, "A search worth running").
MODERN_BASELINE: dict[str, Any] = {"filters": "double", "convs_per_block": 2, "batch_norm": True, "head": "gap",
                                   "dropout": 0.2, "learning_rate": 0.003, "augment": "on"}
BASELINE_NODES = 64


def modern_baseline(conv_layers: list[int], nodes: list[int], dense_layers: list[int], image_side: int) -> dict[str, Any]:
    """The baseline configuration of a modern space whose core is these values, for images of `image_side` pixels.

    The most conv blocks the images allow (more would be a failed trial), the --nodes nearest BASELINE_NODES by ratio
    (the larger of two as near) and the fewest dense layers (the pooled features go straight to the output layer).
    """
    convs = MODERN_BASELINE["convs_per_block"]
    fitting = [layers for layers in conv_layers if smallest_side_for(layers, convs) <= image_side] or conv_layers
    width = min(nodes, key=lambda value: (abs(math.log(value / BASELINE_NODES)), -value))
    return {"conv_layers": max(fitting), "nodes": width, "dense_layers": min(dense_layers), **MODERN_BASELINE}


# The size (search.space_size) of a space with a continuous dimension: more configurations than any search runs,
# so progress lines count the trials a search plans (--max-trials, or its default), never the space.
UNCOUNTABLE_SPACE = 2**31 - 1


def has_grid(space: str) -> bool:
    """Whether a grid search can enumerate the space (it cannot enumerate a FloatRange)."""
    return space == TUTORIAL or not any(isinstance(item, FloatRange) for item in MODERN_RECIPE.values())


def smallest_side_for(conv_layers: int, convs_per_block: int = 1) -> int:
    """The smallest image side that survives `conv_layers` blocks of a 2x2 pool after one 3x3 unpadded convolution
    (the tutorial's block), or after two padded ones (which keep the side: only the pool halves it).

    Here rather than in hypermodel.py, so the report can use it without loading Keras.
    """
    side = 1
    for _ in range(conv_layers):
        side = side * 2 + (2 if convs_per_block == 1 else 0)
    return side
