"""`autopatch synthetic`: a picture of the synthetic anomalies a generator makes from the data's normal images."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import add_data, add_image_size, add_synthetic_kind


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synthetic",
        help="draw synthetic anomalies (image, mask, outline) made from the data's normal images",
        description="Makes N synthetic anomalies from the train normals `search --synthetic` uses (DRAEM-style "
        "Perlin blobs of a foreign texture, CutPaste scars, NSA Poisson-blended patches; seeded like the search "
        "with --seed, placed on the estimated part) and writes one PNG, so you can judge the generator on your "
        "parts.",
    )
    add_data(parser, "category folder name, e.g. bottle (with DATA_ROOT)")
    parser.add_argument("--n", type=int, default=16, help="how many synthetic anomalies to draw")
    add_synthetic_kind(parser, "--kind", "generator; mix cycles through all")
    parser.add_argument("--seed", type=int, default=0, help="the same seed draws the same anomalies")
    add_image_size(parser, 224, resize=False)
    parser.add_argument("--out", type=Path, default=Path("synthetic.png"), help="PNG file to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import synthetic_preview
    from autopatch.cli.common import data_source

    path = synthetic_preview(data_source(args), args.category, count=args.n, kind=args.kind, seed=args.seed,
                             image_size=args.image_size, out=args.out)  # fmt: skip
    print(f"wrote {path}: {args.n} synthetic anomalies ({args.kind}, seed {args.seed})")
    return 0
