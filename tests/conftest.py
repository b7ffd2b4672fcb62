"""Fixtures shared across the test tree: the real datasets beside the repository (../shared/data)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def bottle_root() -> Path:
    """The folder holding MVTec AD `bottle`; the test skips only when the shared dataset folder is absent."""
    root = SHARED_DATA / "mvtec_bottle"
    if not (root / "bottle").is_dir():
        pytest.skip(f"MVTec bottle not found at {root / 'bottle'} (shared dataset folder absent)")
    return root
