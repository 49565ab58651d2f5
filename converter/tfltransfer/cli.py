"""``tflite-transfer-convert``: the seed's command line, plus what it lacked.

Example (the seed's README command)::

    tflite-transfer-convert --base_mobilenetv2 --head_softmax --num_classes=4 \\
        --train_batch_size=20 --optimizer=sgd --sgd_learning_rate=0.0003 \\
        --out_model_dir=mobilenet_softmax_model
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flags and defaults as in the seed)."""
    parser = argparse.ArgumentParser(
        prog="tflite-transfer-convert",
        description=(
            "Build an on-device-trainable TFLite bundle (bottleneck, initialize, train_head, "
            "inference, optimizer + manifest.json) from a frozen base model and a trainable head."
        ),
        allow_abbrev=False,
    )
    base = parser.add_argument_group("base model (one of)")
    base_choice = base.add_mutually_exclusive_group(required=True)
    base_choice.add_argument("--base_mobilenetv2", action="store_true", help="MobileNetV2 base")
    base_choice.add_argument("--base_model_dir", metavar="DIR", help="base from a SavedModel")
    base.add_argument(
        "--base_quantize", action="store_true", help="quantize the base (int8 weights)"
    )
    base.add_argument(
        "--base_weights",
        default="imagenet",
        metavar="PATH|imagenet|none",
        help="MobileNetV2 weights: imagenet (download), a weights file, or none (random)",
    )
    base.add_argument("--base_image_size", type=int, default=224, help="MobileNetV2 input size")
    base.add_argument("--base_alpha", type=float, default=1.0, help="MobileNetV2 width multiplier")
    base.add_argument(
        "--base_pooling",
        choices=("none", "avg"),
        default="none",
        help="none: (h,w,1280) bottleneck; avg: a 1280-vector (49x fewer head parameters)",
    )
    base.add_argument(
        "--base_input_range",
        default=None,
        metavar="LOW,HIGH",
        help="what --base_model_dir expects (0,1, -1,1, 0,255, ...; write a negative one as "
        "--base_input_range=-1,1): for an image base the scaling from [0,1] is folded into the "
        "model (default 0,1); for a tensor base it is recorded for the runtime to check "
        "(default: none)",
    )
    base.add_argument(
        "--base_input_kind",
        choices=("auto", "image", "tensor"),
        default="auto",
        help="--base_model_dir input: auto (an (N,H,W,3) input is an image), image, or tensor "
        "(sound, sensor vectors: fed as they are)",
    )
    base.add_argument(
        "--representative_images",
        metavar="DIR",
        help="photos for full int8 quantization of the base (float input/output kept)",
    )
    base.add_argument(
        "--edgetpu", action="store_true", help="also write bottleneck_edgetpu.tflite (Coral)"
    )
    head = parser.add_argument_group("head model (one of)")
    head_choice = head.add_mutually_exclusive_group(required=True)
    head_choice.add_argument("--head_softmax", action="store_true", help="dense + softmax head")
    head_choice.add_argument("--head_model_dir", metavar="DIR", help="head from a SavedModel")
    head_choice.add_argument(
        "--head_keras_model", metavar="FILE", help="head from a saved Keras model (.keras/.h5)"
    )
    head.add_argument("--head_l2_reg", type=float, default=None, help="L2 regularization")
    parser.add_argument("--num_classes", type=int, default=4, help="number of classes")
    parser.add_argument("--class_names", metavar="A,B,C", help="class names for the manifest")
    parser.add_argument("--train_batch_size", type=int, default=20, help="largest train batch")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--sgd_learning_rate", type=float, help="required with --optimizer=sgd")
    parser.add_argument("--adam_learning_rate", type=float, default=0.001)
    parser.add_argument("--out_model_dir", required=True, metavar="DIR", help="bundle to write")
    parser.add_argument(
        "--no_verify", action="store_true", help="skip the self-check in the LiteRT interpreter"
    )
    return parser


