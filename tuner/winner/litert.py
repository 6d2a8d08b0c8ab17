"""Run a LiteRT (.tflite) model with the LiteRT interpreter (ai-edge-litert), without TensorFlow.

The one place that feeds images to a .tflite file and reads probabilities back: report.py checks
its exports with it and predict.py --runtime litert classifies with it, so both run the same code.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import TunerUsageError
from tuner.quiet import quiet_stderr


class LiteRTModel:
    """A .tflite classifier: uint8 images in (as data_prep wrote them), class probabilities out.

    Quantized inputs and outputs (a full-integer export) are converted with the scale and zero
    point stored in the file, so callers never see the difference. The batch size follows the
    images given: the interpreter's input is resized when it changes.
    """

    def __init__(self, interpreter: Any, source: str) -> None:
        self.interpreter = interpreter
        self.source = source
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self._batch = -1

    @classmethod
    def load(cls, source: str | Path | bytes, threads: int | None = None) -> LiteRTModel:
        """Open a .tflite file (a path) or its contents (bytes).

        Args:
            source: the file, or the bytes of one (report.py checks an export before writing it).
            threads: interpreter threads (None: LiteRT's default).

        Raises:
            TunerUsageError: the file cannot be read or is not a LiteRT model with one image input.
        """
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise TunerUsageError(f"the LiteRT interpreter is not installed in this Python ({sys.executable}); "
                                  f"run pip install ai-edge-litert (or pip install -r requirements.txt).") from None
        shown = "the export" if isinstance(source, bytes) else f"'{source}'"
        try:
            with quiet_stderr():  # the interpreter prints "Created TensorFlow Lite XNNPACK delegate" on stderr
                if isinstance(source, bytes):
                    interpreter = Interpreter(model_content=source, num_threads=threads)
                else:
                    interpreter = Interpreter(model_path=str(source), num_threads=threads)
        except (ValueError, RuntimeError, OSError) as error:
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            raise TunerUsageError(f"{shown} is not a LiteRT model ({reason}); run python report.py again to export "
                                  f"the winner afresh.") from None
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4 or len(outputs[0]["shape"]) != 2:
            raise TunerUsageError(f"{shown} is a LiteRT model, but not an image classifier of this tool (one image input, "
                                  f"one output of class scores); run python report.py again to export the winner.")
        return cls(interpreter, shown)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images it takes."""
        return tuple(int(side) for side in self._input["shape"][1:])  # type: ignore[return-value]

    @property
    def units(self) -> int:
        """Output units: 1 for a two-class sigmoid, else one per class."""
        return int(self._output["shape"][-1])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of uint8 images, shape (images, units), as the Keras model's predict gives them."""
        images = np.asarray(images)
        if len(images) != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [len(images), *self.input_shape])
            with quiet_stderr():
                self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input["index"], _to_input(images, self._input))
        self.interpreter.invoke()
        return _from_output(self.interpreter.get_tensor(self._output["index"]), self._output)

    def latency_ms(self, passes: int = 200) -> float:
        """Median milliseconds of a batch-1 pass on a blank image (after an untimed one)."""
        from tuner.model.footprint import timed_passes

        blank = np.zeros((1, *self.input_shape), np.uint8)
        return statistics.median(timed_passes(lambda: self.predict(blank), passes)) * 1000


def _to_input(images: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """Images as the input tensor wants them: cast, or quantized by the input's scale and zero point if it has them."""
    dtype = details["dtype"]
    scale, zero_point = details.get("quantization", (0.0, 0))
    if scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(images.astype(np.float32) / scale + zero_point), info.min, info.max).astype(dtype)
    return images.astype(dtype, copy=False)


def _from_output(values: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """Output scores as float probabilities, dequantized if the output is quantized."""
    scale, zero_point = details.get("quantization", (0.0, 0))
    if scale:
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32, copy=False)
