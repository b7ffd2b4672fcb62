"""`autopatch fit`: fit a Segmenter on a category's train split, its threshold on the val split, save one file."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import (
    add_batch_size,
    add_data,
    add_device,
    add_image_size,
    add_normal_fpr,
    data_source,
    int_list,
    print_image_threshold,
    print_pixel_threshold,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="fit a segmentation model (memory bank + F1 threshold) and save it to one file",
        description="Fits the memory bank on the train split, picks the pixel and image (OK/NG) thresholds with "
        "the best F1 on the validation split, and saves everything to --out.",
    )
    add_data(parser, "category folder name, e.g. bottle (with DATA_ROOT)")
    parser.add_argument("--backbone", required=True, help="encoder registry name, e.g. efficientnet_lite0")
    parser.add_argument("--blocks", required=True, type=int_list, help="extraction block ids, e.g. 5,9")
    parser.add_argument("--patch-sizes", required=True, type=int_list, help="one patch size per block, e.g. 3,3")
    parser.add_argument("--coreset", type=float, default=None, help="greedy coreset fraction of the bank, e.g. 0.1")
    parser.add_argument("--bank-fraction", type=float, default=1.0, help="random fraction of the bank to keep")
    parser.add_argument("--k", type=int, default=1, help="anomalous images per defect type in the val split")
    add_image_size(parser, 224)
    parser.add_argument(
        "--smoothing-sigma", type=float, default=None, help="Gaussian sigma on score maps (PatchCore: 4)"
    )
    add_device(parser)
    parser.add_argument("--weights", default=None, help="local encoder checkpoint instead of the download")
    add_batch_size(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of bank fraction and coreset sampling")
    add_normal_fpr(parser)
    parser.add_argument("--out", required=True, type=Path, help="model file to write, e.g. model.pt")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import fit

    segmenter = fit(
        data_source(args), args.category, args.backbone, args.blocks, args.patch_sizes, k=args.k,
        image_size=args.image_size, resize=args.resize, coreset=args.coreset, bank_fraction=args.bank_fraction,
        smoothing_sigma=args.smoothing_sigma, device=args.device, weights=args.weights, batch_size=args.batch_size,
        seed=args.seed, normal_fpr=args.normal_fpr, out=args.out, progress=True,
    )  # fmt: skip
    val = segmenter.metadata["val"]
    print(f"model        {args.out}")
    print(f"architecture {segmenter.metadata['architecture']}")
    print(f"memory bank  {segmenter.bank.patches.shape[0]} x {segmenter.bank.patches.shape[1]}")
    print(f"GFLOPs       {segmenter.gflops:.3f}")
    print_pixel_threshold(val)
    print_image_threshold(val)
    return 0
