"""The figures only report.html shows: parallel coordinates of every trial, the hyperparameter importances, and
thumbnails of test images, each as PNG bytes."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tuner.report.plot_data import short_value
from tuner.report.plots import FIGURE_WIDTH, VAL_LOSS_LABEL, png_bytes
from tuner.trials.rows import TrialRow

# A parallel-coordinates axis labels at most about this many of its values.
AXIS_LABELS = 8


def parallel_coordinates_png(ranking: Sequence[TrialRow], names: Sequence[str], space: dict[str, list[Any]]) -> bytes | None:
    """Every ranked trial as a line across one vertical axis per hyperparameter and a last one for val_loss,
    coloured by val_loss (a colorbar says how), the winner drawn thick; None without a ranked trial.

    A hyperparameter's axis spaces its searched values evenly, in the order the space lists
    them, so a choice of strings reads like a range of numbers; trials sharing a value are
    spread a little around it, so that a hundred lines through one point stay countable.
    """
    from matplotlib import cm, colormaps, colors
    from matplotlib.figure import Figure

    if not ranking:
        return None
    losses = np.array([row.val_loss for row in ranking], dtype=float)
    low, high = float(losses.min()), float(losses.max())
    span = high - low or 1.0
    norm = colors.Normalize(low, high if high > low else low + 1.0)
    # Reversed, so the best (lowest) val_loss is the brightest line.
    colour = colormaps["viridis_r"]
    axes_names = [*names, "val_loss"]
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, size=(len(ranking), len(names)))
    # At most FIGURE_WIDTH, the width report.html shows a figure at its own size: a wider one would be shrunk, its
    # labels with it; the axes move closer instead.
    figure = Figure(figsize=(min(max(1.3 * len(axes_names), 8), FIGURE_WIDTH), 5.5), layout="constrained")
    axes = figure.add_subplot()

    def position(name: str, value: Any) -> float:
        values = [str(item) for item in space.get(name) or []]
        if str(value) not in values:
            return math.nan  # a conditional hyperparameter this trial did not set
        # One value searched: the middle of the axis, where its lines do not sit on the frame.
        return values.index(str(value)) / (len(values) - 1) if len(values) > 1 else 0.5

    order = sorted(range(len(ranking)), key=lambda index: -losses[index])  # the best drawn last, on top
    for index in order:
        row = ranking[index]
        ys = [position(name, row.hyperparameters.get(name)) + jitter[index, column] for column, name in enumerate(names)]
        ys.append((losses[index] - low) / span)
        winner = index == 0
        axes.plot(range(len(axes_names)), ys, color="black" if winner else colour(norm(losses[index])),
                  linewidth=3.5 if winner else 1.2, alpha=1.0 if winner else 0.75, zorder=3 if winner else 2,
                  label=f"winner (trial {row.trial})" if winner else None)
    for column, name in enumerate(names):
        axes.axvline(column, color="grey", linewidth=1)
        values = space.get(name) or []
        # A continuous hyperparameter lists every value tried: every few of them are labelled, the ends always,
        # so the labels stay apart.
        step = math.ceil(len(values) / AXIS_LABELS)
        for value in [*values[:-1:step], *values[-1:]]:
            axes.annotate(short_value(value), (column, position(name, value)), xytext=(-5, 0),
                          textcoords="offset points", ha="right", va="center", fontsize="small",
                          bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    axes.axvline(len(names), color="grey", linewidth=1)
    for fraction in (0.0, 0.5, 1.0):
        axes.annotate(f"{low + fraction * span:.4g}", (len(names), fraction), xytext=(5, 0), textcoords="offset points",
                      ha="left", va="center", fontsize="small")
    axes.set_xticks(range(len(axes_names)), axes_names)
    axes.set_yticks([])
    axes.set_xlim(-0.5, len(names) + 0.5)
    axes.set_ylim(-0.08, 1.08)
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    axes.set_title(f"Every ranked trial ({len(ranking)}) across its hyperparameter values and its validation loss")
    figure.legend(loc="outside lower center", fontsize="small")
    figure.colorbar(cm.ScalarMappable(norm=norm, cmap=colour), ax=axes, label=VAL_LOSS_LABEL, shrink=0.9)
    return png_bytes(figure)


def importances_png(values: Sequence[tuple[str, float]], method: str) -> bytes | None:
    """A horizontal bar per hyperparameter, the most important on top; None when there is nothing to draw."""
    from matplotlib.figure import Figure

    if not values:
        return None
    figure = Figure(figsize=(8, 1.4 + 0.45 * len(values)), layout="constrained")
    axes = figure.add_subplot()
    names = [name for name, _ in values][::-1]
    bars = axes.barh(names, [importance for _, importance in values][::-1], color="tab:blue")
    axes.bar_label(bars, fmt="%.3f", padding=3, fontsize="small")
    axes.set(xlabel=f"importance ({method}; higher: val_loss depends more on it)", ylabel="hyperparameter",
             title="Which hyperparameters mattered for the validation loss")
    axes.margins(x=0.15)
    axes.grid(alpha=0.3, axis="x")
    return png_bytes(figure)


def thumbnail_png(image: np.ndarray, side: int = 96) -> bytes:
    """A test image (uint8 RGB or grayscale, H x W x C) as a PNG about `side` pixels wide.

    Small images are enlarged by a whole factor with nearest-neighbour, so each pixel stays a
    crisp square (a 32 px image is shown as the 3 x 3 blocks the model saw, not smoothed);
    larger ones are shrunk with area averaging.
    """
    import cv2

    pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    height, width = pixels.shape[:2]
    if max(height, width) < side:
        factor = max(side // max(height, width), 1)
        pixels = np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)
    elif max(height, width) > side:
        scale = side / max(height, width)
        pixels = cv2.resize(pixels, (max(round(width * scale), 1), max(round(height * scale), 1)),
                            interpolation=cv2.INTER_AREA)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)  # the arrays are RGB; OpenCV encodes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as PNG")
    return encoded.tobytes()
