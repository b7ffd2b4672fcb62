"""`Fidelity.exact_rescore`: `best` re-scores candidates at the study's bank fraction, every query exact."""

from __future__ import annotations

import pytest

from autopatch.search.fidelity import FIDELITIES


@pytest.mark.parametrize("name", sorted(FIDELITIES))
def test_the_rescore_keeps_the_bank_fraction_and_answers_every_query_exactly(name):
    preset = FIDELITIES[name]
    rescore = preset.exact_rescore()
    assert (rescore.bank_fraction, rescore.query_stride, rescore.projection) == (preset.bank_fraction, 1, None)
