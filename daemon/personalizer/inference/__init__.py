"""From a model's per-frame scores to the predictions worth announcing."""

from .smoothing import PredictionSmoother, SmoothedPrediction

__all__ = ["PredictionSmoother", "SmoothedPrediction"]
