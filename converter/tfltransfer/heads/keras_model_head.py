"""A head given as a Keras model.

Models built from the layers in :mod:`tfltransfer.heads.layers` (Dense, Flatten, Dropout,
GlobalAveragePooling2D, frozen BatchNormalization, activations; L2 regularisers) become a
:class:`LayerChainProgram` with hand-written gradients: builtin TFLite ops only. The translation is
then checked numerically against the Keras model itself. Anything else falls back to TensorFlow's
automatic gradients, which need select TF ops (Flex); the bundle is flagged ``requires_flex``.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from tfltransfer.errors import HeadError
from tfltransfer.heads import layers as hl
from tfltransfer.heads.head import Head
from tfltransfer.heads.program import (
    EPSILON,
    HeadProgram,
    LayerChainProgram,
    autodiff_loss_and_grads,
)

log = logging.getLogger(__name__)


class UnsupportedLayer(Exception):
    """A Keras layer (or a setting of one) that has no hand-written backward pass here."""


def _l2_of(regularizer: object, where: str) -> float:
    if regularizer is None:
        return 0.0
    if isinstance(regularizer, keras.regularizers.L2):
        return float(regularizer.l2)
    if isinstance(regularizer, keras.regularizers.L1L2) and not float(regularizer.l1):
        return float(regularizer.l2)
    raise UnsupportedLayer(f"{where}: only L2 regularizers have a builtin gradient")


def _activation_name(fn: object, where: str) -> str:
    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    if name not in hl.ACTIVATIONS:
        raise UnsupportedLayer(f"{where}: activation {name!r} is not one of {hl.ACTIVATIONS}")
    return name


def _translate(layer: keras.layers.Layer) -> hl.Layer | None:
    """The hand-differentiated twin of one Keras layer (None for layers that do nothing)."""
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    if isinstance(layer, keras.layers.InputLayer):
        return None
    if getattr(layer, "activity_regularizer", None) is not None:
        raise UnsupportedLayer(f"{where}: activity regularizers are not supported")
    if isinstance(layer, keras.layers.Dense):
        if layer.kernel_constraint is not None or layer.bias_constraint is not None:
            raise UnsupportedLayer(f"{where}: weight constraints are not supported")
        weights = layer.get_weights()
        return hl.Dense(
            kernel=np.asarray(weights[0], np.float32),
            bias=np.asarray(weights[1], np.float32) if layer.use_bias else None,
            activation=_activation_name(layer.activation, where),
            name=layer.name,
            kernel_l2=_l2_of(layer.kernel_regularizer, where),
            bias_l2=_l2_of(layer.bias_regularizer, where),
            trainable=layer.trainable,
        )
    if isinstance(layer, keras.layers.Flatten):
        return hl.Flatten()
    if isinstance(layer, keras.layers.Dropout):
        if layer.noise_shape is not None:
            raise UnsupportedLayer(f"{where}: noise_shape is not supported")
        return hl.Dropout(rate=float(layer.rate))
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        if layer.data_format != "channels_last":
            raise UnsupportedLayer(f"{where}: only channels_last is supported")
        return hl.GlobalAveragePooling2D(keepdims=bool(layer.keepdims))
    if isinstance(layer, keras.layers.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        if axis not in (-1, len(layer.input.shape) - 1):
            raise UnsupportedLayer(f"{where}: only the last axis can be normalised")
        channels = int(layer.moving_mean.shape[0])
        gamma = layer.gamma.numpy() if layer.scale else np.ones(channels, np.float32)
        beta = layer.beta.numpy() if layer.center else np.zeros(channels, np.float32)
        trainable = layer.trainable and layer.scale and layer.center
        if layer.trainable and not trainable:
            raise UnsupportedLayer(f"{where}: trainable BatchNormalization needs center and scale")
        return hl.BatchNormalization(
            mean=layer.moving_mean.numpy(),
            variance=layer.moving_variance.numpy(),
            gamma=gamma,
            beta=beta,
            epsilon=float(layer.epsilon),
            trainable=trainable,
            name=layer.name,
        )
    if isinstance(layer, keras.layers.Activation):
        return hl.Activation(_activation_name(layer.activation, where))
    if isinstance(layer, keras.layers.ReLU):
        plain = not float(layer.negative_slope) and not float(layer.threshold)
        if plain and layer.max_value is None:
            return hl.Activation("relu")
        if plain and float(layer.max_value) == 6.0:
            return hl.Activation("relu6")
        raise UnsupportedLayer(f"{where}: only ReLU() and ReLU(6.0) are supported")
    if isinstance(layer, keras.layers.Softmax):
        if layer.axis not in (-1, [-1]):
            raise UnsupportedLayer(f"{where}: softmax only over the last axis")
        return hl.Activation("softmax")
    raise UnsupportedLayer(f"{where}: no builtin-only gradient for this layer type")


def translate_model(model: keras.Model) -> LayerChainProgram:
    """Translate a Keras model into a hand-differentiated chain, proven equal on random inputs.

    Raises:
      UnsupportedLayer: a layer has no builtin-only form, or the model is not a plain chain.
    """
    chain = [t for t in (_translate(layer) for layer in model.layers) if t is not None]
    if not chain:
        raise UnsupportedLayer("the model has no layers")
    program = LayerChainProgram(layers=chain, kind="keras")
    # A model with branches or skips would translate to a wrong chain: compare outputs.
    sample = np.random.default_rng(0).normal(size=(3, *model.input_shape[1:])).astype(np.float32)
    expected = np.asarray(model(sample, training=False))
    params = [tf.constant(p.initial) for p in program.parameters]
    got = program.probabilities(tf.constant(sample), params).numpy()
    if not program.manifest_info()["output"] == "softmax":
        expected = expected / expected.sum(axis=-1, keepdims=True)
    elif isinstance(chain[-1], hl.Dense) and chain[-1].activation == "linear":
        expected = tf.nn.softmax(expected, axis=-1).numpy()
    if expected.shape != got.shape or not np.allclose(expected, got, rtol=1e-4, atol=1e-5):
        raise UnsupportedLayer("the model is not a plain chain of layers (outputs differ)")
    return program


class GenericKerasProgram(HeadProgram):
    """Any Keras model, differentiated by TensorFlow: needs select TF ops (Flex) on the board."""

    requires_flex = True

    def __init__(self, model: keras.Model, reason: str) -> None:
        self.model = model
        self.reason = reason
        self._variables = list(model.trainable_variables)
        self._frozen = [v.value for v in model.non_trainable_variables]
        self.parameters = [
            hl.ParamSpec(v.path if hasattr(v, "path") else v.name, np.asarray(v.numpy()))
            for v in self._variables
        ]

    def _outputs(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        outputs, _, losses = self.model.stateless_call(
            params, self._frozen, x, training=training, return_losses=True
        )
        return outputs, losses

    def _loss(self, x: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        outputs, losses = self._outputs(x, params, training=True)
        prob = outputs / tf.reduce_sum(outputs, axis=-1, keepdims=True)
        prob = tf.clip_by_value(prob, EPSILON, 1.0 - EPSILON)
        ce = -tf.reduce_mean(tf.reduce_sum(labels * tf.math.log(prob), axis=-1))
        return ce + tf.add_n([tf.constant(0.0)] + list(losses))

    def loss_and_grads(
        self, bottlenecks: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Keras' categorical cross-entropy plus the model's own losses, TF gradients."""
        return autodiff_loss_and_grads(self._loss, bottlenecks, labels, params)

    def probabilities(self, bottleneck: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        """The model's outputs, normalised."""
        outputs, _ = self._outputs(bottleneck, params, training=False)
        return outputs / tf.reduce_sum(outputs, axis=-1, keepdims=True)

    def manifest_info(self) -> dict:
        """Kind, layers, and why Flex is needed."""
        return {
            "kind": "keras",
            "layers": [f"{type(layer).__name__}({layer.name})" for layer in self.model.layers],
            "output": "normalized",
            "imprintable": False,
            "flex_reason": self.reason,
        }


class KerasModelHead(Head):
    """A head given as a Keras model (the seed's ``heads.KerasModelHead``).

    Its current weights are the initial parameters. The model's compiled loss and optimizer are
    ignored: training uses categorical cross-entropy and the converter's optimizer.
    """

    def __init__(self, keras_model: keras.Model) -> None:
        if not isinstance(keras_model, keras.Model):
            raise HeadError(f"KerasModelHead needs a keras.Model, got {type(keras_model).__name__}")
        if not keras_model.built:
            raise HeadError("the Keras head is not built: give its first layer an input shape")
        self.model = keras_model

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one bottleneck, from the model's input."""
        return tuple(int(d) for d in self.model.input_shape[1:])

    def build(self, bottleneck_shape: tuple[int, ...], num_classes: int) -> HeadProgram:
        """A builtin-only program when every layer allows it, else the Flex fallback."""
        outputs = self.model.output_shape[-1]
        if outputs != num_classes:
            raise HeadError(
                f"the Keras head outputs {outputs} values but --num_classes is {num_classes}; "
                "make its last layer Dense(num_classes) or change --num_classes"
            )
        try:
            return translate_model(self.model)
        except UnsupportedLayer as exc:
            log.warning("head needs select TF ops (Flex): %s", exc)
            return GenericKerasProgram(self.model, str(exc))
