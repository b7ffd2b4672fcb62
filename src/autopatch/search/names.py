"""The names of the search spaces: plain strings, importable without optuna or torch (the CLI's --help)."""

SPACE_NAMES = ("ofa", "ofa-fixed", "pretrained")
