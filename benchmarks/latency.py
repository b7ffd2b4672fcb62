"""When FLOPs mislead: measured batch-1 latency against GFLOPs over random architectures, per deploy runtime.

`--trials` random `pretrained`-space architectures (Optuna's seeded RandomSampler) at `--image-size`, each with
a memory bank of the rows a `--bank-fraction` bank of `--train-images` images gives (bottle: 189), timed as
`autopatch search --cost latency --runtime R` times them (`deploy.LatencyMeter`: encoder once per prefix, the
scoring head per architecture, median of 10 runs after 3). Prints per runtime Spearman's rho of latency against
GFLOPs and the architectures where the two disagree most (the largest rank differences), and checks the meter's
encoder + head sum against the whole model as `autopatch convert` writes it (torch: the .pt model) on the
first `--whole` architectures. Writes JSON.

    python benchmarks/latency.py                     # the README's table (about 25 min on the 2-core CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import optuna
import torch
from scipy.stats import rankdata, spearmanr

from autopatch.backbones.flops import count_flops
from autopatch.deploy import LatencyMeter, convert_model, load_inferencer
from autopatch.deploy.convert import FORMATS
from autopatch.deploy.latency import with_random_bank
from autopatch.files import write_text
from autopatch.search import build_encoder
from autopatch.search.names import RUNTIMES
from autopatch.search.spaces import PretrainedSpace
from autopatch.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="random architectures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--train-images", type=int, default=189, help="bank rows = fraction x images x patch grid")
    parser.add_argument("--bank-fraction", type=float, default=0.1)
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--whole", type=int, default=5, help="architectures also timed as one whole model")
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "latency.json")
    return parser.parse_args()


def whole_model_ms(segmenter: Segmenter, runtime: str, folder: Path, meter: LatencyMeter) -> float:
    """Median batch-1 ms of the whole model in `runtime`, timed as the meter times (its warm-up and repeats)."""
    path = segmenter.save(folder / "model.pt")
    if runtime != "torch":
        path = convert_model(path, folder / f"model{FORMATS[runtime]}", runtime).path  # runtimes are named as formats
    inferencer = load_inferencer(path)
    image = np.zeros((1, *segmenter.image_size, 3), dtype=np.uint8)
    return meter.median_ms(lambda: inferencer.predict(image))


def main() -> None:
    args = parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    size = (args.image_size, args.image_size)
    architectures = PretrainedSpace().sample(args.trials, args.seed)
    meters = {runtime: LatencyMeter(runtime) for runtime in args.runtimes}
    rows = []
    for number, arch in enumerate(architectures):
        encoder = build_encoder(arch, pretrained=False)
        segmenter = Segmenter(encoder, arch.block_ids, arch.patch_sizes, size)
        height, width = segmenter.feature_map_size
        bank_rows = round(args.bank_fraction * args.train_images * height * width)
        row = {"architecture": str(arch), "gflops": count_flops(encoder, arch.block_ids, size) / 1e9,
               "bank_rows": bank_rows, "ms": {}, "whole_ms": {}}  # fmt: skip
        for runtime, meter in meters.items():
            latency = meter(arch, size, bank_rows)
            row["ms"][runtime] = {"total": latency.total_ms, "encoder": latency.encoder_ms, "head": latency.head_ms}
            if number < args.whole:
                with tempfile.TemporaryDirectory() as folder:
                    torch.manual_seed(0)
                    model = with_random_bank(Segmenter(build_encoder(arch, pretrained=False), arch.block_ids,
                                                       arch.patch_sizes, size), bank_rows)  # fmt: skip
                    row["whole_ms"][runtime] = whole_model_ms(model, runtime, Path(folder), meter)
        rows.append(row)
        timings = "  ".join(f"{r} {row['ms'][r]['total']:.1f}" for r in meters)
        print(f"{number:>2} {row['gflops']:.3f} GFLOPs {bank_rows:>6} rows  {timings} ms  {arch}", flush=True)

    gflops = np.array([row["gflops"] for row in rows])
    summary = {}
    print(f"\n{len(rows)} random pretrained-space architectures, {args.image_size} px, bank {args.bank_fraction} x "
          f"{args.train_images} images; torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for runtime in meters:
        ms = np.array([row["ms"][runtime]["total"] for row in rows])
        rho = float(spearmanr(ms, gflops).statistic)
        gap = rankdata(ms) - rankdata(gflops)  # > 0: slower than its GFLOPs rank says
        worst = np.argsort(-np.abs(gap))[:3]
        sums = [row["ms"][runtime]["total"] / row["whole_ms"][runtime] for row in rows if runtime in row["whole_ms"]]
        summary[runtime] = {"spearman_rho": rho, "sum_over_whole": sums,
                            "disagree_most": [{**rows[i], "rank_gap": float(gap[i])} for i in worst]}  # fmt: skip
        print(f"\n{runtime}: Spearman rho(latency, GFLOPs) = {rho:+.3f}; encoder + head over the whole model: "
              + ", ".join(f"{s:.2f}" for s in sums))  # fmt: skip
        for i in worst:
            print(f"  rank gap {gap[i]:+.0f}: {rows[i]['gflops']:.3f} GFLOPs, {ms[i]:.1f} ms "
                  f"(encoder {rows[i]['ms'][runtime]['encoder']:.1f}, head {rows[i]['ms'][runtime]['head']:.1f}), "
                  f"{rows[i]['bank_rows']} bank rows, {rows[i]['architecture']}")  # fmt: skip
    write_text(args.json, json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                      "summary": summary}, indent=2))  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
