"""The winner exported for LiteRT (float, and full-integer with --int8), each checked on the whole test split.

A deployable file is only worth shipping if it answers as the Keras model does: every export
is run with the LiteRT interpreter (litert.LiteRTModel, as predict.py --runtime litert runs it)
on every test image, and its labels are compared with the Keras model's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.data.cache import PreparedDataset
from tuner.errors import SearchFailedError
from tuner.model.head import decide
from tuner.quiet import quiet_stderr
from tuner.winner.litert import LiteRTModel
from tuner.model.mirror import average_with_mirror
from tuner.rundir import FLOAT_FILE, INT8_FILE
from tuner.stats import wilson_interval

log = logging.getLogger(__name__)

# A float export computes what the Keras model computes, up to rounding: a label may flip only for an image
# whose probability sits at 0.5. More disagreement than this means the conversion went wrong.
MAX_FLOAT_DISAGREEMENT = 0.005
# Training images that calibrate the full-integer model's ranges ("a few hundred" is what LiteRT's guide asks).
REPRESENTATIVE_IMAGES = 300


@dataclass(frozen=True)
class Export:
    """One LiteRT file of the winner and how it compared with the Keras model on the test split."""

    kind: str  # "float" or "int8"
    file_name: str
    content: bytes
    check: dict[str, Any]


def export_winner(model: Any, dataset: PreparedDataset, keras_labels: np.ndarray, int8: bool, seed: int,
                  mirror: bool = False) -> list[Export]:
    """Convert the Keras model to LiteRT (float; also full-integer if `int8`) and check each on the test split.

    Args:
        model: the retrained winner (uint8 images in, probabilities out), a chain of layers.
        dataset: the prepared dataset: test images to check with, training images to calibrate int8.
        keras_labels: the Keras model's class index for each test image.
        int8: also write the full-integer model.
        seed: picks the calibration images.
        mirror: export the model averaged over each image and its mirror image (mirror.average_with_mirror).

    Returns:
        The exports, each with its check: images, agreement (share of test images given the Keras
        model's label), disagreements, accuracy and keras_accuracy (with 95% intervals), bytes, and
        latency_ms (LiteRT, batch 1, one thread, median).

    Raises:
        SearchFailedError: the float export disagrees with the Keras model on more than 0.5% of the test images.
    """
    def exported(chain: Any) -> Any:
        return average_with_mirror(chain) if mirror else chain

    exports = [check_export("float", FLOAT_FILE, _convert(exported(model)), dataset, keras_labels)]
    refuse_a_float_export_that_disagrees(exports[0].check)
    if int8:
        rng = np.random.default_rng(seed)
        count = min(REPRESENTATIVE_IMAGES, len(dataset.x_train))
        calibration = dataset.x_train[rng.choice(len(dataset.x_train), count, replace=False)]
        # Quantized from a twin whose input is float pixels (see _convert), mirrored like the float export.
        twin = exported(_float_input_twin(model))
        exports.append(check_export("int8", INT8_FILE, _convert(twin, calibration), dataset, keras_labels))
    return exports


def refuse_a_float_export_that_disagrees(check: dict[str, Any]) -> None:
    """Raise SearchFailedError if a float export's labels differ from the Keras model's on more than 0.5% of images."""
    if 1 - check["agreement"] > MAX_FLOAT_DISAGREEMENT:
        raise SearchFailedError(
            f"the LiteRT export of the winner gives a different label than the Keras model for {check['disagreements']} "
            f"of {check['images']} test images ({1 - check['agreement']:.1%}; at most {MAX_FLOAT_DISAGREEMENT:.1%} is "
            f"allowed), so nothing was saved; run report.py --no-export to save the Keras model alone, and report this."
        )


def _convert(model: Any, calibration: np.ndarray | None = None) -> bytes:
    """The model as LiteRT flatbuffer bytes; with calibration images, quantized to full integer.

    The float file takes uint8 pixels, as the Keras model does (it casts and rescales them
    itself). The full-integer file takes uint8 pixels too, but as a quantized tensor (scale ~1,
    zero point 0), and its output is uint8: litert.LiteRTModel applies both quantizations. For it the
    caller passes a twin of the model whose input is float pixels (_float_input_twin), because the Keras
    model's uint8-to-float cast would otherwise stay a float operation in front of the integer ones.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:

        def representative_images() -> Any:
            for image in calibration:
                yield [image[np.newaxis].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_images
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    # The converter saves a temporary SavedModel and says so on stdout, and its C++ passes log to stderr;
    # the report's output is its own. Its Python warnings (e.g. input statistics for uint8 inputs) go to the debug log.
    with contextlib.redirect_stdout(io.StringIO()) as printed, quiet_stderr(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = converter.convert()
    for line in [*printed.getvalue().splitlines(), *(str(item.message) for item in caught)]:
        log.debug("LiteRT converter: %s", line)
    return bytes(content)


def _float_input_twin(model: Any) -> Any:
    """The same layers and weights behind a float32 input: this tool's CNNs are a chain of layers after their input."""
    import keras

    inputs = keras.Input(model.input_shape[1:], dtype="float32", name="image")
    x = inputs
    for layer in model.layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_float_input")


def check_export(kind: str, file_name: str, content: bytes, dataset: PreparedDataset, keras_labels: np.ndarray) -> Export:
    """Run a LiteRT file on every test image and compare its labels with `keras_labels` and the truth."""
    exported = LiteRTModel.load(content, threads=1)
    probabilities = np.concatenate([exported.predict(dataset.x_test[start:start + 256])
                                    for start in range(0, len(dataset.x_test), 256)])
    labels, _ = decide(probabilities)
    truth = dataset.y_test.astype(np.int64)
    images, agreeing = len(truth), int((labels == keras_labels).sum())
    correct, keras_correct = int((labels == truth).sum()), int((keras_labels == truth).sum())
    check = {
        "file": file_name, "bytes": len(content), "images": images, "agreement": agreeing / images,
        "disagreements": images - agreeing, "accuracy": correct / images,
        "accuracy_interval": list(wilson_interval(correct, images)), "keras_accuracy": keras_correct / images,
        "keras_accuracy_interval": list(wilson_interval(keras_correct, images)),
        "latency_ms": round(exported.latency_ms(), 4), "threads": 1,
    }
    return Export(kind, file_name, content, check)


def format_export_checks(checks: dict[str, dict[str, Any]]) -> list[str]:
    """One line per export (kind -> its check): file, size, label agreement with Keras, both accuracies, LiteRT latency."""
    lines = []
    for kind, check in checks.items():
        lines.append(f"LiteRT {kind} export {check['file']} ({check['bytes'] / 1024:,.0f} KiB): same label as Keras for "
                     f"{check['images'] - check['disagreements']}/{check['images']} test images ({check['agreement']:.2%}); "
                     f"accuracy {check['accuracy']:.4f} vs Keras {check['keras_accuracy']:.4f}; "
                     f"{check['latency_ms']:.3f} ms per image (batch 1, {check['threads']} thread)")
    return lines
