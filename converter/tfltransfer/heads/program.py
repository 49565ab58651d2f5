"""What a head gives the converter: parameters, a loss with gradients, and class probabilities.

The converter turns a :class:`HeadProgram` into ``initialize``, ``train_head`` and ``inference``
models; it does not know which head made it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow as tf

from tfltransfer.heads.layers import Activation, Dense, Layer, ParamSpec

# Keras' categorical cross-entropy clips probabilities to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7


class HeadProgram(abc.ABC):
    """A trainable head over a fixed bottleneck shape, as TensorFlow functions of its parameters."""

    #: Trainable parameters in the order every model takes them.
    parameters: list[ParamSpec]
    #: True when the training graph needs select TensorFlow (Flex) ops.
    requires_flex: bool = False

    @abc.abstractmethod
    def loss_and_grads(
        self, bottlenecks: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Mean categorical cross-entropy over the batch plus L2 terms, and its gradients."""

    @abc.abstractmethod
    def probabilities(self, bottleneck: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        """Class probabilities ``(batch, C)`` (inference mode)."""

    @abc.abstractmethod
    def manifest_info(self) -> dict:
        """The manifest's ``head`` entry."""

    def loss(self, bottlenecks: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        """The training loss alone (used by gradient checks)."""
        return self.loss_and_grads(bottlenecks, labels, params)[0]

    def class_axes(self, num_classes: int) -> list[int | None]:
        """For each parameter, the axis that indexes the classes (None: it has none).

        The runtime masks inactive class slots there. This default reads it from the shapes
        (see :func:`class_axes_from_shapes`); heads that know their layers say it exactly.
        """
        return class_axes_from_shapes([p.shape for p in self.parameters], num_classes)


def class_axes_from_shapes(shapes: list[tuple[int, ...]], num_classes: int) -> list[int | None]:
    """Class axes when the parameters end in an output layer's ``kernel (F, C)[, bias (C,)]``.

    Parameters come in layer order, kernel before bias, so only the last one or two can be the
    output layer's. Anything else cannot be told from shapes: all None.
    """
    axes: list[int | None] = [None] * len(shapes)
    c = num_classes
    if len(shapes) >= 2 and shapes[-1] == (c,) and len(shapes[-2]) == 2 and shapes[-2][1] == c:
        axes[-2], axes[-1] = 1, 0
    elif shapes and len(shapes[-1]) == 2 and shapes[-1][1] == c:
        axes[-1] = 1
    return axes


def l2_penalty(specs: list[ParamSpec], params: list[tf.Tensor]) -> tf.Tensor:
    """Sum of ``l2 * sum(w**2)`` over the regularised parameters (Keras' ``L2`` definition)."""
    total = tf.constant(0.0, tf.float32)
    for spec, value in zip(specs, params, strict=True):
        if spec.l2:
            total = total + spec.l2 * tf.reduce_sum(tf.square(value))
    return total


def autodiff_loss_and_grads(
    loss_fn: Callable[[tf.Tensor, tf.Tensor, list[tf.Tensor]], tf.Tensor],
    bottlenecks: tf.Tensor,
    labels: tf.Tensor,
    params: list[tf.Tensor],
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """``loss_fn`` and TensorFlow's gradients of it (zeros for parameters it does not use).

    Converted, these gradients usually need select TF ops (``ReluGrad``, ``BiasAddGrad``...).
    """
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = loss_fn(bottlenecks, labels, params)
    grads = tape.gradient(loss, params)
    return loss, [tf.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def log_softmax(logits: tf.Tensor) -> tf.Tensor:
    """Numerically stable log-softmax over the last axis (never ``log(0)``)."""
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))


@dataclass
class LayerChainProgram(HeadProgram):
    """A head made of a chain of hand-differentiated layers: builtin TFLite ops only.

    The loss is categorical cross-entropy. When the chain ends in a softmax (or in a linear layer,
    whose output is read as logits) the softmax and the cross-entropy are fused into a log-softmax:
    stable for any logits, with the gradient ``(softmax(z) - y) / B``. Any other final activation is
    treated as Keras does: outputs normalised to sum to one and clipped to ``[1e-7, 1 - 1e-7]``.
    """

    layers: list[Layer]
    kind: str = "keras"
    extra_info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parameters = [p for layer in self.layers for p in layer.params]
        last = self.layers[-1]
        self._fused = (isinstance(last, Dense) and last.activation in ("softmax", "linear")) or (
            isinstance(last, Activation) and last.activation == "softmax"
        )

    def _split(self, params: list[tf.Tensor]) -> list[list[tf.Tensor]]:
        out, start = [], 0
        for layer in self.layers:
            out.append(params[start : start + len(layer.params)])
            start += len(layer.params)
        return out

    def _logits(self, x: tf.Tensor, per_layer: list[list[tf.Tensor]], training: bool) -> tuple:
        """Run the chain up to the fused softmax; return (logits, caches)."""
        caches = []
        for layer, p in zip(self.layers[:-1], per_layer[:-1], strict=True):
            x, cache = layer.forward(x, p, training)
            caches.append(cache)
        last = self.layers[-1]
        if isinstance(last, Dense):
            x, cache = last.forward_logits(x, per_layer[-1])
            caches.append(cache)
        return x, caches

    def loss_and_grads(
        self, bottlenecks: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Forward, loss, then the hand-written backward pass layer by layer."""
        per_layer = self._split(params)
        batch = tf.cast(tf.shape(bottlenecks)[0], tf.float32)
        if self._fused:
            logits, caches = self._logits(bottlenecks, per_layer, training=True)
            ce = -tf.reduce_sum(labels * log_softmax(logits)) / batch
            grad = (tf.nn.softmax(logits, axis=-1) - labels) / batch
            layers = self.layers
            if isinstance(self.layers[-1], Dense):
                grad, grads_last = self.layers[-1].backward_from_logits(
                    grad, caches[-1], per_layer[-1]
                )
                layer_grads = [grads_last]
            else:
                layer_grads = [[]]
            layers = self.layers[:-1]
        else:
            x, caches = bottlenecks, []
            for layer, p in zip(self.layers, per_layer, strict=True):
                x, cache = layer.forward(x, p, training=True)
                caches.append(cache)
            total = tf.reduce_sum(x, axis=-1, keepdims=True)
            prob = x / total
            clipped = tf.clip_by_value(prob, EPSILON, 1.0 - EPSILON)
            ce = -tf.reduce_sum(labels * tf.math.log(clipped)) / batch
            inside = tf.cast(tf.logical_and(prob > EPSILON, prob < 1.0 - EPSILON), tf.float32)
            d_prob = -labels / clipped / batch * inside
            grad = (d_prob - tf.reduce_sum(d_prob * prob, axis=-1, keepdims=True)) / total
            layer_grads, layers = [], self.layers
        for index in range(len(layers) - 1, -1, -1):
            grad, g = layers[index].backward(grad, caches[index], per_layer[index])
            layer_grads.insert(0, g)
        grads = [g for group in layer_grads for g in group]
        for i, spec in enumerate(self.parameters):
            if spec.l2:
                grads[i] = grads[i] + (2.0 * spec.l2) * params[i]
        return ce + l2_penalty(self.parameters, params), grads

    def class_axes(self, num_classes: int) -> list[int | None]:
        """The output layer (the last Dense) indexes classes on its kernel's axis 1 and its
        bias; a trainable BatchNormalization after it on its gamma and beta."""
        axes: list[int | None] = []
        dense = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        output = dense[-1] if dense else None
        for index, layer in enumerate(self.layers):
            is_output = index == output and layer.units == num_classes
            after = output is not None and index > output
            for spec in layer.params:
                if is_output:
                    axes.append(1 if spec.name.endswith("/kernel") else 0)
                elif after and spec.shape == (num_classes,):
                    axes.append(0)
                else:
                    axes.append(None)
        return axes

    def probabilities(self, bottleneck: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        """Softmax of the logits, or the normalised outputs for other final activations."""
        per_layer = self._split(params)
        if self._fused:
            logits, _ = self._logits(bottleneck, per_layer, training=False)
            return tf.nn.softmax(logits, axis=-1)
        x = bottleneck
        for layer, p in zip(self.layers, per_layer, strict=True):
            x, _ = layer.forward(x, p, training=False)
        return x / tf.reduce_sum(x, axis=-1, keepdims=True)

    def manifest_info(self) -> dict:
        """Kind, layer list, whether weight imprinting applies."""
        dense_only = [layer for layer in self.layers if layer.params]
        imprintable = (
            len(dense_only) == 1
            and dense_only[0] is self.layers[-1]
            and isinstance(self.layers[-1], Dense)
            and self.layers[-1].bias is not None
            and all(type(layer).__name__ in ("Flatten", "Dense") for layer in self.layers)
            and self._fused
        )
        return {
            "kind": self.kind,
            "layers": [layer.describe() for layer in self.layers],
            "output": "softmax" if self._fused else "normalized",
            "imprintable": imprintable,
            **self.extra_info,
        }
