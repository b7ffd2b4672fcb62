"""End-to-end Segmenter.predict speed (encode + 1-NN + upsample): AutoPatch-style vs PatchCore-style, same run.

(a) EfficientNet-Lite0, blocks 4 and 10 (strides 8 and 16), patch size 3, bank = 10% of 189 x 28^2 rows
    (a 10% coreset of bottle's train patches) x 152 dims;
(b) PatchCore-style WRN-50-2 layer2 + layer3, patch size 3, bank = 10% of 189 x 28^2 rows x 1536 dims.
Encoder weights are random and bank rows are random normal: speed depends only on the shapes, and the
benchmark then needs no download and no coreset run. Prints a table, writes JSON, prints the ratio a/b.
The machine may be shared: the load average is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from autopatch.backbones import create_encoder
from autopatch.segmenter import Segmenter

IMAGE_SIZE = 224
BANK_ROWS = round(0.1 * 189 * 28 * 28)
CONFIGS = {
    "autopatch_lite0_b4_b10": ("efficientnet_lite0", [4, 10], [3, 3]),
    "patchcore_wrn50_2_l2_l3": ("wide_resnet50_2", [2, 3], [3, 3]),
}


def build(backbone: str, blocks: list[int], sizes: list[int], device: str) -> Segmenter:
    torch.manual_seed(0)
    segmenter = Segmenter(create_encoder(backbone, pretrained=False), blocks, sizes, IMAGE_SIZE, device=device)
    channels = sum(segmenter.encoder.block(b).channels for b in segmenter.block_ids)
    segmenter.bank.fit(torch.randn(BANK_ROWS, channels, generator=torch.Generator().manual_seed(1)))
    return segmenter


def images_per_second(segmenter: Segmenter, batch_size: int, n_images: int) -> float:
    images = torch.randint(0, 256, (n_images, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    segmenter.predict(images[:1], batch_size=1)  # warm-up: allocator, faiss index, kernels
    start = time.perf_counter()
    segmenter.predict(images, batch_size=batch_size)
    return n_images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("runs/bench/segmenter.json"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch1-images", type=int, default=8, help="images timed at batch size 1")
    parser.add_argument("--batch32-images", type=int, default=32, help="images timed at batch size 32")
    args = parser.parse_args()

    rows = []
    for name, (backbone, blocks, sizes) in CONFIGS.items():
        segmenter = build(backbone, blocks, sizes, args.device)
        for batch_size, n_images in ((1, args.batch1_images), (32, args.batch32_images)):
            rows.append({
                "config": name,
                "batch_size": batch_size,
                "images": n_images,
                "gflops": segmenter.gflops,
                "bank": list(segmenter.bank.patches.shape),
                "images_per_s": images_per_second(segmenter, batch_size, n_images),
            })  # fmt: skip
    names = list(CONFIGS)
    ratios = {}
    for batch_size in (1, 32):
        speed = {r["config"]: r["images_per_s"] for r in rows if r["batch_size"] == batch_size}
        ratios[f"batch_{batch_size}"] = speed[names[0]] / speed[names[1]]

    print(f"device {args.device}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'config':<26} {'batch':>5} {'GFLOPs':>7} {'bank':>13} {'images/s':>9}")
    for r in rows:
        bank = f"{r['bank'][0]}x{r['bank'][1]}"
        print(f"{r['config']:<26} {r['batch_size']:>5} {r['gflops']:>7.2f} {bank:>13} {r['images_per_s']:>9.2f}")
    for key, ratio in ratios.items():
        print(f"speed-up {names[0]} / {names[1]} at {key.replace('_', ' ')}: {ratio:.1f}x")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        "results": rows,
        "ratio_autopatch_over_patchcore": ratios,
    }
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
