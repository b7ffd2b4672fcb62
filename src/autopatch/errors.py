"""One exception type for every user-facing input problem, so the CLI can print it as one line."""


class AutopatchError(Exception):
    """Bad input or configuration; the message names the offending path or value and the fix."""


class AutopatchWarning(UserWarning):
    """Input that works but is likely to give poor or noisy results; the CLI prints it as one line."""


def check_fraction(name: str, value: object) -> float:
    """`value` as a float in (0, 1] (bank fraction, coreset fraction), else one error line naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise AutopatchError(f"{name} {value!r} must be in (0, 1], e.g. 0.1 (1 keeps everything)")
    return float(value)


def check_positive(name: str, value: object) -> int:
    """`value` as an int >= 1 (batch size, trials, workers), else one error line naming `name`."""
    return check_count(name, value, 1)


def check_count(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum`, else one error line naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AutopatchError(f"{name} {value!r} must be a whole number of at least {minimum}")
    return value
