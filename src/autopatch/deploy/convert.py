"""Convert a model file for another runtime: `ScoringGraph` (bank inside) as one ONNX file, or as OpenVINO IR
(model.xml + model.bin) converted from that ONNX graph, with the metadata the inferencers read
(`deploy.inference.GraphInfo`). Written atomically, and kept only when its maps on probe images agree with the
torch model's to MAX_DIFFERENCE[precision] of their largest value.

`precision` fp16 stores the weights and the memory bank as float16 (half the file) and computes in float32:
ONNX casts each stored tensor back once when the session starts, OpenVINO decompresses them when it compiles.
The rounding moves the maps by about 1e-3 of their largest value.

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
from typing import Any

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
# of the largest map value, per stored precision: a converted file that differs more is not kept
MAX_DIFFERENCE = {"fp32": 1e-4, "fp16": 1e-2}
HALVED_MIN_ELEMENTS = 16  # float tensors this large are stored as float16 at fp16; smaller ones stay float32


@dataclass(frozen=True)
class Conversion:
    """The written file, its size (with the .bin for OpenVINO), and the largest difference of its anomaly maps
    from the torch model's on the probe images, relative to the largest map value."""

    path: Path
    size_bytes: int
    bank_shape: tuple[int, int]
    max_relative_difference: float


def convert_model(
    model_file: str | Path,
    out: str | Path,
    format: str = "onnx",
    max_bank_bytes: int = MAX_BANK_BYTES,
    precision: str = "fp32",
) -> Conversion:
    """`model_file` (.pt) as `out` in `format` ('onnx' -> .onnx, 'openvino' -> .xml + .bin), its weights and bank
    stored in `precision` ('fp32' or 'fp16')."""
    out = check_conversion(out, format, precision)
    reference = TorchInferencer(model_file, device="cpu")
    segmenter = reference.segmenter
    rows, dims = segmenter.bank.patches.shape
    if rows * dims * 4 > max_bank_bytes:
        raise AutopatchError(
            f"the memory bank of {model_file} ({rows} x {dims} floats, {rows * dims * 4 / 2**30:.2f} GiB) does not "
            f"fit ONNX's 2 GB file limit; re-create the model with a smaller bank (e.g. `--coreset 0.1`)"
        )
    graph, metadata = ScoringGraph(segmenter), {**GraphInfo.write(segmenter), "precision": precision}
    if format == "onnx":
        with atomic_path(out) as tmp:
            _write_onnx(graph, tmp, metadata, halve=precision == "fp16")
            difference = _checked_difference(reference, OnnxInferencer(tmp), format, precision)
        size = out.stat().st_size
    else:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.partial") as folder:
            onnx_file, xml = Path(folder) / "graph.onnx", Path(folder) / out.name
            _write_onnx(graph, onnx_file, metadata)
            _write_openvino(onnx_file, xml, metadata, compress=precision == "fp16")
            difference = _checked_difference(reference, OpenvinoInferencer(xml), format, precision)
            os.replace(xml.with_suffix(".bin"), out.with_suffix(".bin"))
            os.replace(xml, out)
        size = out.stat().st_size + out.with_suffix(".bin").stat().st_size
    return Conversion(out, size, (int(rows), int(dims)), difference)


def check_conversion(out: str | Path, format: str, precision: str) -> Path:
    """`out` as a file `convert_model` can write in `format` and `precision`, its packages installed; else one
    line naming the fix. Nothing is written."""
    if format not in FORMATS:
        raise AutopatchError(f"--format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    if precision not in MAX_DIFFERENCE:
        raise AutopatchError(f"--precision {precision!r} is not supported; use one of {', '.join(MAX_DIFFERENCE)}")
    out = check_output_file(out, f"{format} model")
    if out.suffix.lower() != FORMATS[format]:
        raise AutopatchError(f"--out {out} must end in {FORMATS[format]} for --format {format}")
    require_converter(format)
    return out


def require_converter(format: str) -> None:
    """Writing `format` ('onnx' or 'openvino') needs these packages; one line naming the extra when missing."""
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


def export_onnx(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
    output_names: list[str], dynamic_batch: bool = False,
) -> None:  # fmt: skip
    """`module` on `inputs` as one ONNX file (torch's exporter, quietly); `dynamic_batch`: any first dimension."""
    dynamic = {name: {0: torch.export.Dim("batch")} for name in input_names} if dynamic_batch else None
    with _quiet_exporter():
        torch.onnx.export(
            module, inputs, str(path), dynamo=True, input_names=input_names, output_names=output_names,
            verbose=False, external_data=False, dynamic_shapes=dynamic,
        )  # fmt: skip


def _write_onnx(graph: ScoringGraph, path: Path, metadata: dict[str, str], halve: bool = False) -> None:
    import onnx

    images = torch.zeros(2, *graph.segmenter.image_size, 3, dtype=torch.uint8)
    export_onnx(graph, (images,), path, [INPUT_NAME], list(OUTPUT_NAMES), dynamic_batch=True)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, metadata)
    if halve:
        _store_as_float16(proto.graph)
    onnx.save(proto, str(path))


def _store_as_float16(graph: Any) -> None:
    """Every float32 constant of at least HALVED_MIN_ELEMENTS elements stored as float16 under `<name>_fp16`,
    and a Cast back to float32 under its own name put first, so every node still reads float32."""
    from onnx import TensorProto, helper, numpy_helper

    kept, casts = [], []
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) >= HALVED_MIN_ELEMENTS:
            half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{tensor.name}_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT))
        else:
            kept.append(tensor)
    nodes = [*casts, *graph.node]
    del graph.initializer[:], graph.node[:]
    graph.initializer.extend(kept)
    graph.node.extend(nodes)


def _write_openvino(onnx_file: Path, xml: Path, metadata: dict[str, str], compress: bool = False) -> None:
    import openvino

    model = openvino.convert_model(str(onnx_file))
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_INFO_KEY, key])
    openvino.save_model(model, str(xml), compress_to_fp16=compress)


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


def _checked_difference(reference: TorchInferencer, converted: Inferencer, format: str, precision: str) -> float:
    """The largest difference of the maps on probe images, relative to the largest map value; above
    MAX_DIFFERENCE[precision] the conversion stops and nothing is kept."""
    shape = (PROBE_IMAGES, *reference.image_size, 3)
    probes = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    want, got = reference.predict(probes).anomaly_maps, converted.predict(probes).anomaly_maps
    difference = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
    limit = MAX_DIFFERENCE[precision]
    if not difference <= limit:
        raise AutopatchError(
            f"the {format} {precision} model's anomaly maps differ from the torch model's by {difference:.1e} of "
            f"their largest value on probe images (limit {limit:.0e}), so it was not written; convert to the other "
            "format or precision, or report this"
        )
    return difference
