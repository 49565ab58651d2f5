"""Hand-written forward and backward passes for the layers a builtin-only head may use.

TensorFlow's automatic gradients emit ops such as ``ReluGrad`` or ``BiasAddGrad`` that TFLite has no
builtin kernel for, so a bundle made with them needs the Flex (select TF ops) runtime. Every layer
here writes its own backward pass with plain arithmetic, matmuls, reductions and comparisons, which
all convert to TFLite builtins. A head is a chain of these layers.

Each layer owns zero or more trainable parameters (passed in as tensors, never held as variables)
and may bake non-trainable values (BatchNorm statistics) in as constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax")


@dataclass
class ParamSpec:
    """One trainable parameter: its name, initial value and L2 coefficient (0 for none)."""

    name: str
    initial: np.ndarray
    l2: float = 0.0

    @property
    def shape(self) -> tuple[int, ...]:
        """The parameter's shape."""
        return tuple(int(d) for d in self.initial.shape)


def activate(name: str, z: tf.Tensor) -> tf.Tensor:
    """Apply activation ``name`` to ``z``."""
    if name == "linear":
        return z
    if name == "relu":
        return tf.maximum(z, 0.0)
    if name == "relu6":
        return tf.minimum(tf.maximum(z, 0.0), 6.0)
    if name == "sigmoid":
        return tf.math.sigmoid(z)
    if name == "tanh":
        return tf.math.tanh(z)
    if name == "softmax":
        return tf.nn.softmax(z, axis=-1)
    raise ValueError(f"unsupported activation {name!r}; supported: {', '.join(ACTIVATIONS)}")


