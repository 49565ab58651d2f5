"""Composes a base, a head and an optimizer into a bundle of five TFLite models and a manifest.

The converter knows the three interfaces (:class:`~tfltransfer.bases.Base`,
:class:`~tfltransfer.heads.Head`, :class:`~tfltransfer.optimizers.Optimizer`), never their variants.
The format itself (file and tensor names, the seed's positional order, the manifest model) comes
from :mod:`personalizer.bundle_format`, which the runtime reads bundles with; see
``docs/bundle-format.md`` for what is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

import tfltransfer
from personalizer import bundle_format as fmt
from tfltransfer import bundle_writer, edgetpu, tflite_model_info
from tfltransfer.bases.base import Base
from tfltransfer.errors import ConverterError, HeadError, QuantizationError
from tfltransfer.heads.head import Head
from tfltransfer.heads.program import HeadProgram
from tfltransfer.optimizers.optimizer import Optimizer

log = logging.getLogger(__name__)

#: train_head's inputs whose batch is dynamic (listed as -1 in the manifest).
DYNAMIC_TRAIN_INPUTS = (fmt.BOTTLENECKS, fmt.LABELS)


@dataclass
class ConvertedModel:
    """One converted model with the facts the manifest records about it."""

    name: str
    content: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    seconds: float
    ops: list[str] = field(default_factory=list)

    @property
    def requires_flex(self) -> bool:
        """True when the model uses select TF ops."""
        return tflite_model_info.needs_flex(self.ops)


def _spec(shape: tuple[int | None, ...], name: str) -> tf.TensorSpec:
    return tf.TensorSpec(list(shape), tf.float32, name=name)


def convert_function(
    name: str, function: tf.types.experimental.PolymorphicFunction, allow_flex: bool
) -> tuple[bytes, float]:
    """Convert a stateless ``tf.function`` to TFLite, builtin ops only unless ``allow_flex``.

    The functions here hold no variables (parameters are inputs), so ``from_concrete_functions``
    is safe for them.
    """
    started = time.perf_counter()
    holder = tf.Module()
    holder.function = function
    concrete = function.get_concrete_function()
    # Passing the owner makes the converter write a serving_default signature.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    if allow_flex:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
    try:
        content = converter.convert()
    except Exception as exc:  # the converter raises several unrelated types
        raise ConverterError(f"converting {name} failed: {exc}") from exc
    return content, time.perf_counter() - started


def in_positional_order(
    name: str, content: bytes, order: fmt.SignatureOrder, *edits: tflite_model_info.ModelEdit
) -> bytes:
    """``content`` after ``edits``, with its inputs and outputs in the seed's positional order,
    checked by reading the order back as a positional consumer sees it."""
    try:
        content = tflite_model_info.rewrite(
            content, *edits, tflite_model_info.positional_order(order.inputs, order.outputs)
        )
    except ValueError as exc:
        raise ConverterError(f"{name}: cannot put the tensors in positional order: {exc}") from None
    inputs, outputs = tflite_model_info.positional_names(content)
    if (tuple(inputs), tuple(outputs)) != (order.inputs, order.outputs):
        raise ConverterError(
            f"{name}: positional order is {inputs} -> {outputs}, the format's is "
            f"{list(order.inputs)} -> {list(order.outputs)}"
        )
    return content


class TFLiteTransferConverter:
    """Converts a base, a head and an optimizer into an on-device-trainable bundle.

    Args:
      num_classes: number of classes the head distinguishes.
      base: a base configuration from :mod:`tfltransfer.bases`.
      head: a head configuration from :mod:`tfltransfer.heads`.
      optimizer: an optimizer from :mod:`tfltransfer.optimizers`.
      train_batch_size: the largest training batch (train_head's default batch); any smaller
        batch works too after a resize.
      class_names: optional class names recorded in the manifest (default ``class_0``...).
      edgetpu: also write ``bottleneck_edgetpu.tflite`` (needs ``edgetpu_compiler`` and a fully
        int8-quantized base, i.e. a representative data set).
    """

    def __init__(
        self,
        num_classes: int,
        base: Base,
        head: Head,
        optimizer: Optimizer,
        train_batch_size: int,
        class_names: list[str] | None = None,
        edgetpu: bool = False,
    ) -> None:
        if int(num_classes) < 2:
            raise ConverterError(f"num_classes must be at least 2, got {num_classes}")
        if int(train_batch_size) < 1:
            raise ConverterError(f"train_batch_size must be at least 1, got {train_batch_size}")
        self.num_classes = int(num_classes)
        self.base = base
        self.head = head
        self.optimizer = optimizer
        self.train_batch_size = int(train_batch_size)
        names = list(class_names) if class_names else [f"class_{i}" for i in range(num_classes)]
        if len(names) != self.num_classes or len(set(names)) != len(names) or not all(names):
            raise ConverterError(
                f"class names {names} must be {self.num_classes} distinct non-empty names"
            )
        self.class_names = names
        self.edgetpu = bool(edgetpu)
        self.extra_files: dict[str, bytes] = {}

    # -- building -----------------------------------------------------------------------------
    def _convert_base(self) -> tuple[ConvertedModel, tuple[int, ...], tuple[int, ...]]:
        started = time.perf_counter()
        content = self.base.tflite_model()
        try:
            (in_name,), (out_name,) = tflite_model_info.single_signature_names(content)
        except ValueError as exc:
            raise ConverterError(
                f"the converted base must have one input and one output: {exc}"
            ) from None
        order = fmt.signature_order(fmt.BOTTLENECK, 0, 0)
        content = in_positional_order(
            fmt.BOTTLENECK,
            content,
            order,
            tflite_model_info.rename_signature(fmt.IMAGE, fmt.BOTTLENECK),
        )
        # Measured from the converted model at its default (batch 1) allocation.
        (input_shape,), (output_shape,) = tflite_model_info.allocated_shapes(content)
        if not input_shape or input_shape[0] != 1 or not output_shape or output_shape[0] != 1:
            raise ConverterError(
                f"the converted base maps {input_shape} to {output_shape}; both must start with "
                "a batch dimension of 1"
            )
        bottleneck_shape = output_shape[1:]
        log.info(
            "base %s -> %s (signature %s -> %s)", input_shape, bottleneck_shape, in_name, out_name
        )
        model = ConvertedModel(
            fmt.BOTTLENECK, content, order.inputs, order.outputs, time.perf_counter() - started
        )
        return model, input_shape, bottleneck_shape

    def _check_head_fits(self, bottleneck_shape: tuple[int, ...]) -> None:
        expected = self.head.input_shape
        if expected is None:
            return
        fits = len(expected) == len(bottleneck_shape) and all(
            e in (-1, b) for e, b in zip(expected, bottleneck_shape, strict=True)
        )
        if not fits:
            raise HeadError(
                f"the head takes bottlenecks of shape {tuple(expected)} but the base produces "
                f"{tuple(bottleneck_shape)}; build the head for {tuple(bottleneck_shape)}"
            )

    def build_functions(self, program: HeadProgram, bottleneck_shape: tuple[int, ...]) -> dict:
        """The four stateless ``tf.function``s (all but the bottleneck), keyed by model name.

        Each entry is ``(function, input names, output names)``, names in the seed's positional
        order; a function takes its inputs in that order and returns a dict by output name.
        """
        n_params = len(program.parameters)
        state = self.optimizer.state_specs(program.parameters)
        orders = {
            name: fmt.signature_order(name, n_params, len(state))
            for name in ("initialize", "train_head", "inference", "optimizer")
        }
        param_specs = [_spec(p.shape, fmt.param(i)) for i, p in enumerate(program.parameters)]
        initial = [tf.constant(p.initial) for p in program.parameters]
        c = self.num_classes

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name=fmt.ZERO)])
        def initialize(zero: tf.Tensor) -> dict:
            # Adding the input keeps the outputs computed (an output that is a bare constant
            # confuses some runtimes); the runtime feeds 0.
            return {
                name: value + zero
                for name, value in zip(orders["initialize"].outputs, initial, strict=True)
            }

        @tf.function(
            input_signature=[
                _spec((None, *bottleneck_shape), fmt.BOTTLENECKS),
                _spec((None, c), fmt.LABELS),
                *param_specs,
            ]
        )
        def train_head(bottlenecks: tf.Tensor, labels: tf.Tensor, *params: tf.Tensor) -> dict:
            loss, grads = program.loss_and_grads(bottlenecks, labels, list(params))
            out = {fmt.LOSS: tf.reshape(loss, [])}
            out.update({fmt.grad(i): g for i, g in enumerate(grads)})
            return out

        # Any batch: a consumer may classify many bottlenecks in one run (the seed's does).
        @tf.function(
            input_signature=[_spec((None, *bottleneck_shape), fmt.BOTTLENECK), *param_specs]
        )
        def inference(bottleneck: tf.Tensor, *params: tf.Tensor) -> dict:
            return {fmt.PROBABILITIES: program.probabilities(bottleneck, list(params))}

        opt_specs = (
            param_specs
            + [_spec(p.shape, fmt.grad(i)) for i, p in enumerate(program.parameters)]
            + [_spec(s.shape, fmt.state(j)) for j, s in enumerate(state)]
        )

        @tf.function(input_signature=opt_specs)
        def optimizer(*tensors: tf.Tensor) -> dict:
            params = list(tensors[:n_params])
            grads = list(tensors[n_params : 2 * n_params])
            new_params, new_state = self.optimizer.update(
                params, grads, list(tensors[2 * n_params :])
            )
            out = {fmt.new_param(i): p for i, p in enumerate(new_params)}
            out.update({fmt.new_state(j): s for j, s in enumerate(new_state)})
            return out

        functions = {
            "initialize": initialize,
            "train_head": train_head,
            "inference": inference,
            "optimizer": optimizer,
        }
        return {
            name: (functions[name], orders[name].inputs, orders[name].outputs) for name in functions
        }

    def _convert_head(
        self, program: HeadProgram, bottleneck_shape: tuple[int, ...]
    ) -> list[ConvertedModel]:
        models = []
        for name, (function, inputs, outputs) in self.build_functions(
            program, bottleneck_shape
        ).items():
            allow_flex = program.requires_flex and name in ("train_head", "inference")
            try:
                content, seconds = convert_function(name, function, allow_flex=False)
            except ConverterError:
                if not allow_flex:
                    raise
                content, seconds = convert_function(name, function, allow_flex=True)
            edits = []
            if name == "train_head":
                # The seed's consumer feeds full batches without resizing: allocate at the
                # largest batch by default; smaller ones still work after a resize.
                edits.append(
                    tflite_model_info.default_batch(DYNAMIC_TRAIN_INPUTS, self.train_batch_size)
                )
            order = fmt.SignatureOrder(inputs, outputs)
            content = in_positional_order(name, content, order, *edits)
            models.append(ConvertedModel(name, content, inputs, outputs, seconds))
        return models

    def convert(self) -> tuple[dict[str, ConvertedModel], dict, HeadProgram]:
        """Convert everything in memory: ``(models, manifest, program)``.

        The manifest is complete (file hashes and bundle id of these models included) and has
        passed the runtime's own manifest checks.
        """
        if self.edgetpu:
            edgetpu.compiler_path()  # fail before the slow conversion when it is missing
        self.extra_files = {}
        base_model, input_shape, bottleneck_shape = self._convert_base()
        self._check_head_fits(bottleneck_shape)
        if self.edgetpu:
            if self.base.manifest_info()["quantization"] != "int8":
                raise QuantizationError(
                    "--edgetpu needs a fully int8-quantized base: add --representative_images DIR"
                )
            # edgetpu_compiler takes static shapes only: the compiled copy keeps batch 1.
            static = tflite_model_info.rewrite(base_model.content, tflite_model_info.static_shapes)
            self.extra_files[fmt.EDGETPU_BOTTLENECK] = edgetpu.compile_for_edgetpu(static)
        program = self.head.build(bottleneck_shape, self.num_classes)
        models = {fmt.BOTTLENECK: base_model}
        for model in self._convert_head(program, bottleneck_shape):
            models[model.name] = model
        for model in models.values():
            model.ops = tflite_model_info.op_names(model.content)
        manifest = self._manifest(models, program, input_shape, bottleneck_shape)
        manifest = bundle_writer.complete_manifest(manifest, self.files_of(models))
        return models, manifest, program

    def _convert(self) -> dict[str, bytes]:
        """The five models as ``{name: tflite flatbuffer}`` (the seed's API; nothing written).

        Every model takes and returns its tensors in the seed's positional order.
        """
        models, _manifest, _program = self.convert()
        return {name: models[name].content for name in fmt.MODEL_NAMES}

    def files_of(self, models: dict[str, ConvertedModel]) -> dict[str, bytes]:
        """The bundle's files (all but the manifest) for ``models``: file name -> content."""
        files = {fmt.model_file(name): m.content for name, m in models.items()}
        files.update(self.extra_files)
        return files

    def _manifest(
        self,
        models: dict[str, ConvertedModel],
        program: HeadProgram,
        input_shape: tuple[int, ...],
        bottleneck_shape: tuple[int, ...],
    ) -> dict:
        state = self.optimizer.state_specs(program.parameters)
        class_axes = program.class_axes(self.num_classes)
        return {
            "format": fmt.FORMAT,
            "format_version": fmt.FORMAT_VERSION,
            "bundle_id": None,  # filled in from the file hashes
            "created": {
                "converter": f"tfltransfer {tfltransfer.__version__}",
                "tensorflow": tf.__version__,
                "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "input": {"shape": list(input_shape), **self.base.input_info()},
            "base": self.base.manifest_info(),
            "bottleneck": {"shape": list(bottleneck_shape), "dtype": "float32"},
            "head": program.manifest_info(),
            "parameters": [
                {"name": p.name, "shape": list(p.shape), "dtype": "float32", "class_axis": axis}
                for p, axis in zip(program.parameters, class_axes, strict=True)
            ],
            "optimizer": {
                "kind": self.optimizer.kind,
                "hyperparameters": self.optimizer.hyperparameters(),
                "state": [
                    {"name": s.name, "shape": list(s.shape), "dtype": "float32", "init": s.init}
                    for s in state
                ],
            },
            "train": {
                "max_batch_size": self.train_batch_size,
                "dynamic_batch": True,
                "loss": "categorical_crossentropy",
            },
            "requires_flex": any(m.requires_flex for m in models.values()),
            "models": {
                name: {
                    "file": fmt.model_file(name),
                    "requires_flex": m.requires_flex,
                    "ops": m.ops,
                    **tflite_model_info.signature_specs(
                        m.content,
                        m.inputs,
                        m.outputs,
                        dynamic=DYNAMIC_TRAIN_INPUTS if name == "train_head" else (),
                    ),
                }
                for name, m in sorted(models.items())
            },
        }

    # -- writing ------------------------------------------------------------------------------
    def convert_and_save(self, out_model_dir: str | Path, verify: bool = True) -> dict:
        """Convert and write the bundle to ``out_model_dir`` atomically; return the manifest.

        Everything is written to a temporary folder beside the target and renamed into place at
        the end, so a failure never leaves a half-written bundle. An existing bundle there is
        replaced; any other existing folder is refused.
        """
        target = Path(out_model_dir)
        bundle_writer.check_target(target)
        models, manifest, program = self.convert()
        with bundle_writer.staging_dir(target) as staging:
            bundle_writer.write_bundle(staging, self.files_of(models), manifest)
            if verify:
                from tfltransfer import verify as verify_module

                report = verify_module.verify_bundle(staging, self, program, models)
                print(report)
            bundle_writer.publish(staging, target)
        self.last_program = program
        return manifest
