"""Convert a model file to one ONNX file: `ScoringGraph` (bank inside) plus the metadata the ONNX inferencer
reads, written atomically and checked against the torch model on probe images before it is kept.

ONNX files are protobufs of at most 2 GB; a bank that does not fit is refused with the fix (a coreset).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autopatch import __version__
from autopatch.deploy.graph import ScoringGraph
from autopatch.deploy.inference import TorchInferencer, require_thresholds
from autopatch.deploy.onnx_runtime import (
    EXTRA_HINT,
    INPUT_NAME,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    OUTPUT_NAMES,
    OnnxInferencer,
)
from autopatch.errors import AutopatchError
from autopatch.files import atomic_path, check_output_file

MAX_BANK_BYTES = int(1.8 * 2**30)  # the 2 GB protobuf limit, less room for the encoder's weights
PROBE_IMAGES = 4


@dataclass(frozen=True)
class Conversion:
    """The written file, its size, and the largest difference of its anomaly maps from the torch model's on
    the probe images, relative to the largest map value."""

    path: Path
    size_bytes: int
    bank_shape: tuple[int, int]
    max_relative_difference: float


def convert_to_onnx(model_file: str | Path, out: str | Path, max_bank_bytes: int = MAX_BANK_BYTES) -> Conversion:
    """`model_file` (.pt) as `out` (.onnx); see the module docstring."""
    out = check_output_file(out, "ONNX model")
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise AutopatchError(f"converting to ONNX needs the onnx packages: {EXTRA_HINT}") from None
    reference = TorchInferencer(model_file, device="cpu")
    segmenter = reference.segmenter
    require_thresholds(segmenter.threshold, segmenter.image_threshold, model_file)
    rows, dims = segmenter.bank.patches.shape
    if rows * dims * 4 > max_bank_bytes:
        raise AutopatchError(
            f"the memory bank of {model_file} ({rows} x {dims} floats, {rows * dims * 4 / 2**30:.2f} GiB) does not "
            f"fit ONNX's 2 GB file limit; re-create the model with a smaller bank (e.g. `--coreset 0.1`)"
        )
    size = segmenter.image_size
    graph = ScoringGraph(segmenter)
    with atomic_path(out) as tmp:
        with _quiet_exporter():
            torch.onnx.export(
                graph, (torch.zeros(2, size, size, 3, dtype=torch.uint8),), str(tmp), dynamo=True,
                input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES), verbose=False,
                dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
            )  # fmt: skip
        proto = onnx.load(str(tmp))
        metadata = {
            "format": ONNX_FORMAT, "format_version": str(ONNX_FORMAT_VERSION), "autopatch_version": __version__,
            "image_size": str(size), "threshold": repr(segmenter.threshold),
            "image_threshold": repr(segmenter.image_threshold), "input": "uint8 RGB [N, S, S, 3]",
            "architecture": str(segmenter.metadata.get("architecture", "")),
            "metadata": json.dumps(segmenter.metadata),
        }  # fmt: skip
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, str(tmp))
        difference = _max_relative_difference(reference, OnnxInferencer(tmp), size)
    return Conversion(out, out.stat().st_size, (int(rows), int(dims)), difference)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter prints its steps, warns, and logs that torchvision's operators are not registered."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _max_relative_difference(reference: TorchInferencer, converted: OnnxInferencer, size: int) -> float:
    probes = np.random.default_rng(0).integers(0, 256, (PROBE_IMAGES, size, size, 3), dtype=np.uint8)
    want, got = reference.predict(probes).anomaly_maps, converted.predict(probes).anomaly_maps
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
