"""`autopatch` console script: parses arguments and hands off; user errors print as one line.

Exit codes: 0 done; 1 `predict` could not read some of its images (the others were written); 2 bad input
or settings (one line on stderr says which and how to fix it); 130 stopped by Ctrl-C (finished work is kept).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable

from autopatch import __version__
from autopatch.errors import AutopatchError, AutopatchWarning

# Each module registers one sub-command through `register(subparsers)`; its handler is `args.run(args)`. The
# modules import the API inside `run`, so `--help` loads neither torch nor optuna.
COMMAND_MODULES: list[str] = [
    "fit", "evaluate", "predict", "convert", "search", "pareto", "export", "demo", "baseline", "experiment",
    "synthetic",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autopatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"autopatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(f"autopatch.cli.{module}").register(subparsers)
    for command in subparsers.choices.values():
        command.formatter_class = DefaultsShown
    return parser


class DefaultsShown(argparse.HelpFormatter):
    """Every option's default in its help line, unless the help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        silent = action.default in (None, False, argparse.SUPPRESS) or not action.option_strings
        return text if silent or "default" in text else f"{text} (default: %(default)s)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
        return _run(args)


def _one_line_warnings(command: str, show: Callable[..., None]) -> Callable[..., None]:
    """autopatch's own warnings as `autopatch <command>: warning: ...` lines; others as Python shows them."""

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if issubclass(category, AutopatchWarning):
            print(f"autopatch {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or 0)
    except AutopatchError as error:
        print(f"autopatch {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C: one line, and the shell's code for SIGINT
        print(f"autopatch {args.command}: {stop or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
