"""Resolve the user's `--device auto|cpu|cuda` once, so every module receives a concrete torch.device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autopatch.errors import AutopatchError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is an error rather than a silent CPU run."""
    import torch  # here, so the CLI's --help (which reads DEVICE_CHOICES) does not load torch

    if isinstance(name, torch.device):
        name = str(name)
    choice = name.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise AutopatchError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu or auto")
        return torch.device(choice)
    raise AutopatchError(f"unknown device {name!r}; choose one of: {', '.join(DEVICE_CHOICES)}")
