"""Loading a SavedModel's serving signature, shared by the SavedModel base and head."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfltransfer.errors import ConverterError


def load_serving_signature(
    model_dir: str | Path, error: type[ConverterError], hint: str
) -> tuple[object, tf.types.experimental.ConcreteFunction, str, tf.TensorSpec]:
    """Load a SavedModel with exactly one input: ``(loaded, signature, input name, input spec)``.

    Every problem raises ``error`` with a message naming the folder; ``hint`` says how to save a
    usable model.
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise error(f"{model_dir}: no such directory")
    if not tf.saved_model.contains_saved_model(str(path)):
        raise error(f"{model_dir}: not a TensorFlow SavedModel (no saved_model.pb). {hint}")
    loaded = tf.saved_model.load(str(path))
    signatures = dict(loaded.signatures)
    if not signatures:
        raise error(f"{model_dir}: the SavedModel has no signatures; export it with one")
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    signature = signatures[key]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise error(f"{model_dir}: the model must have exactly one input, it has {sorted(inputs)}")
    ((name, spec),) = inputs.items()
    return loaded, signature, name, spec
