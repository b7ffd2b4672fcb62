"""One exception type for every user-facing input problem, so the CLI can print it as one line."""


class AutopatchError(Exception):
    """Bad input or configuration; the message names the offending path or value and the fix."""
