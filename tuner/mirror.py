"""Test-time augmentation: the winner's prediction averaged over each image and its left-right mirror.

Averaging a CNN's answers for an image and its mirror cuts its test errors wherever a mirrored image
keeps its label (animals, objects, scenes; BENCHMARKS.md, "Better models"). Where mirroring changes the label
(digits, letters, arrows) it would hurt, so by default it is decided on evidence: the winner's own search
checkpoint, scored on the validation split with and without the mirror (`mirror_helps`).

The averaging lives inside the saved model (`average_with_mirror`), so model.keras, its LiteRT exports and
predict.py all compute it, and the test score is the shipped model's. It uses standard Keras layers only
(the mirror is a fixed permutation matrix along the width), so the model still loads in safe mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MirrorDecision:
    """Whether the winner averages over mirrors, and the validation evidence it was decided on (None: not scored)."""

    use: bool
    reason: str
    val_loss_plain: float | None = None
    val_loss_mirrored: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"used": self.use, "reason": self.reason, "val_loss": self.val_loss_plain,
                "val_loss_mirrored": self.val_loss_mirrored}


def mirror_images(images: np.ndarray) -> np.ndarray:
    """Images of shape (N, H, W, C) mirrored left to right."""
    return images[:, :, ::-1, :]


def cross_entropy(probabilities: np.ndarray, y: np.ndarray) -> float:
    """The mean cross-entropy of a head's outputs (one sigmoid unit, or a softmax) against integer labels,
    clipped as Keras clips it, so it is the val_loss the search ranks by."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.int64)
    if p.shape[1] == 1:
        return float(-np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0])))
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def mirror_helps(model: Any, x_val: np.ndarray, y_val: np.ndarray) -> MirrorDecision:
    """Score `model` (the winner's search checkpoint, which never trained on validation) on the validation
    split alone and averaged with the mirror images; the mirror is used only if it lowers the loss."""
    plain = model.predict(x_val, batch_size=256, verbose=0)
    mirrored = model.predict(mirror_images(x_val), batch_size=256, verbose=0)
    loss_plain, loss_mirrored = cross_entropy(plain, y_val), cross_entropy((plain + mirrored) / 2, y_val)
    use = loss_mirrored < loss_plain
    reason = (f"validation loss {loss_plain:.4f} alone, {loss_mirrored:.4f} averaged with the mirror images "
              f"(the winner's search checkpoint)")
    return MirrorDecision(use, reason, loss_plain, loss_mirrored)


def average_with_mirror(model: Any) -> Any:
    """A model that answers with the mean of `model`'s outputs for an image and for its mirror image.

    `model` is one of this tool's CNNs: a chain of layers after its input, the first of which rescales the
    pixels to floats (hypermodel.py, and export._float_input_twin's twin of it). The layers and weights are
    shared, not copied. A compiled `model` gives a model compiled with its loss, which evaluates as it does.
    """
    import keras

    rescale, body = model.layers[1], model.layers[2:]
    if not isinstance(rescale, keras.layers.Rescaling):
        raise ValueError(f"expected the model's first layer to rescale pixels, found {type(rescale).__name__}.")
    inputs = keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype, name="image")
    pixels = rescale(inputs)
    answers = []
    for x in (pixels, _mirror(pixels)):
        for layer in body:
            x = layer(x)
        answers.append(x)
    outputs = keras.layers.Average(name="mirror_average")(answers)
    averaged = keras.Model(inputs, outputs, name=f"{model.name}_mirror_averaged")
    if getattr(model, "compiled", False):
        averaged.compile(optimizer=keras.optimizers.Adam(), loss=model.loss, metrics=["accuracy"])
        # Built now, so the saved file's optimizer matches what loading builds (Keras warns of a mismatch otherwise).
        averaged.optimizer.build(averaged.trainable_variables)
    return averaged


def _mirror(x: Any) -> Any:
    """The float feature map x (N, H, W, C) reversed along its width, with standard layers only: the width moved
    last, multiplied by a fixed anti-diagonal 0/1 matrix (exact in float, and in int8), and moved back."""
    import keras

    width = x.shape[2]
    x = keras.layers.Permute((1, 3, 2), name="mirror_width_last")(x)
    reverse = keras.layers.Dense(width, use_bias=False, trainable=False, name="mirror_reverse")
    x = reverse(x)
    reverse.set_weights([np.eye(width, dtype=np.float32)[::-1]])
    return keras.layers.Permute((1, 3, 2), name="mirror_width_back")(x)
