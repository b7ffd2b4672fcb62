"""Atomic writes: a finished write replaces the file, a failed one leaves the old file and no debris."""

import numpy as np
import pytest

from autopatch.files import atomic_path, write_text


def test_a_finished_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "scores.npy"
    with atomic_path(target) as tmp:
        np.save(tmp, np.arange(3))  # np.save adds .npy unless the name ends with it
    assert np.array_equal(np.load(target), np.arange(3))
    assert write_text(tmp_path / "a.json", "{}").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "scores.npy"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_partial_one(tmp_path):
    target = write_text(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
