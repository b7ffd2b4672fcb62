"""What fp16 storage costs: one model converted to ONNX and OpenVINO at fp32 and fp16, scored on the test split.

The model: EfficientNet-Lite0 blocks 4 + 10, patch size 3, fitted on bottle's train split (k=1 splits, a seeded
random `--bank-fraction` of the bank, thresholds on validation). Each converted file scores the test split in
its own runtime; the table gives file size, test rwAP / AUROC / image AUROC and the largest map difference
from the torch model, relative to its largest value.

    python benchmarks/deploy_precision.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import autopatch
from autopatch.data import load_splits
from autopatch.files import write_text
from autopatch.metrics import image_metrics, image_scores, segmentation_metrics

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "mvtec_bottle")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--bank-fraction", type=float, default=0.1)
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "deploy_precision.json")
    return parser.parse_args()


def scored(inferencer: autopatch.Inferencer, images: np.ndarray, batch: int = 16) -> np.ndarray:
    parts = [inferencer.predict(images[start : start + batch]).anomaly_maps for start in range(0, len(images), batch)]
    return np.concatenate(parts)


def main() -> None:
    args = parse_args()
    test = load_splits(args.data, args.category, 1, image_size=args.image_size).test
    images = test.images.permute(0, 2, 3, 1).contiguous().numpy()
    masks, types = test.masks.numpy(), list(test.types)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "model.pt"
        autopatch.fit(args.data, args.category, "efficientnet_lite0", [4, 10], [3, 3], image_size=args.image_size,
                      bank_fraction=args.bank_fraction, device="cpu", out=model)  # fmt: skip
        want = scored(autopatch.load_inferencer(model), images)
        files = [("torch", "fp32", model)]
        for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
            for precision in ("fp32", "fp16"):
                out = Path(folder) / f"model-{precision}{suffix}"
                files.append((fmt, precision, autopatch.convert(model, out, format=fmt, precision=precision).path))
        for fmt, precision, path in files:
            maps = want if fmt == "torch" else scored(autopatch.load_inferencer(path), images)
            size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if fmt == "openvino" else 0)
            metrics = segmentation_metrics(maps, masks, types) | image_metrics(image_scores(maps), test.is_anomalous)
            rows.append({"runtime": fmt, "precision": precision, "mib": size / 2**20,
                         "max_relative_difference": float(np.abs(maps - want).max() / np.abs(want).max()),
                         **{key: float(metrics[key]) for key in ("rwap", "auroc", "image_auroc")}})  # fmt: skip
    print(f"\n{args.category} test split ({len(images)} images), Lite0 4+10 P3, {args.image_size} px, "
          f"bank fraction {args.bank_fraction:g}")
    print(f"{'runtime':>9} {'precision':>9} {'MiB':>7} {'rwAP %':>7} {'AUROC %':>8} {'imgAUROC %':>10} {'max diff':>9}")
    for r in rows:
        print(f"{r['runtime']:>9} {r['precision']:>9} {r['mib']:7.1f} {100 * r['rwap']:7.2f} {100 * r['auroc']:8.2f} "
              f"{100 * r['image_auroc']:10.2f} {r['max_relative_difference']:9.1e}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
