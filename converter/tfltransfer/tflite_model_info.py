"""Facts read from a converted ``.tflite`` flatbuffer and its signature: ops and tensor specs."""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


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


def _spec(name: str, details: dict) -> dict:
    return {
        "name": name,
        "shape": [int(d) for d in details["shape_signature"]],
        "dtype": details["dtype"].__name__,
    }


def signature_specs(model: bytes, input_order: list[str], output_order: list[str]) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` for the manifest, in the given name order.

    Raises:
      ValueError: the signature does not have exactly these names.
    """
    interpreter = Interpreter(model_content=model)
    runner = interpreter.get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    if sorted(inputs) != sorted(input_order) or sorted(outputs) != sorted(output_order):
        raise ValueError(
            f"signature {sorted(inputs)} -> {sorted(outputs)} does not match the expected "
            f"{sorted(input_order)} -> {sorted(output_order)}"
        )
    return {
        "inputs": [_spec(n, inputs[n]) for n in input_order],
        "outputs": [_spec(n, outputs[n]) for n in output_order],
    }


def single_signature_names(model: bytes) -> tuple[list[str], list[str]]:
    """Input and output names of the model's only signature."""
    signatures = Interpreter(model_content=model).get_signature_list()
    if len(signatures) != 1:
        raise ValueError(f"expected one signature, found {sorted(signatures)}")
    (entry,) = signatures.values()
    return list(entry["inputs"]), list(entry["outputs"])


def rename_signature(model: bytes, input_name: str, output_name: str) -> bytes:
    """Give a one-input, one-output model's signature the bundle's canonical names."""
    import flatbuffers

    root = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    (signature,) = root.signatureDefs
    if len(signature.inputs) != 1 or len(signature.outputs) != 1:
        raise ValueError("the base model must have exactly one input and one output")
    signature.inputs[0].name = input_name.encode()
    signature.outputs[0].name = output_name.encode()
    signature.signatureKey = b"serving_default"
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
