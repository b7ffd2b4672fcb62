"""`--device auto|cpu|cuda` resolution, with CUDA availability set by the test (both cases on any machine)."""

from __future__ import annotations

import pytest
import torch

from autopatch.device import resolve_device
from autopatch.errors import AutopatchError


@pytest.mark.parametrize("available, expected", [(True, "cuda"), (False, "cpu")])
def test_auto_picks_cuda_exactly_when_it_is_available(monkeypatch, available, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_cuda_with_a_gpu_keeps_the_index(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_cuda_without_gpu_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AutopatchError, match="no CUDA GPU is available; use --device cpu or auto"):
        resolve_device("cuda")


def test_unknown_device_lists_choices() -> None:
    with pytest.raises(AutopatchError, match="choose one of: auto, cpu, cuda"):
        resolve_device("tpu")
