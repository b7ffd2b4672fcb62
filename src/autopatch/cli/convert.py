"""`autopatch convert`: a model file as one file for another runtime (ONNX), checked against the torch model."""

from __future__ import annotations

import argparse
from pathlib import Path

CONVERT_FORMATS = ("onnx", "openvino")  # deploy.convert.FORMATS, spelled here so --help imports no torch
CONVERT_PRECISIONS = ("fp32", "fp16")  # deploy.convert.MAX_DIFFERENCE's keys, likewise


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a model file to ONNX or OpenVINO (memory bank and thresholds inside)",
        description="Writes one .onnx file (or OpenVINO's .xml + .bin) that takes uint8 RGB images "
        "[N, S, S, 3] and returns the anomaly map, image score, OK/NG label and defect mask; it runs with its "
        "runtime alone (no torch, no faiss). It is checked against the torch model on probe images before it is "
        "kept.",
    )
    parser.add_argument("model", type=Path, help="model file written by `autopatch fit` or `autopatch export`")
    parser.add_argument("--format", default="onnx", choices=CONVERT_FORMATS, help="target runtime's format")
    parser.add_argument("--precision", default="fp32", choices=CONVERT_PRECISIONS,
                        help="how weights and memory bank are stored: fp16 halves the file, computing in fp32")
    parser.add_argument("--out", required=True, type=Path, help="file to write: model.onnx, or model.xml for openvino")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import convert

    result = convert(args.model, args.out, format=args.format, precision=args.precision)
    rows, dims = result.bank_shape
    print(f"wrote {result.path} ({result.size_bytes / 2**20:.1f} MiB, memory bank {rows} x {dims})")
    print(f"checked: its anomaly maps differ from the torch model's by at most {result.max_relative_difference:.1e} "
          "of the largest value on probe images")  # fmt: skip
    return 0
