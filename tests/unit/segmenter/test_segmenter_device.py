"""`--device auto|cpu|cuda` resolution."""

from __future__ import annotations

import pytest
import torch

from autopatch.device import resolve_device
from autopatch.errors import AutopatchError


def test_auto_picks_cuda_only_when_available() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without a GPU")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(AutopatchError, match="no CUDA GPU is available; use --device cpu or auto"):
        resolve_device("cuda")


def test_unknown_device_lists_choices() -> None:
    with pytest.raises(AutopatchError, match="choose one of: auto, cpu, cuda"):
        resolve_device("tpu")
