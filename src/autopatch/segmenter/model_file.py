"""The one-file model format: a plain dict of tensors and JSON-able values, readable with weights_only=True.

Layout (format_version 3)::

    {"format": "autopatch-model", "format_version": 3, "autopatch_version": str,
     "encoder": {"family", "config", "state_dict"}, "block_ids", "patch_sizes", "image_size",
     "normalisation": {"mean", "std"}, "bank": MemoryBank.state_dict(), "threshold", "image_threshold",
     "smoothing_sigma", "metadata": {...}, "aggregation": {"kind", "config"}}

"threshold" is the pixel threshold, "image_threshold" the OK/NG one on the map's maximum (added in format 2;
format 1 files load with none). "image_size" is [height, width] since format 3 (an int S, S x S, before).

"aggregation" says how block maps become patch vectors (see segmenter.aggregation).

This module only writes and checks that envelope; `Segmenter` fills and reads the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from autopatch import __version__
from autopatch.errors import AutopatchError
from autopatch.files import atomic_path

FORMAT_NAME = "autopatch-model"
FORMAT_VERSION = 3
REQUIRED_KEYS = (
    "encoder",
    "block_ids",
    "patch_sizes",
    "aggregation",
    "image_size",
    "normalisation",
    "bank",
    "threshold",
    "smoothing_sigma",
    "metadata",
)


def save_model_file(path: str | Path, content: dict[str, Any]) -> Path:
    """Write `content` under the format header; written to a temporary name first so a crash leaves no half file."""
    path = Path(path)
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise ValueError(f"model content lacks {missing}")
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "autopatch_version": __version__, **content}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:  # torch's zip writer reports a full disk as an internal position error
            reason = str(error).strip().splitlines()[0][:100]
            raise AutopatchError(
                f"cannot write model file {path} ({reason}); check the free space in {path.parent}"
            ) from None
    return path


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Read and check a model file (on the CPU); every problem is one AutopatchError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AutopatchError(f"model file {path} does not exist; create one with `autopatch fit ... --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AutopatchError(
            f"model file {path} is truncated, corrupt or not a torch file ({reason[:120]}); "
            "re-create it with `autopatch fit`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise AutopatchError(
            f"{path} is not an autopatch model file (format {found!r}, expected {FORMAT_NAME!r}); "
            "pass a file written by `autopatch fit`"
        )
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise AutopatchError(f"model file {path} has no valid format_version; re-create it with `autopatch fit`")
    if version > FORMAT_VERSION:
        raise AutopatchError(
            f"model file {path} has format version {version}, newer than this autopatch "
            f"{__version__} reads ({FORMAT_VERSION}); upgrade autopatch"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise AutopatchError(f"model file {path} lacks {', '.join(missing)}; re-create it with `autopatch fit`")
    return payload
