"""Test-time augmentation: the winner's prediction averaged over each image and its left-right mirror.

Averaging a CNN's answers for an image and its mirror cuts its test errors wherever a mirrored image
keeps its label (animals, objects, scenes; BENCHMARKS.md, "Better models"). Where mirroring changes the label
(digits, letters, arrows) it would hurt, so by default it is decided on evidence: the winner's own search
checkpoint, scored on the validation split with and without the mirror (`choose_mirror`).

The averaging lives inside the saved model (`average_with_mirror`), so model.keras, its LiteRT exports and
predict.py all compute it, and the test score is the shipped model's. It uses standard Keras layers only
(the mirror is a fixed permutation matrix along the width), so the model still loads in safe mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.data.cache import PreparedDataset
from tuner.model.head import Head


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


def choose_mirror(tta: str, checkpoint: Any | None, dataset: PreparedDataset) -> MirrorDecision:
    """Whether the winner averages over mirror images: as report.py --tta says, or ("auto") as the validation split
    says of `checkpoint`, the winner's search trial with its best-epoch weights (None if it saved none)."""
    if tta != "auto":
        return MirrorDecision(tta == "on", f"as --tta {tta} asks")
    if checkpoint is None:
        return MirrorDecision(False, "the trial saved no weights to judge it on")
    if len(dataset.y_val) == 0:
        return MirrorDecision(False, "there are no validation images to judge it on")
    return mirror_helps(checkpoint, dataset.x_val, Head(dataset.num_classes).labels(dataset.y_val))


def mirror_helps(model: Any, x_val: np.ndarray, labels: np.ndarray) -> MirrorDecision:
    """Score compiled `model` (the winner's search checkpoint, which never trained on validation) on the validation
    split alone and averaged with the mirror images, by its own loss (the val_loss the search ranks by); the mirror
    is used only if it lowers the loss. `labels` are in the dtype the loss expects (head.Head.labels)."""
    loss_plain = model.evaluate(x_val, labels, batch_size=256, verbose=0, return_dict=True)["loss"]
    loss_mirrored = average_with_mirror(model).evaluate(x_val, labels, batch_size=256, verbose=0, return_dict=True)["loss"]
    reason = (f"validation loss {loss_plain:.4f} alone, {loss_mirrored:.4f} averaged with the mirror images "
              f"(the winner's search checkpoint)")
    return MirrorDecision(loss_mirrored < loss_plain, reason, float(loss_plain), float(loss_mirrored))


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
