"""Writes that cannot happen are found before the work, or fail as one line with nothing half-written left."""

import errno
from pathlib import Path

import numpy as np
import pytest
import torch

from autopatch.cli.main import main

TOY = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"
FIT = ["fit", str(TOY), "--category", "hazelnut_toy", "--backbone", "efficientnet_lite0", "--blocks", "4",
       "--patch-sizes", "3", "--image-size", "64", "--device", "cpu"]  # fmt: skip
IMAGES = TOY / "hazelnut_toy" / "test" / "colour"


def one_line_error(capsys) -> str:
    """The one error line (progress bars aside), and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("autopatch ") and ": warning: " not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "m.pt"
    assert main([*FIT, "--out", str(path)]) == 0
    return path


def test_an_out_that_is_a_folder_or_under_a_file_fails_before_the_work(tmp_path, capsys, monkeypatch):
    encoded = []
    monkeypatch.setattr("autopatch.api.load_splits", lambda *a, **k: encoded.append(1))  # the work must not start
    assert main([*FIT, "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)
    (tmp_path / "file").write_text("x")
    assert main([*FIT, "--out", str(tmp_path / "file" / "model.pt")]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert not encoded


def test_a_folder_that_takes_no_file_fails_before_the_work(tmp_path, capsys, model_file, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("autopatch.files.tempfile.NamedTemporaryFile", read_only)
    assert main(["predict", str(model_file), str(IMAGES), "--out", str(tmp_path / "heatmaps")]) == 2
    error = one_line_error(capsys)
    assert str(tmp_path / "heatmaps") in error and "read-only file system" in error


def test_a_full_disk_while_saving_a_model_leaves_no_file_and_names_it(tmp_path, capsys, monkeypatch):
    def full(payload, path):
        Path(path).write_bytes(b"half a model")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "model.pt"
    assert main([*FIT, "--out", str(out)]) == 2
    error = one_line_error(capsys)
    assert str(out) in error and "free space" in error
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_writing_heatmaps_leaves_no_partial_file(tmp_path, capsys, model_file, monkeypatch):
    def full(path, array):
        Path(path).write_bytes(b"\x93NUMPY half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "heatmaps"
    assert main(["predict", str(model_file), str(IMAGES), "--out", str(out)]) == 2
    error = one_line_error(capsys)
    assert "no space left on device" in error and str(out) in error
    assert not [p for p in out.iterdir() if p.suffix == ".npy"]  # no truncated score map
