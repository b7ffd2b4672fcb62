"""The latency meter of `--cost latency`: an encoder prefix is timed (and, in ONNX Runtime or OpenVINO,
exported) once, the head per architecture; the bank it times has the trial's rows; a missing runtime fails in
one line naming the extra."""

from __future__ import annotations

import sys

import pytest

import autopatch.deploy.latency as latency
from autopatch.deploy import LatencyMeter
from autopatch.errors import AutopatchError
from autopatch.search.architecture import Architecture

SIZE = (64, 64)
A = Architecture("efficientnet_lite0", {}, (2, 4), (3, 1))
B = Architecture("efficientnet_lite0", {}, (4,), (5,))  # A's network: the same deepest block
C = Architecture("efficientnet_lite0", {}, (2,), (1,))


def test_an_encoder_prefix_is_timed_once_and_each_head_with_the_trials_bank(monkeypatch):
    banks = []
    real = latency.with_random_bank
    monkeypatch.setattr(latency, "with_random_bank", lambda model, rows: banks.append(rows) or real(model, rows))
    meter = LatencyMeter("torch", warmup=1, repeats=2)
    a, b = meter(A, SIZE, 50), meter(B, SIZE, 70)
    assert meter.encoders_measured == 1 and b.encoder_ms == a.encoder_ms
    c = meter(C, SIZE, 90)
    assert meter.encoders_measured == 2 and c.encoder_ms != a.encoder_ms
    assert banks == [50, 70, 90]
    assert all(x.total_ms == x.encoder_ms + x.head_ms and x.head_ms > 0 for x in (a, b, c))


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_a_converted_encoder_is_exported_once_per_prefix(monkeypatch, runtime):
    exported = []
    real = latency.export_onnx
    monkeypatch.setattr(latency, "export_onnx", lambda module, inputs, path, *args: exported.append(path.name)
                        or real(module, inputs, path, *args))  # fmt: skip
    meter = LatencyMeter(runtime, warmup=1, repeats=2)
    first, second = meter(A, SIZE, 50), meter(B, SIZE, 50)
    assert exported == ["head.onnx", "encoder.onnx", "head.onnx"]
    assert second.encoder_ms == first.encoder_ms


@pytest.mark.parametrize(("runtime", "module", "extra"), [("onnx", "onnxruntime", "autopatch[onnx]"),
                                                          ("openvino", "openvino", "autopatch[openvino]")])  # fmt: skip
def test_a_missing_runtime_names_its_extra(monkeypatch, runtime, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(AutopatchError, match=f"needs .*{extra.replace('[', '.').replace(']', '.')}"):
        LatencyMeter(runtime)


def test_an_unknown_runtime_is_refused():
    with pytest.raises(AutopatchError, match="--runtime 'tflite' is unknown; use one of torch, onnx, openvino"):
        LatencyMeter("tflite")