def _class_names(args: argparse.Namespace) -> list[str] | None:
    if not args.class_names:
        return None
    return [name.strip() for name in args.class_names.split(",")]


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Errors argparse cannot see; each exits 2 with a message."""
    if args.optimizer == "sgd" and args.sgd_learning_rate is None:
        parser.error("--optimizer=sgd needs --sgd_learning_rate (e.g. --sgd_learning_rate=0.0003)")
    if args.sgd_learning_rate is not None and args.sgd_learning_rate <= 0:
        parser.error(f"--sgd_learning_rate must be > 0, got {args.sgd_learning_rate}")
    if args.adam_learning_rate <= 0:
        parser.error(f"--adam_learning_rate must be > 0, got {args.adam_learning_rate}")
    if args.num_classes < 2:
        parser.error(f"--num_classes must be at least 2, got {args.num_classes}")
    if args.train_batch_size < 1:
        parser.error(f"--train_batch_size must be at least 1, got {args.train_batch_size}")
    names = _class_names(args)
    if names is not None and len(names) != args.num_classes:
        parser.error(
            f"--class_names has {len(names)} names but --num_classes is {args.num_classes}"
        )
    if args.base_model_dir and (args.base_image_size != 224 or args.base_alpha != 1.0):
        parser.error("--base_image_size/--base_alpha apply to --base_mobilenetv2 only")
    if args.base_mobilenetv2 and (args.base_input_range or args.base_input_kind != "auto"):
        parser.error("--base_input_range/--base_input_kind apply to --base_model_dir only")
    if args.base_input_range is not None:
        from tfltransfer.errors import BaseModelError
        from tfltransfer.input_range import parse_input_range

        try:
            parse_input_range(args.base_input_range)
        except BaseModelError as exc:
            parser.error(f"--base_input_range: {exc}")
    if args.edgetpu and not args.representative_images:
        parser.error("--edgetpu needs --representative_images DIR (a fully int8 base)")


def build_converter(args: argparse.Namespace) -> object:
    """Compose the configuration objects the flags describe."""
    from tfltransfer import bases, edgetpu, heads, optimizers, representative
    from tfltransfer.tflite_transfer_converter import TFLiteTransferConverter

    if args.edgetpu:
        edgetpu.compiler_path()  # before any slow work

    if args.base_mobilenetv2:
        base = bases.MobileNetV2Base(
            image_size=args.base_image_size,
            alpha=args.base_alpha,
            quantize=args.base_quantize,
            weights=args.base_weights,
            pooling=args.base_pooling,
        )
        size = (args.base_image_size, args.base_image_size)
    else:
        base = bases.SavedModelBase(
            args.base_model_dir,
            quantize=args.base_quantize,
            input_range=args.base_input_range,
            input_kind=args.base_input_kind,
        )
        size = base.image_size if base.input_kind == "image" else None
    if args.representative_images:
        if size is None:
            from tfltransfer.errors import QuantizationError

            raise QuantizationError(
                "--representative_images needs an image base; for a tensor base, quantize with "
                "the Python API (SavedModelBase(representative_dataset=...)) and sample arrays"
            )
        base.representative_dataset = representative.from_folder(args.representative_images, size)
    if args.head_softmax:
        # input_shape None: the head fits whatever bottleneck the converted base produces.
        head = heads.SoftmaxClassifierHead(
            args.train_batch_size, None, args.num_classes, l2_reg=args.head_l2_reg
        )
    elif args.head_model_dir:
        head = heads.SavedModelHead(args.head_model_dir, l2_reg=args.head_l2_reg)
    else:
        head = heads.KerasModelHead(_load_keras_head(args.head_keras_model))
    if args.optimizer == "sgd":
        optimizer = optimizers.SGD(args.sgd_learning_rate)
    else:
        optimizer = optimizers.Adam(learning_rate=args.adam_learning_rate)
    return TFLiteTransferConverter(
        args.num_classes,
        base,
        head,
        optimizer,
        args.train_batch_size,
        class_names=_class_names(args),
        edgetpu=args.edgetpu,
    )


def _load_keras_head(path: str) -> object:
    import keras

    from tfltransfer.errors import HeadError

    if not os.path.isfile(path):
        raise HeadError(f"--head_keras_model {path}: no such file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise HeadError(
            f"--head_keras_model {path}: cannot load it as a Keras model: {exc}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tflite-transfer-convert``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from tfltransfer.errors import ConverterError

    started = time.perf_counter()
    try:
        converter = build_converter(args)
        manifest = converter.convert_and_save(args.out_model_dir, verify=not args.no_verify)
    except ConverterError as exc:
        print(f"tflite-transfer-convert: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if manifest["requires_flex"]:
        reason = manifest["head"].get("flex_reason", "the head's gradients need TensorFlow ops")
        print(
            "NOTE: this bundle needs select TensorFlow ops (Flex): "
            f"{reason}. tflite-runtime and ai-edge-litert cannot train it; use a head made of "
            "Dense/Flatten/Dropout/GlobalAveragePooling2D/BatchNormalization layers for a "
            "builtin-only bundle.",
            file=sys.stderr,
        )
    print(
        f"wrote {args.out_model_dir} (bundle {manifest['bundle_id']}, bottleneck "
        f"{tuple(manifest['bottleneck']['shape'])}, {len(manifest['parameters'])} parameter "
        f"tensors) in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
