"""Find the best small CNN for a folder of labelled images with KerasTuner."""

from __future__ import annotations

from tuner.errors import TunerUsageError

__all__ = ["TunerUsageError"]
