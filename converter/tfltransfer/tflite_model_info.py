"""Facts read from a converted ``.tflite`` flatbuffer, and the few edits the bundle format needs.

Reading: op names, the signature's tensors (by name, and in positional order). Editing, through
LiteRT's flatbuffer object API: give the base's signature the bundle's names, put the primary
subgraph's inputs and outputs in the seed's positional order, give the dynamic train batch a
default size, and freeze every shape (for the Edge TPU compiler). Signature definitions (name ->
tensor index) are never changed by these edits, so name-based and position-based consumers see
the same tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from personalizer.bundle_format import SIGNATURE_KEY

_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}

#: An in-place change of a model's object tree (``schema.ModelT``).
ModelEdit = Callable[[schema.ModelT], None]


def op_names(model: bytes) -> list[str]:
    """Sorted names of the ops the model's operators use (``Flex*`` for select TF ops)."""
    root = schema.Model.GetRootAs(model, 0)
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append((code.CustomCode() or b"CUSTOM").decode())
        else:
            codes.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    used = set()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            used.add(codes[graph.Operators(o).OpcodeIndex()])
    return sorted(used)


def needs_flex(ops: list[str]) -> bool:
    """True when any op is a select TensorFlow op."""
    return any(op.startswith("Flex") for op in ops)


def _spec(name: str, details: dict, dynamic: bool) -> dict:
    # The dynamic train batch is listed as -1 (its shape signature); every other tensor with
    # the size a runtime allocates it at, which is 1 for the batch of bottleneck and inference.
    dims = details["shape_signature"] if dynamic else details["shape"]
    return {"name": name, "shape": [int(d) for d in dims], "dtype": details["dtype"].__name__}


