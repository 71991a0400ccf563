"""``convscope export MODEL --onnx OUT --keras OUT``: a model file (convscope or Keras) as ONNX and / or Keras 3."""

from __future__ import annotations


def register(subparsers) -> dict:
    export = subparsers.add_parser(
        "export", allow_abbrev=False, help="write a model as an ONNX graph and / or a Keras 3 .keras file",
        description="Convert a model file (.convscope, .keras or legacy Keras .h5) to ONNX (run by onnxruntime "
        "and other engines; NHWC float32 input) and / or to a Keras 3 .keras file. Needs the interop extra: "
        "pip install 'convscope[interop]'.",
    )
    export.add_argument("model", help="a model file (.convscope, .keras, .h5)")
    export.add_argument("--onnx", metavar="OUT", help="write an ONNX graph to OUT (e.g. model.onnx)")
    export.add_argument("--keras", metavar="OUT", help="write a Keras 3 model to OUT (e.g. model.keras)")
    return {"export": cmd_export}


def cmd_export(args) -> int:
    from ..saving import load_model

    if not args.onnx and not args.keras:
        raise ValueError("export: say what to write: --onnx OUT and / or --keras OUT")
    model = load_model(args.model, compile=False)
    if args.onnx:
        model.export_onnx(args.onnx)
        print(f"Wrote {args.onnx}: ONNX, input (batch, {', '.join(map(str, model.input_shape[1:]))}) float32")
    if args.keras:
        model.save_keras(args.keras)
        print(f"Wrote {args.keras}: Keras 3 model file (keras.models.load_model)")
    return 0
