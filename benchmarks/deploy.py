"""Deployed-model speed in torch, ONNX Runtime and OpenVINO: batch-1 latency (median, p95), batch-32 images/s.

Models at 224 px, each with a memory bank the size a `--coreset` (default 10 %) coreset of bottle's 189 train
images gives:
(a) the README's chosen bottle k=1 model at 224 px (seed 0: EfficientNet-Lite2, five blocks from stride 4);
(b) AutoPatch-style EfficientNet-Lite0 blocks 4 + 10 (strides 8, 16), patch size 3 (benchmarks/segmenter.py's);
(c) PatchCore WRN-50-2 (layer2 + layer3) and (d) PatchCore EfficientNet-Lite0 (blocks 4 + 10), 1024-d; and any
`--model` file as it is (e.g. the pick of a `--cost latency` search).
Encoder weights are random and bank rows random normal: speed depends only on the shapes. The ONNX and
OpenVINO (fp32) files are the ones `autopatch convert` writes. Prints a table and the ratios against (c) in
the same run, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from autopatch.backbones import create_encoder
from autopatch.baselines.patchcore import build_patchcore
from autopatch.deploy import convert_model, load_inferencer
from autopatch.deploy.latency import with_random_bank
from autopatch.segmenter import Segmenter

SIZE = 224
TRAIN_IMAGES = 189
CONFIGS = {  # name: (encoder, blocks, patch sizes or None for PatchCore)
    "autopatch_bottle224_k1_s0": ("efficientnet_lite2", [2, 4, 7, 12, 15], [9, 2, 10, 16, 14]),
    "autopatch_lite0_b4_b10": ("efficientnet_lite0", [4, 10], [3, 3]),
    "patchcore_wrn50_2": ("wide_resnet50_2", [2, 3], None),
    "patchcore_lite0": ("efficientnet_lite0", [4, 10], None),
}
BASELINE = "patchcore_wrn50_2"


def model_file(name: str, folder: Path, coreset: float) -> tuple[Path, list[int]]:
    """A model file of config `name` with a random bank of a `coreset` fraction's size; the bank's shape."""
    encoder_name, blocks, sizes = CONFIGS[name]
    torch.manual_seed(0)
    encoder = create_encoder(encoder_name, pretrained=False)
    if sizes is None:
        segmenter = build_patchcore(encoder, SIZE, blocks, coreset=None)
    else:
        segmenter = Segmenter(encoder, blocks, sizes, SIZE)
    height, width = segmenter.feature_map_size
    with_random_bank(segmenter, round(coreset * TRAIN_IMAGES * height * width))
    return segmenter.save(folder / f"{name}.pt"), list(segmenter.bank.patches.shape)


def timings(inferencer, batch1: int, batch32: int) -> dict[str, float]:
    images = np.random.default_rng(0).integers(0, 256, (max(batch1, batch32), SIZE, SIZE, 3), dtype=np.uint8)
    inferencer.predict(images[:1])  # warm-up
    latencies = []
    for i in range(batch1):
        start = time.perf_counter()
        inferencer.predict(images[i : i + 1])
        latencies.append(1000 * (time.perf_counter() - start))
    start = time.perf_counter()
    for first in range(0, batch32, 32):
        inferencer.predict(images[first : first + 32])
    return {"latency_ms_median": statistics.median(latencies),
            "latency_ms_p95": float(np.percentile(latencies, 95)),
            "images_per_s_batch32": batch32 / (time.perf_counter() - start)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("runs/bench/deploy.json"))
    parser.add_argument("--coreset", type=float, default=0.1, help="bank rows as a fraction of the train patches")
    parser.add_argument("--batch1-images", type=int, default=10, help="images timed one at a time")
    parser.add_argument("--batch32-images", type=int, default=32, help="images timed in batches of 32")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="also time this 224 px model file (its own bank), e.g. an `autopatch export`")
    parser.add_argument("--only-models", action="store_true",
                        help="time the --model files beside the WRN-50-2 baseline only")
    args = parser.parse_args()
    rows = []
    names = [BASELINE] if args.only_models else list(CONFIGS)
    with tempfile.TemporaryDirectory() as folder:
        for name in [*names, *args.model]:
            if isinstance(name, Path):
                pt, name = name, name.stem
                bank = list(Segmenter.load(pt).bank.patches.shape)
            else:
                pt, bank = model_file(name, Path(folder), args.coreset)
            onnx_file = convert_model(pt, Path(folder) / f"{name}.onnx", "onnx").path
            xml = convert_model(pt, Path(folder) / f"{name}.xml", "openvino").path
            for runtime, path in (("torch", pt), ("onnxruntime", onnx_file), ("openvino", xml)):
                speed = timings(load_inferencer(path), args.batch1_images, args.batch32_images)
                rows.append({"config": name, "runtime": runtime, "bank": bank, **speed})
                print(rows[-1], flush=True)
    best_baseline = max(r["images_per_s_batch32"] for r in rows if r["config"] == BASELINE)
    print(f"\ntorch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, {SIZE} px, "
          f"banks {args.coreset} of {TRAIN_IMAGES} images")  # fmt: skip
    print(f"{'config':<26} {'runtime':<12} {'b1 ms med':>9} {'b1 ms p95':>9} {'b32 img/s':>9} {'vs WRN best':>11}")
    for r in rows:
        ratio = r["images_per_s_batch32"] / best_baseline
        print(f"{r['config']:<26} {r['runtime']:<12} {r['latency_ms_median']:>9.1f} {r['latency_ms_p95']:>9.1f} "
              f"{r['images_per_s_batch32']:>9.2f} {ratio:>10.1f}x")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"image_size": SIZE, "coreset": args.coreset,
                                     "torch_threads": torch.get_num_threads(),
                                     "load_average_1min": os.getloadavg()[0], "results": rows}, indent=2))  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
