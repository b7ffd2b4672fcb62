"""Model-file envelope: weights_only loading and one-line errors for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopatch.errors import AutopatchError
from autopatch.segmenter.model_file import (
    FORMAT_VERSION,
    load_model_file,
    save_model_file,
)


def content() -> dict:
    return {
        "encoder": {"family": "fake", "config": {"width": 4}, "state_dict": {"w": torch.ones(2, 2)}},
        "block_ids": [1, 2],
        "patch_sizes": [3, 3],
        "aggregation": {"kind": "patchify", "config": {"patch_sizes": [3, 3]}},
        "image_size": 32,
        "normalisation": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
        "bank": {"patches": torch.zeros(3, 4)},
        "threshold": 0.25,
        "smoothing_sigma": None,
        "metadata": {"category": "bottle"},
    }


def test_round_trip_plain_torch_load(tmp_path: Path) -> None:
    path = save_model_file(tmp_path / "m.pt", content())
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "autopatch-model" and raw["format_version"] == FORMAT_VERSION
    loaded = load_model_file(path)
    assert loaded["threshold"] == 0.25 and loaded["metadata"] == {"category": "bottle"}
    assert torch.equal(loaded["encoder"]["state_dict"]["w"], torch.ones(2, 2))
    assert not (tmp_path / "m.pt.tmp").exists()


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = save_model_file(tmp_path / "m.pt", content())
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = FORMAT_VERSION + 1
    torch.save(raw, path)
    newer = rf"m\.pt has format version {FORMAT_VERSION + 1}, newer.*upgrade autopatch"
    with pytest.raises(AutopatchError, match=newer):
        load_model_file(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = save_model_file(tmp_path / "m.pt", content())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AutopatchError, match=r"m\.pt is truncated, corrupt or not a torch file") as info:
        load_model_file(path)
    assert "\n" not in str(info.value)


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(AutopatchError, match=r"notes\.txt is truncated, corrupt or not a torch file"):
        load_model_file(path)


def test_other_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(AutopatchError, match=r"weights\.pth is not an autopatch model file"):
        load_model_file(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AutopatchError, match="does not exist"):
        load_model_file(tmp_path / "absent.pt")
