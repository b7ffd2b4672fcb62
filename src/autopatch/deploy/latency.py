"""Measured deployment latency of an architecture: the search's `--cost latency` (`search.definition.LatencyMeter`).

An architecture is timed as it deploys, at batch 1, in one runtime: `torch` runs what `TorchInferencer` runs
(the encoder, then `PatchScorer.score` with the faiss 1-NN); `onnx` and `openvino` run the two halves of the
`ScoringGraph` that `autopatch convert` writes (the encoder with its input normalisation; the scoring head:
aggregation, tiled-matmul 1-NN against the bank as a constant, upsampling, image score and both decisions),
exported with the same exporter. Weights and bank rows are random (speed depends only on the shapes); the bank
has the trial's rows and the architecture's full patch dimension.

The encoder and the head are timed apart: the encoder depends only on the network up to the deepest block
(`search.architecture.encoder_prefix`), so a meter measures it once per prefix and image size; the head is timed
per architecture. Each time is the median of `repeats` runs after `warmup` runs. `benchmarks/latency.py` checks
the sum against the whole converted model.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import torch

from autopatch.deploy.convert import export_onnx, require_converter
from autopatch.deploy.graph import ScoringGraph
from autopatch.deploy.onnx_runtime import EXTRA_HINT as ONNX_HINT
from autopatch.deploy.openvino_runtime import FP32
from autopatch.errors import AutopatchError
from autopatch.features.encoding import encode_batch
from autopatch.image_size import ImageSize
from autopatch.search.architecture import Architecture, build_encoder, encoder_prefix
from autopatch.search.definition import Latency
from autopatch.search.names import RUNTIMES
from autopatch.segmenter import Segmenter

Runner = Callable[[], object]


def with_random_bank(segmenter: Segmenter, rows: int, seed: int = 1) -> Segmenter:
    """`segmenter` with a bank of `rows` random normal rows of its patch dimension and placeholder thresholds
    (pixel 1, image 2): a model of the right shapes, for timing; returns it."""
    with torch.inference_mode():
        probe = torch.zeros(1, 3, *segmenter.image_size, dtype=torch.uint8)
        dims = segmenter.scorer.rows(encode_batch(segmenter.encoder, probe, segmenter.block_ids)).shape[1]
    segmenter.bank.fit(torch.randn(rows, dims, generator=torch.Generator().manual_seed(seed)))
    segmenter.threshold, segmenter.image_threshold = 1.0, 2.0
    return segmenter


class LatencyMeter:
    """Batch-1 latency of architectures deployed in `runtime` ('torch', 'onnx' or 'openvino') on this machine; a
    runtime that is not installed fails here, in one line naming the extra."""

    def __init__(self, runtime: str = "torch", warmup: int = 3, repeats: int = 10) -> None:
        if runtime not in RUNTIMES:
            raise AutopatchError(f"--runtime {runtime!r} is unknown; use one of {', '.join(RUNTIMES)}")
        if runtime != "torch":
            require_converter(runtime)
        if runtime == "onnx":
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise AutopatchError(f"--runtime onnx needs ONNX Runtime: {ONNX_HINT}") from None
        self.runtime, self.warmup, self.repeats = runtime, int(warmup), int(repeats)
        self._encoder_ms: dict[tuple[Any, ...], float] = {}

    def __call__(self, arch: Architecture, image_size: ImageSize, bank_rows: int) -> Latency:
        encoder = build_encoder(arch, pretrained=False)  # random weights (the global RNG's): timing needs no others
        segmenter = with_random_bank(Segmenter(encoder, arch.block_ids, arch.patch_sizes, image_size), bank_rows)
        key = (*encoder_prefix(arch), tuple(image_size))
        timed = key in self._encoder_ms
        with tempfile.TemporaryDirectory(prefix="autopatch-latency-") as folder:
            if self.runtime == "torch":
                encode, head = self._torch_parts(segmenter)
            else:
                encode, head = self._converted_parts(ScoringGraph(segmenter), Path(folder), with_encoder=not timed)
            if encode is not None and not timed:
                self._encoder_ms[key] = self.median_ms(encode)
            return Latency(self._encoder_ms[key], self.median_ms(head))

    @property
    def encoders_measured(self) -> int:
        """How many encoder prefixes this meter has timed."""
        return len(self._encoder_ms)

    def median_ms(self, run: Runner) -> float:
        """Median milliseconds of `run` over `repeats` calls after `warmup` calls."""
        for _ in range(self.warmup):
            run()
        times = []
        for _ in range(self.repeats):
            start = perf_counter()
            run()
            times.append(1000 * (perf_counter() - start))
        return statistics.median(times)

    @staticmethod
    def _torch_parts(segmenter: Segmenter) -> tuple[Runner, Runner]:
        image = torch.zeros(1, 3, *segmenter.image_size, dtype=torch.uint8)
        with torch.inference_mode():
            maps = encode_batch(segmenter.encoder, image, segmenter.block_ids)

        def encode() -> object:
            with torch.inference_mode():
                return encode_batch(segmenter.encoder, image, segmenter.block_ids)

        def head() -> object:
            with torch.inference_mode():
                return segmenter.scorer.score(maps)

        return encode, head

    def _converted_parts(self, graph: ScoringGraph, folder: Path, with_encoder: bool) -> tuple[Runner | None, Runner]:
        """The encoder's runner (None unless `with_encoder`) and the head's."""
        image = torch.zeros(1, *graph.segmenter.image_size, 3, dtype=torch.uint8)
        with torch.inference_mode():
            maps = tuple(graph.features(image))
        names = [f"map{i}" for i in range(len(maps))]
        export_onnx(_Part(graph, "decide"), maps, folder / "head.onnx", names, ["map", "score", "label", "mask"])
        head = self._session(folder / "head.onnx", {name: m.numpy() for name, m in zip(names, maps, strict=True)})
        if not with_encoder:
            return None, head
        export_onnx(_Part(graph, "features"), (image,), folder / "encoder.onnx", ["images"], names)
        return self._session(folder / "encoder.onnx", {"images": image.numpy()}), head

    def _session(self, path: Path, feeds: dict[str, np.ndarray]) -> Runner:
        if self.runtime == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return lambda: session.run(None, feeds)
        import openvino

        compiled = openvino.Core().compile_model(str(path), "CPU", FP32)
        return lambda: compiled(feeds)


class _Part(torch.nn.Module):
    """One method of a ScoringGraph as a module of its own, for the exporter."""

    def __init__(self, graph: ScoringGraph, method: str) -> None:
        super().__init__()
        self.scoring, self.method = graph, method

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self.scoring, self.method)(*inputs))