def activation_backward(name: str, dy: tf.Tensor, z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Gradient with respect to the pre-activation ``z`` given ``dy`` and the output ``y``."""
    if name == "linear":
        return dy
    if name == "relu":
        return dy * tf.cast(z > 0.0, dy.dtype)
    if name == "relu6":
        return dy * tf.cast(tf.logical_and(z > 0.0, z < 6.0), dy.dtype)
    if name == "sigmoid":
        return dy * y * (1.0 - y)
    if name == "tanh":
        return dy * (1.0 - y * y)
    if name == "softmax":
        return y * (dy - tf.reduce_sum(dy * y, axis=-1, keepdims=True))
    raise ValueError(f"unsupported activation {name!r}")


class Layer:
    """A layer with a hand-written backward pass."""

    #: Parameters this layer owns, in the order ``forward``/``backward`` take and return them.
    params: list[ParamSpec]

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output example given one input example's shape."""
        raise NotImplementedError

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Return ``(y, cache)``; ``cache`` is whatever ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Return ``(dx, [dparam...])`` for the upstream gradient ``dy``."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human-readable description for the manifest."""
        raise NotImplementedError


@dataclass
class Dense(Layer):
    """``y = activation(x @ kernel + bias)`` over the last axis."""

    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str = "linear"
    name: str = "dense"
    kernel_l2: float = 0.0
    bias_l2: float = 0.0
    trainable: bool = True
    params: list[ParamSpec] = field(init=False)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unsupported activation {self.activation!r}")
        self.params = []
        if self.trainable:
            kernel = self.kernel.astype(np.float32)
            self.params.append(ParamSpec(f"{self.name}/kernel", kernel, self.kernel_l2))
            if self.bias is not None:
                bias = self.bias.astype(np.float32)
                self.params.append(ParamSpec(f"{self.name}/bias", bias, self.bias_l2))

    def _weights(self, params: list[tf.Tensor]) -> tuple:
        """Kernel and bias: the fed parameters, or constants for a frozen layer."""
        if self.trainable:
            return params[0], (params[1] if self.bias is not None else None)
        bias = None if self.bias is None else tf.constant(self.bias, tf.float32)
        return tf.constant(self.kernel, tf.float32), bias

    @property
    def units(self) -> int:
        """Number of output units."""
        return int(self.kernel.shape[1])

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output example."""
        return (*input_shape[:-1], self.units)

    def _pre_activation(self, x: tf.Tensor, params: list[tf.Tensor]) -> tuple:
        in_dim = int(self.kernel.shape[0])
        kernel, bias = self._weights(params)
        x2 = tf.reshape(x, [-1, in_dim])
        z2 = tf.matmul(x2, kernel)
        if bias is not None:
            z2 = z2 + bias
        out_shape = tf.concat([tf.shape(x)[:-1], [self.units]], axis=0)
        return x2, tf.reshape(z2, out_shape)

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Affine map then activation."""
        x2, z = self._pre_activation(x, params)
        y = activate(self.activation, z)
        return y, (x, x2, z, y)

    def forward_logits(self, x: tf.Tensor, params: list[tf.Tensor]) -> tuple:
        """The pre-activation only (for a loss that fuses softmax with cross-entropy)."""
        x2, z = self._pre_activation(x, params)
        return z, (x, x2, z, None)

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Backward through the activation, then the affine map."""
        _x, _x2, z, y = cache
        return self.backward_from_logits(
            activation_backward(self.activation, dy, z, y), cache, params
        )

    def backward_from_logits(self, dz: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Backward through the affine map, given the gradient of the pre-activation."""
        x, x2, _z, _y = cache
        kernel, _bias = self._weights(params)
        dz2 = tf.reshape(dz, [-1, self.units])
        grads = []
        if self.trainable:
            grads.append(tf.matmul(x2, dz2, transpose_a=True))
            if self.bias is not None:
                grads.append(tf.reduce_sum(dz2, axis=0))
        dx = tf.reshape(tf.matmul(dz2, kernel, transpose_b=True), tf.shape(x))
        return dx, grads

    def describe(self) -> str:
        """E.g. ``dense(32, relu)``."""
        frozen = "" if self.trainable else ", frozen"
        return f"dense({self.units}, {self.activation}{frozen})"


@dataclass
class Flatten(Layer):
    """Collapse every axis but the batch axis."""

    params: list[ParamSpec] = field(default_factory=list)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output example."""
        return (int(np.prod(input_shape)),)

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Reshape to ``(batch, features)``."""
        features = int(np.prod(x.shape[1:]))
        return tf.reshape(x, [-1, features]), tf.shape(x)

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Reshape back."""
        return tf.reshape(dy, cache), []

    def describe(self) -> str:
        """``flatten``."""
        return "flatten"


@dataclass
class Activation(Layer):
    """A standalone activation layer."""

    activation: str
    params: list[ParamSpec] = field(default_factory=list)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Same shape as the input."""
        return input_shape

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Apply the activation."""
        y = activate(self.activation, x)
        return y, (x, y)

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Backward through the activation."""
        x, y = cache
        return activation_backward(self.activation, dy, x, y), []

    def describe(self) -> str:
        """E.g. ``activation(relu)``."""
        return f"activation({self.activation})"


@dataclass
class Dropout(Layer):
    """Inverted dropout: a real random mask while training (TFLite's builtin RANDOM_UNIFORM),
    identity at inference."""

    rate: float
    params: list[ParamSpec] = field(default_factory=list)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Same shape as the input."""
        return input_shape

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Zero each unit with probability ``rate`` and scale the rest by ``1/(1-rate)``."""
        if not training or self.rate <= 0.0:
            return x, None
        keep = tf.cast(tf.random.uniform(tf.shape(x)) >= self.rate, x.dtype)
        mask = keep * (1.0 / (1.0 - self.rate))
        return x * mask, mask

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """The same mask applies to the gradient."""
        return (dy if cache is None else dy * cache), []

    def describe(self) -> str:
        """E.g. ``dropout(0.5)``."""
        return f"dropout({self.rate:g})"


@dataclass
class GlobalAveragePooling2D(Layer):
    """Mean over the two spatial axes of an NHWC tensor."""

    keepdims: bool = False
    params: list[ParamSpec] = field(default_factory=list)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(C,)`` or ``(1, 1, C)``."""
        channels = input_shape[-1]
        return (1, 1, channels) if self.keepdims else (channels,)

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Average over height and width."""
        height, width = int(x.shape[1]), int(x.shape[2])
        return tf.reduce_mean(x, axis=[1, 2], keepdims=self.keepdims), (tf.shape(x), height * width)

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Spread each gradient evenly over the pooled positions."""
        shape, count = cache
        if not self.keepdims:
            dy = tf.reshape(dy, [-1, 1, 1, int(dy.shape[-1])])
        return tf.broadcast_to(dy * (1.0 / count), shape), []

    def describe(self) -> str:
        """``global_average_pooling2d``."""
        return "global_average_pooling2d"


@dataclass
class BatchNormalization(Layer):
    """Inference-mode batch normalisation over the last axis.

    The moving statistics are frozen and baked in as constants. ``gamma``/``beta`` are trainable
    parameters when the Keras layer was trainable, else constants too.
    """

    mean: np.ndarray
    variance: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    epsilon: float
    trainable: bool
    name: str = "batch_normalization"
    params: list[ParamSpec] = field(init=False)

    def __post_init__(self) -> None:
        self._inv_std = (1.0 / np.sqrt(self.variance.astype(np.float64) + self.epsilon)).astype(
            np.float32
        )
        self.params = (
            [
                ParamSpec(f"{self.name}/gamma", self.gamma.astype(np.float32)),
                ParamSpec(f"{self.name}/beta", self.beta.astype(np.float32)),
            ]
            if self.trainable
            else []
        )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Same shape as the input."""
        return input_shape

    def _scale_shift(self, params: list[tf.Tensor]) -> tuple:
        if self.trainable:
            return params[0], params[1]
        return tf.constant(self.gamma, tf.float32), tf.constant(self.beta, tf.float32)

    def forward(self, x: tf.Tensor, params: list[tf.Tensor], training: bool) -> tuple:
        """Normalise with the frozen statistics, then scale and shift."""
        gamma, beta = self._scale_shift(params)
        x_hat = (x - tf.constant(self.mean, tf.float32)) * tf.constant(self._inv_std)
        return gamma * x_hat + beta, x_hat

    def backward(self, dy: tf.Tensor, cache: object, params: list[tf.Tensor]) -> tuple:
        """Statistics are constants, so the input gradient is a per-channel scale."""
        gamma, _beta = self._scale_shift(params)
        dx = dy * (gamma * tf.constant(self._inv_std))
        if not self.trainable:
            return dx, []
        channels = int(self.mean.shape[0])
        dy2 = tf.reshape(dy, [-1, channels])
        x_hat2 = tf.reshape(cache, [-1, channels])
        return dx, [tf.reduce_sum(dy2 * x_hat2, axis=0), tf.reduce_sum(dy2, axis=0)]

    def describe(self) -> str:
        """``batch_normalization(frozen)`` or with trainable scale/shift."""
        return (
            "batch_normalization(" + ("gamma/beta trainable" if self.trainable else "frozen") + ")"
        )
