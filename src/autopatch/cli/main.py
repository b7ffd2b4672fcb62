"""`autopatch` console script: parses arguments and hands off; user errors print as one line."""

from __future__ import annotations

import argparse
import importlib
import sys

from autopatch.errors import AutopatchError

# Each module registers one sub-command through `register(subparsers)`; its handler is `args.run(args)`.
COMMAND_MODULES: list[str] = [
    "fit", "evaluate", "predict", "search", "pareto", "export", "demo", "baseline", "experiment"
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autopatch", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(f"autopatch.cli.{module}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AutopatchError as error:
        print(f"autopatch {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
