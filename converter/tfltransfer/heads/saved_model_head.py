"""A head loaded from a SavedModel (the seed's ``SavedModelHead`` / ``LogitsSavedModelHead``).

The SavedModel's graph is frozen and re-imported with every trainable variable replaced by an
input, so its parameters live in the runtime like every other head's. Gradients come from
TensorFlow, so the training model usually needs select TF ops (Flex); the converter measures that
from the converted model and flags the bundle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tfltransfer.errors import HeadError
from tfltransfer.heads.head import Head
from tfltransfer.heads.layers import ParamSpec
from tfltransfer.heads.program import EPSILON, HeadProgram, autodiff_loss_and_grads, log_softmax
from tfltransfer.saved_models import load_serving_signature


class GraphHeadProgram(HeadProgram):
    """A frozen SavedModel graph with its trainable variables turned into inputs."""

    requires_flex = True

    def __init__(self, model_dir: str, l2_reg: float) -> None:
        loaded, signature, name, spec = load_serving_signature(
            model_dir,
            HeadError,
            "Save the head with model.export(DIR), or pass a Keras file with --head_keras_model",
        )
        self.input_shape = tuple(int(d) if d is not None else -1 for d in spec.shape[1:])
        variables = list(getattr(loaded, "variables", []))
        frozen = convert_variables_to_constants_v2(signature)
        self._graph_def = frozen.graph.as_graph_def()
        self._input_name = f"{spec.name or name}:0"
        if not any(n.name == (spec.name or name) for n in self._graph_def.node):
            self._input_name = f"{name}:0"
        self._output_name = frozen.outputs[0].name
        self._param_inputs: list[str] = []
        self.parameters = []
        for handle, placeholder in zip(
            signature.captured_inputs, signature.graph.internal_captures, strict=True
        ):
            var = next((v for v in variables if v.handle is handle), None)
            if var is None or not var.trainable or handle.dtype != tf.resource:
                continue
            self._param_inputs.append(placeholder.name)
            label = var.name.split(":")[0]
            self.parameters.append(ParamSpec(label, np.asarray(var.numpy(), np.float32), l2_reg))
        if not self.parameters:
            raise HeadError(f"{model_dir}: the head has no trainable variables")
        self.num_outputs = int(frozen.outputs[0].shape[-1])
        last_op = next(n for n in self._graph_def.node if n.name == self._output_name.split(":")[0])
        ops = {n.name: n for n in self._graph_def.node}
        while last_op.op == "Identity" and last_op.input:
            last_op = ops[last_op.input[0].split(":")[0].lstrip("^")]
        self.outputs_probabilities = last_op.op == "Softmax"

    def _outputs(self, x: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        # import_graph_def needs graph mode; a tf.function gives it one, also when called eagerly.
        return self._imported(x, *params)

    @tf.function
    def _imported(self, x: tf.Tensor, *params: tf.Tensor) -> tf.Tensor:
        input_map = {self._input_name: x}
        input_map.update(dict(zip(self._param_inputs, params, strict=True)))
        (out,) = tf.graph_util.import_graph_def(
            self._graph_def, input_map=input_map, return_elements=[self._output_name], name="head"
        )
        return out

    def _loss(self, x: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        out = self._outputs(x, params)
        if self.outputs_probabilities:
            prob = tf.clip_by_value(out, EPSILON, 1.0 - EPSILON)
            log_p = tf.math.log(prob)
        else:
            log_p = log_softmax(out)
        ce = -tf.reduce_mean(tf.reduce_sum(labels * log_p, axis=-1))
        reg = [
            p.l2 * tf.reduce_sum(tf.square(v))
            for p, v in zip(self.parameters, params, strict=True)
            if p.l2
        ]
        return ce + tf.add_n([tf.constant(0.0)] + reg)

    def loss_and_grads(
        self, bottlenecks: tf.Tensor, labels: tf.Tensor, params: list[tf.Tensor]
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Cross-entropy on the outputs (read as logits unless the graph ends in Softmax)."""
        return autodiff_loss_and_grads(self._loss, bottlenecks, labels, params)

    def probabilities(self, bottleneck: tf.Tensor, params: list[tf.Tensor]) -> tf.Tensor:
        """Softmax of the logits, or the graph's own softmax output."""
        out = self._outputs(bottleneck, params)
        return out if self.outputs_probabilities else tf.nn.softmax(out, axis=-1)

    def manifest_info(self) -> dict:
        """Kind and output interpretation."""
        return {
            "kind": "saved_model",
            "layers": ["saved_model graph"],
            "output": "probabilities" if self.outputs_probabilities else "logits",
            "imprintable": False,
        }


class SavedModelHead(Head):
    """A head from a SavedModel directory whose output is logits (or a softmax).

    Args:
      model_dir: the SavedModel directory (one input of the bottleneck's shape, one output of
        ``num_classes`` values).
      l2_reg: optional L2 coefficient applied to every trainable variable.
    """

    def __init__(self, model_dir: str | Path, l2_reg: float | None = None) -> None:
        self.model_dir = str(model_dir)
        self._program = GraphHeadProgram(self.model_dir, float(l2_reg or 0.0))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one bottleneck, from the SavedModel's input signature."""
        return self._program.input_shape

    def build(self, bottleneck_shape: tuple[int, ...], num_classes: int) -> HeadProgram:
        """The frozen graph with parameters as inputs."""
        if self._program.num_outputs != num_classes:
            raise HeadError(
                f"{self.model_dir}: the head outputs {self._program.num_outputs} values but "
                f"--num_classes is {num_classes}"
            )
        return self._program


#: The seed's code called it this; its README called it ``SavedModelHead``. Both work.
LogitsSavedModelHead = SavedModelHead
