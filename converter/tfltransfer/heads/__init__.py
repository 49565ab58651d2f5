"""Head configurations: the part of the model that is trained on the board."""

from tfltransfer.heads.head import Head
from tfltransfer.heads.keras_model_head import KerasModelHead
from tfltransfer.heads.saved_model_head import LogitsSavedModelHead, SavedModelHead
from tfltransfer.heads.softmax_classifier_head import SoftmaxClassifierHead

__all__ = [
    "Head",
    "KerasModelHead",
    "LogitsSavedModelHead",
    "SavedModelHead",
    "SoftmaxClassifierHead",
]
