"""The console script's own options."""

import re

import pytest

from autopatch import __version__
from autopatch.cli.main import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"autopatch {__version__}"


def _commands():
    import argparse

    from autopatch.cli.main import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_help_shows_the_defaults(command, capsys):
    parser = _commands()[command]
    with pytest.raises(SystemExit):
        main([command, "--help"])
    entries: dict[str, str] = {}  # option flag -> its help text, from the lines of the options section
    flag = None
    for line in capsys.readouterr().out.split("options:", 1)[1].splitlines():
        found = re.match(r"^  (?:-\w, )?(--[\w-]+)", line)
        if found:
            flag = found.group(1)
            entries[flag] = line
        elif flag is not None:
            entries[flag] += " " + line.strip()
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False) and action.dest != "help":
            assert "default" in entries[action.option_strings[-1]], entries[action.option_strings[-1]]


def test_help_loads_neither_torch_nor_optuna():
    import subprocess
    import sys

    script = ("import sys; from autopatch.cli.main import build_parser; build_parser().format_help(); "
              "print(sorted(m for m in ('torch', 'optuna', 'matplotlib', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
