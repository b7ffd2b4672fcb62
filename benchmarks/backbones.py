"""Encoder throughput (images/s) at 224 px, batch 32, every encoder cut at its last stride-16 block.

Rows: (a) the OFA MobileNetV3 w1.2 supernet running one active sub-network, slicing/transforming its
weights on every forward (how the search evaluates architectures); (b) the same sub-network
materialized into a static network; (c) EfficientNet-Lite0 truncated at stride 16; (d) WRN-50-2
truncated after layer3 (PatchCore's backbone, the baseline). Random weights: speed does not depend on
them. The sub-network is a seeded random draw from the search space (printed). Each row reports the
best of `--batches` timed batches after one warm-up batch; ratios compare against (d), and the
materialized/sliced speed-up is printed separately. Throughput is given per wall second and per
process CPU second (robust when other jobs share the machine).

    python benchmarks/backbones.py [--batch-size 32] [--image-size 224] [--batches 3] [--device cpu]
                                   [--seed 0] [--json runs/bench/backbones.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import torch

from autopatch.backbones import Encoder, create_encoder
from autopatch.backbones.flops import count_flops
from autopatch.backbones.ofa import OFA_LAYOUT, OFAMobileNetV3


def stride16_block(encoder: Encoder) -> int:
    """The deepest block whose output stride is 16 (layer3 for WRN-50-2)."""
    return max(info.id for info in encoder.blocks if info.stride == 16)


def time_batches(encoder: Encoder, block: int, images: torch.Tensor, batches: int) -> tuple[float, float]:
    """Best-of-`batches` (wall seconds, process CPU seconds) of one forward_features batch to `block`.

    One untimed warm-up batch first. CPU seconds (summed over threads) are reported too because on a
    shared machine other processes steal wall time but not this process's CPU time.
    """
    wall, cpu = [], []
    with torch.inference_mode():
        for step in range(batches + 1):
            if images.is_cuda:
                torch.cuda.synchronize()
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            encoder.forward_features(images, [block])
            if images.is_cuda:
                torch.cuda.synchronize()
            if step > 0:
                wall.append(time.perf_counter() - start_wall)
                cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def random_subnet(seed: int) -> dict[str, list[int]]:
    rng = random.Random(seed)
    return {
        "ks": [rng.choice(OFA_LAYOUT.kernel_sizes) for _ in range(OFA_LAYOUT.elastic_blocks)],
        "e": [rng.choice(OFA_LAYOUT.expand_ratios) for _ in range(OFA_LAYOUT.elastic_blocks)],
        "d": [rng.choice(OFA_LAYOUT.depths) for _ in range(OFA_LAYOUT.stages)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per encoder (best is reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the OFA sub-network draw")
    parser.add_argument("--json", type=Path, default=Path("runs/bench/backbones.json"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)

    subnet = random_subnet(args.seed)
    supernet = OFAMobileNetV3(width_mult=1.2).eval()
    supernet.set_active_subnet(**subnet)
    ofa_block = stride16_block(supernet)
    materialized = supernet.materialize(ofa_block).eval()
    lite0 = create_encoder("efficientnet_lite0", pretrained=False)
    lite0 = lite0.truncated(stride16_block(lite0))
    wrn = create_encoder("wide_resnet50_2", pretrained=False, deepest_block=3)
    rows = [
        ("(a) OFA w1.2 supernet, sliced", supernet, ofa_block),
        ("(b) OFA w1.2 sub-network, materialized", materialized, ofa_block),
        ("(c) EfficientNet-Lite0 to stride 16", lite0, stride16_block(lite0)),
        ("(d) WRN-50-2 to layer3", wrn, 3),
    ]

    results = []
    for label, encoder, block in rows:
        encoder.to(device)
        gflops = count_flops(encoder, [block], args.image_size) / 1e9
        wall, cpu = time_batches(encoder, block, images, args.batches)
        results.append({
            "encoder": label, "block": block, "gflops": gflops,
            "images_per_s": args.batch_size / wall, "images_per_cpu_s": args.batch_size / cpu,
        })  # fmt: skip
        encoder.to("cpu")
    baseline = results[-1]
    speedup = {key: results[1][key] / results[0][key] for key in ("images_per_s", "images_per_cpu_s")}

    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    print(f"device {device} ({platform.processor() or platform.machine()}, {threads} torch threads, "
          f"load average {load:.1f} on {os.cpu_count()} CPUs), batch {args.batch_size}, {args.image_size} px, "
          f"best of {args.batches} batches")
    print(f"OFA sub-network (seed {args.seed}): ks={subnet['ks']} e={subnet['e']} d={subnet['d']}")
    columns = ("block", "GFLOPs", "images/s", "x WRN", "img/CPU-s", "x WRN")
    print(f"{'encoder':40s} " + " ".join(f"{c:>{w}s}" for c, w in zip(columns, (5, 7, 9, 6, 9, 6), strict=True)))
    for row in results:
        wall_ratio = row["images_per_s"] / baseline["images_per_s"]
        cpu_ratio = row["images_per_cpu_s"] / baseline["images_per_cpu_s"]
        print(f"{row['encoder']:40s} {row['block']:5d} {row['gflops']:7.2f} {row['images_per_s']:9.1f} "
              f"{wall_ratio:6.2f} {row['images_per_cpu_s']:9.1f} {cpu_ratio:6.2f}")
    print(f"materialized / sliced = {speedup['images_per_s']:.2f}x (wall), "
          f"{speedup['images_per_cpu_s']:.2f}x (CPU time)")

    report = {
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch_threads": threads,
        "load_average_1min": load,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "batches": args.batches,
        "ofa_subnet": subnet,
        "rows": results,
        "materialized_over_sliced": speedup,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
