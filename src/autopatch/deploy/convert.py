"""Convert a model file for another runtime: `ScoringGraph` (bank inside) as one ONNX file, or as OpenVINO IR
(model.xml + model.bin, fp32) converted from that ONNX graph, with the metadata the inferencers read
(`deploy.inference.GraphInfo`). Written atomically, and kept only when its maps on probe images agree with the
torch model's to MAX_DIFFERENCE of their largest value.

ONNX files are protobufs of at most 2 GB; a bank that does not fit is refused with the fix (a coreset).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autopatch.deploy.graph import ScoringGraph
from autopatch.deploy.inference import INPUT_NAME, OUTPUT_NAMES, GraphInfo, Inferencer, TorchInferencer
from autopatch.deploy.onnx_runtime import EXTRA_HINT as ONNX_HINT
from autopatch.deploy.onnx_runtime import OnnxInferencer
from autopatch.deploy.openvino_runtime import EXTRA_HINT as OPENVINO_HINT
from autopatch.deploy.openvino_runtime import RT_INFO_KEY, OpenvinoInferencer
from autopatch.errors import AutopatchError
from autopatch.files import atomic_path, check_output_file

FORMATS = {"onnx": ".onnx", "openvino": ".xml"}  # format -> the file name ending it is written to
MAX_BANK_BYTES = int(1.8 * 2**30)  # the 2 GB protobuf limit, less room for the encoder's weights
PROBE_IMAGES = 4
MAX_DIFFERENCE = 1e-4  # of the largest map value: a converted file that differs more is not kept


@dataclass(frozen=True)
class Conversion:
    """The written file, its size (with the .bin for OpenVINO), and the largest difference of its anomaly maps
    from the torch model's on the probe images, relative to the largest map value."""

    path: Path
    size_bytes: int
    bank_shape: tuple[int, int]
    max_relative_difference: float


def convert_model(
    model_file: str | Path, out: str | Path, format: str = "onnx", max_bank_bytes: int = MAX_BANK_BYTES
) -> Conversion:
    """`model_file` (.pt) as `out` in `format` ('onnx' -> .onnx, 'openvino' -> .xml + .bin)."""
    if format not in FORMATS:
        raise AutopatchError(f"--format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    out = check_output_file(out, f"{format} model")
    if out.suffix.lower() != FORMATS[format]:
        raise AutopatchError(f"--out {out} must end in {FORMATS[format]} for --format {format}")
    _require_converter(format)
    reference = TorchInferencer(model_file, device="cpu")
    segmenter = reference.segmenter
    rows, dims = segmenter.bank.patches.shape
    if rows * dims * 4 > max_bank_bytes:
        raise AutopatchError(
            f"the memory bank of {model_file} ({rows} x {dims} floats, {rows * dims * 4 / 2**30:.2f} GiB) does not "
            f"fit ONNX's 2 GB file limit; re-create the model with a smaller bank (e.g. `--coreset 0.1`)"
        )
    graph, metadata = ScoringGraph(segmenter), GraphInfo.write(segmenter)
    if format == "onnx":
        with atomic_path(out) as tmp:
            _write_onnx(graph, tmp, metadata)
            difference = _checked_difference(reference, OnnxInferencer(tmp), format)
        size = out.stat().st_size
    else:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.partial") as folder:
            onnx_file, xml = Path(folder) / "graph.onnx", Path(folder) / out.name
            _write_onnx(graph, onnx_file, metadata)
            _write_openvino(onnx_file, xml, metadata)
            difference = _checked_difference(reference, OpenvinoInferencer(xml), format)
            os.replace(xml.with_suffix(".bin"), out.with_suffix(".bin"))
            os.replace(xml, out)
        size = out.stat().st_size + out.with_suffix(".bin").stat().st_size
    return Conversion(out, size, (int(rows), int(dims)), difference)


def _require_converter(format: str) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise AutopatchError(f"converting needs the onnx packages: {ONNX_HINT}") from None
    if format == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise AutopatchError(f"converting to OpenVINO needs it: {OPENVINO_HINT}") from None


def _write_onnx(graph: ScoringGraph, path: Path, metadata: dict[str, str]) -> None:
    import onnx

    with _quiet_exporter():
        torch.onnx.export(
            graph, (torch.zeros(2, *graph.segmenter.image_size, 3, dtype=torch.uint8),), str(path), dynamo=True,
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES), verbose=False, external_data=False,
            dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}},
        )  # fmt: skip
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def _write_openvino(onnx_file: Path, xml: Path, metadata: dict[str, str]) -> None:
    import openvino

    model = openvino.convert_model(str(onnx_file))
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_INFO_KEY, key])
    openvino.save_model(model, str(xml), compress_to_fp16=False)


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


def _checked_difference(reference: TorchInferencer, converted: Inferencer, format: str) -> float:
    """The largest difference of the maps on probe images, relative to the largest map value; above
    MAX_DIFFERENCE the conversion stops and nothing is kept."""
    shape = (PROBE_IMAGES, *reference.image_size, 3)
    probes = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    want, got = reference.predict(probes).anomaly_maps, converted.predict(probes).anomaly_maps
    difference = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
    if not difference <= MAX_DIFFERENCE:
        raise AutopatchError(
            f"the {format} model's anomaly maps differ from the torch model's by {difference:.1e} of their largest "
            f"value on probe images (limit {MAX_DIFFERENCE:.0e}), so it was not written; convert to the other "
            "format or report this"
        )
    return difference
