"""`autopatch predict`: score image files with a saved model (.pt, .onnx, .xml); PNG + .npy per image, a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autopatch.cli.common import add_batch_size, add_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="anomaly maps for an image or a folder of images",
        description="Writes <stem>.png (image | heatmap overlay | thresholded mask outline) and <stem>.npy "
        "(raw float32 score map) per image, and predictions.csv (file, image_score = the map's maximum, label "
        "OK/NG by the model's image threshold, defect_area_px at or above its pixel threshold). Non-image files "
        "in a folder are skipped with a warning; "
        "unreadable images are reported and the rest still processed. Exit code 0 when every image was "
        "processed, 1 when any could not be read.",
    )
    parser.add_argument("model", type=Path, help="model file: .pt (`fit` / `export`), .onnx or .xml (`convert`)")
    parser.add_argument("input", type=Path, help="an image file or a folder of images (not recursive)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNG and .npy files")
    add_device(parser)
    add_batch_size(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import load_inferencer, predict

    model = load_inferencer(args.model, device=args.device)
    report = predict(model, args.input, args.out, batch_size=args.batch_size, progress=True)
    for path in report.skipped:
        print(f"warning: skipped {path} (not an image file)", file=sys.stderr)
    for path, reason in report.failures:
        print(f"error: could not read {path}: {reason}", file=sys.stderr)
    print(f"wrote {len(report.written)} prediction(s) and {report.csv} to {args.out}"
          + ("" if model.threshold is not None else " (model has no threshold: no mask outline)"))
    if model.image_threshold is None:
        print("no OK/NG: the model has no image threshold; re-create it with `autopatch fit` or `autopatch export`")
    else:
        print(f"{len(report.predictions)} images, {report.ng} NG (image threshold {model.image_threshold:.6g})")
    return 1 if report.failures or not report.written else 0
