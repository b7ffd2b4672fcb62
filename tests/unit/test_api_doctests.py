"""The public API's examples (autopatch.api docstrings) run as written: every one must pass."""

import doctest

import pytest

import autopatch
from autopatch import api


@pytest.mark.slow
def test_api_examples_pass():
    result = doctest.testmod(api, optionflags=doctest.NORMALIZE_WHITESPACE, globs={"autopatch": autopatch})
    assert result.attempted >= 20
    assert result.failed == 0


def test_package_exposes_the_api_and_nothing_else():
    assert set(api.__all__) <= set(dir(autopatch))
    assert autopatch.fit is api.fit and autopatch.Segmenter is api.Segmenter
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        autopatch.nope  # noqa: B018