def signature_specs(
    model: bytes,
    input_order: Sequence[str],
    output_order: Sequence[str],
    dynamic: Iterable[str] = (),
) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` for the manifest, in the given name order.

    ``dynamic`` names the tensors whose batch dimension the manifest lists as ``-1``.

    Raises:
      ValueError: the signature does not have exactly these names.
    """
    dynamic = set(dynamic)
    interpreter = Interpreter(model_content=model)
    runner = interpreter.get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    if sorted(inputs) != sorted(input_order) or sorted(outputs) != sorted(output_order):
        raise ValueError(
            f"signature {sorted(inputs)} -> {sorted(outputs)} does not match the expected "
            f"{sorted(input_order)} -> {sorted(output_order)}"
        )
    return {
        "inputs": [_spec(n, inputs[n], n in dynamic) for n in input_order],
        "outputs": [_spec(n, outputs[n], n in dynamic) for n in output_order],
    }


def positional_names(model: bytes) -> tuple[list[str], list[str]]:
    """The signature names of ``get_input_details()`` / ``get_output_details()``, in that order.

    This is what a consumer that reads the model by position (the seed's) sees.
    """
    interpreter = Interpreter(model_content=model)
    (key,) = interpreter.get_signature_list()
    runner = interpreter.get_signature_runner(key)
    by_index = {int(d["index"]): n for n, d in runner.get_input_details().items()}
    by_index.update({int(d["index"]): n for n, d in runner.get_output_details().items()})
    return (
        [by_index.get(int(d["index"]), "?") for d in interpreter.get_input_details()],
        [by_index.get(int(d["index"]), "?") for d in interpreter.get_output_details()],
    )


def single_signature_names(model: bytes) -> tuple[list[str], list[str]]:
    """Input and output names of the model's only signature."""
    signatures = Interpreter(model_content=model).get_signature_list()
    if len(signatures) != 1:
        raise ValueError(f"expected one signature, found {sorted(signatures)}")
    (entry,) = signatures.values()
    return list(entry["inputs"]), list(entry["outputs"])


def has_dynamic_batch(model: bytes) -> bool:
    """True when every input's first dimension is dynamic (-1 in its shape signature)."""
    details = Interpreter(model_content=model).get_input_details()
    return all(len(d["shape_signature"]) and int(d["shape_signature"][0]) == -1 for d in details)


def allocated_shapes(model: bytes) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Input and output shapes, in positional order, after allocating at the default sizes.

    Measured, not read from declarations: an output dimension the model leaves open (-1) in its
    shape signature gets its real size here.
    """
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    return (
        [tuple(int(d) for d in x["shape"]) for x in interpreter.get_input_details()],
        [tuple(int(d) for d in x["shape"]) for x in interpreter.get_output_details()],
    )


# --- edits ----------------------------------------------------------------------------------------


def rewrite(model: bytes, *edits: ModelEdit) -> bytes:
    """Apply ``edits`` to the model's object tree and serialise it again."""
    root = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for edit in edits:
        edit(root)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _only_signature(root: schema.ModelT) -> schema.SignatureDefT:
    signatures = root.signatureDefs or []
    if len(signatures) != 1:
        raise ValueError(f"the model must have exactly one signature, it has {len(signatures)}")
    return signatures[0]


def rename_signature(input_name: str, output_name: str) -> ModelEdit:
    """Give a one-input, one-output model's signature the bundle's names (``serving_default``)."""

    def edit(root: schema.ModelT) -> None:
        signature = _only_signature(root)
        if len(signature.inputs) != 1 or len(signature.outputs) != 1:
            raise ValueError("the base model must have exactly one input and one output")
        signature.inputs[0].name = input_name.encode()
        signature.outputs[0].name = output_name.encode()
        signature.signatureKey = SIGNATURE_KEY.encode()

    return edit


def positional_order(inputs: Sequence[str], outputs: Sequence[str]) -> ModelEdit:
    """Put the primary subgraph's inputs and outputs in the order of these signature names.

    ``get_input_details()`` / ``get_output_details()`` (and Java's
    ``runForMultipleInputsOutputs``) follow the subgraph's lists; the signature keeps mapping
    names to the same tensors.
    """

    def edit(root: schema.ModelT) -> None:
        signature = _only_signature(root)
        graph = root.subgraphs[signature.subgraphIndex]
        if signature.subgraphIndex != 0:
            raise ValueError("the signature is not over the primary subgraph")
        by_name_in = {t.name.decode(): int(t.tensorIndex) for t in signature.inputs}
        by_name_out = {t.name.decode(): int(t.tensorIndex) for t in signature.outputs}
        for kind, names, by_name, current in (
            ("inputs", inputs, by_name_in, graph.inputs),
            ("outputs", outputs, by_name_out, graph.outputs),
        ):
            if sorted(names) != sorted(by_name):
                raise ValueError(f"signature {kind} {sorted(by_name)} are not {sorted(names)}")
            wanted = [by_name[n] for n in names]
            if len(set(wanted)) != len(wanted) or sorted(wanted) != sorted(int(i) for i in current):
                raise ValueError(
                    f"the signature's {kind} are not the subgraph's {kind} one to one; "
                    "cannot order them"
                )
        graph.inputs = np.array([by_name_in[n] for n in inputs], dtype=np.int32)
        graph.outputs = np.array([by_name_out[n] for n in outputs], dtype=np.int32)
        # The signature's own lists follow suit (readers that list them see the same order).
        signature.inputs.sort(key=lambda t: list(inputs).index(t.name.decode()))
        signature.outputs.sort(key=lambda t: list(outputs).index(t.name.decode()))

    return edit


def default_batch(names: Iterable[str], batch: int) -> ModelEdit:
    """Allocate the dynamic batch of these signature inputs at ``batch`` by default.

    The shape signature keeps ``-1`` (any batch still works after a resize); the shape, which
    an interpreter allocates before any resize, becomes ``batch``: a consumer that feeds full
    batches without resizing (the seed's) finds the size it expects.
    """
    names = set(names)

    def edit(root: schema.ModelT) -> None:
        signature = _only_signature(root)
        graph = root.subgraphs[signature.subgraphIndex]
        for entry in signature.inputs:
            if entry.name.decode() not in names:
                continue
            tensor = graph.tensors[entry.tensorIndex]
            if tensor.shapeSignature is None or int(tensor.shapeSignature[0]) != -1:
                raise ValueError(f"input {entry.name.decode()!r} has no dynamic batch")
            tensor.shape = np.array([batch, *tensor.shape[1:]], dtype=np.int32)

    return edit


def static_shapes(root: schema.ModelT) -> None:
    """Fix every tensor at its default shape (drop shape signatures): for compilers that take
    no dynamic dimension, such as ``edgetpu_compiler``."""
    for graph in root.subgraphs:
        for tensor in graph.tensors:
            tensor.shapeSignature = None
