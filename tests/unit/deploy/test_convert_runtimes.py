"""Converted models (ONNX, OpenVINO) against the torch model they came from (an independent path: faiss 1-NN vs
the graph's tiled matmul), their metadata, runtimes without torch, and the one-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import autopatch
import autopatch.deploy.convert as converting
from autopatch.backbones import create_encoder
from autopatch.cli.main import main
from autopatch.deploy import OnnxInferencer, OpenvinoInferencer, convert_model, load_inferencer
from autopatch.errors import AutopatchError
from autopatch.features import PatchCoreEmbedding
from autopatch.segmenter import Segmenter

SIZE = 64
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}


def images(n: int, seed: int = 2, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def fitted(tmp_path: Path, aggregation=None, blocks=(4, 8), sizes=(3, 3), sigma: float | None = 4.0,
           size: tuple[int, int] = (SIZE, SIZE)) -> Path:  # fmt: skip
    torch.manual_seed(0)
    encoder = create_encoder("efficientnet_lite0", pretrained=False)
    segmenter = Segmenter(encoder, blocks, sizes, size, smoothing_sigma=sigma, aggregation=aggregation)
    train = torch.randint(0, 256, (3, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    segmenter.fit(train)
    maps = segmenter.predict(torch.from_numpy(images(5, size=size)).permute(0, 3, 1, 2).contiguous())
    # thresholds inside the range of the scores, so that both decisions go both ways
    segmenter.threshold = float(maps.quantile(0.9))
    segmenter.image_threshold = float(maps.amax(dim=(1, 2)).median())
    segmenter.metadata = {"architecture": "lite0 test", "category": "toy"}
    return segmenter.save(tmp_path / "model.pt")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("kind", ["patchify", "patchcore"])
def test_converted_models_equal_the_torch_model(tmp_path, kind, fmt):
    aggregation = PatchCoreEmbedding([80, 112], target_dim=64, pretrain_dim=64) if kind == "patchcore" else None
    model = fitted(tmp_path, aggregation=aggregation, blocks=(4, 8) if kind == "patchify" else (5, 9))
    result = convert_model(model, tmp_path / f"model{SUFFIX[fmt]}", fmt)
    assert result.path.is_file() and result.max_relative_difference < 1e-4
    batch = images(5)  # another batch size than the one exported with
    segmenter = Segmenter.load(model)
    want = segmenter.predict(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy()
    got = load_inferencer(result.path).predict(batch)
    np.testing.assert_allclose(got.anomaly_maps, want, rtol=1e-4, atol=1e-4 * float(want.max()))
    np.testing.assert_allclose(got.image_scores, want.max(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_array_equal(got.labels, got.image_scores >= segmenter.image_threshold)
    np.testing.assert_array_equal(got.masks, got.anomaly_maps >= segmenter.threshold)
    assert got.labels.dtype == np.bool_ and got.labels.any() and not got.labels.all()
    assert got.masks.any() and not got.masks.all()


def test_a_long_part_model_converts_and_takes_images_of_its_own_shape(tmp_path):
    model = fitted(tmp_path, size=(32, 64))  # height 32, width 64
    converted = load_inferencer(convert_model(model, tmp_path / "m.onnx", "onnx").path)
    assert converted.image_size == (32, 64)
    batch = images(3, seed=5, size=(32, 64))
    want = Segmenter.load(model).predict(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy()
    got = converted.predict(batch).anomaly_maps
    assert got.shape == (3, 32, 64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.max()))
    with pytest.raises(AutopatchError, match=r"expects \(32, 64, 3\).*resized to 32 x 64 \(height x width\)"):
        converted.predict(images(1, size=(64, 32)))  # the part turned on its side


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_the_file_carries_thresholds_size_and_metadata(tmp_path, fmt):
    path = convert_model(fitted(tmp_path), tmp_path / f"m{SUFFIX[fmt]}", fmt).path
    model, torch_model = load_inferencer(path), Segmenter.load(tmp_path / "model.pt")
    assert isinstance(model, OnnxInferencer if fmt == "onnx" else OpenvinoInferencer)
    assert (model.image_size, model.threshold, model.image_threshold) == (
        (SIZE, SIZE), torch_model.threshold, torch_model.image_threshold)  # fmt: skip
    assert model.metadata == {"architecture": "lite0 test", "category": "toy"}
    written = ["m.onnx"] if fmt == "onnx" else ["m.bin", "m.xml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [*written, "model.pt"]  # no temporary left
    if fmt == "onnx":
        proto = onnx.load(str(path))
        assert {p.key: p.value for p in proto.metadata_props}["format"] == "autopatch-graph"
        assert [i.name for i in proto.graph.input] == ["images"]
        assert [o.name for o in proto.graph.output] == ["anomaly_map", "image_score", "label", "mask"]


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_the_runtimes_run_without_torch_or_faiss(tmp_path, fmt):
    path = convert_model(fitted(tmp_path), tmp_path / f"m{SUFFIX[fmt]}", fmt).path
    script = (
        "import sys, numpy as np\n"
        "from autopatch.deploy import load_inferencer\n"
        f"out = load_inferencer({str(path)!r}).predict(np.zeros((2, {SIZE}, {SIZE}, 3), np.uint8))\n"
        "print(out.anomaly_maps.shape, 'torch' in sys.modules, 'faiss' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[0] == f"(2, {SIZE}, {SIZE}) False False"


def test_a_bank_over_the_file_limit_is_refused_with_the_fix(tmp_path):
    with pytest.raises(AutopatchError, match="does not fit ONNX's 2 GB file limit.*--coreset"):
        convert_model(fitted(tmp_path), tmp_path / "m.onnx", max_bank_bytes=1000)
    assert not (tmp_path / "m.onnx").exists()


def test_bad_inputs_are_one_line_errors(tmp_path, monkeypatch):
    model_file = fitted(tmp_path)
    convert_model(model_file, tmp_path / "m.onnx")
    model = OnnxInferencer(tmp_path / "m.onnx")
    with pytest.raises(AutopatchError, match=r"expects \(64, 64, 3\): RGB with 3 channels"):
        model.predict(np.zeros((1, SIZE, SIZE, 1), np.uint8))
    with pytest.raises(AutopatchError, match="uint8"):
        model.predict(np.zeros((1, SIZE, SIZE, 3), np.float32))
    with pytest.raises(AutopatchError, match="not a readable ONNX model"):
        OnnxInferencer(model_file)  # a torch file given to the ONNX runtime
    with pytest.raises(AutopatchError, match="unknown model extension '.bin'"):
        load_inferencer(tmp_path / "m.bin")
    with pytest.raises(AutopatchError, match="must end in .xml for --format openvino"):
        convert_model(model_file, tmp_path / "m.onnx2", "openvino")
    with pytest.raises(AutopatchError, match="--format 'tflite' is not supported"):
        convert_model(model_file, tmp_path / "m.tflite", "tflite")
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    with pytest.raises(AutopatchError, match="not a model written by `autopatch convert`"):
        OnnxInferencer(plain)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(AutopatchError, match=r"autopatch\[onnx\]"):
        OnnxInferencer(tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(AutopatchError, match=r"autopatch\[openvino\]"):
        convert_model(model_file, tmp_path / "m.xml", "openvino")


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_a_conversion_that_disagrees_with_torch_is_not_kept(tmp_path, monkeypatch, fmt):
    monkeypatch.setitem(converting.MAX_DIFFERENCE, "fp32", -1.0)  # any difference, even 0, is too much
    with pytest.raises(AutopatchError, match=f"the {fmt} fp32 model's anomaly maps differ .* so it was not written"):
        convert_model(fitted(tmp_path), tmp_path / f"m{SUFFIX[fmt]}", fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_fp16_stores_half_the_bytes_and_stays_within_its_limit_of_the_torch_model(tmp_path, fmt):
    # pretrained weights: a random encoder's features are so small that float16 rounds them to subnormals
    toy = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"
    model = tmp_path / "model.pt"
    autopatch.fit(toy, "hazelnut_toy", "efficientnet_lite0", [4, 10], [3, 3], image_size=SIZE, device="cpu", out=model)
    full = convert_model(model, tmp_path / f"full{SUFFIX[fmt]}", fmt)
    half = convert_model(model, tmp_path / f"half{SUFFIX[fmt]}", fmt, precision="fp16")
    assert 0.45 < half.size_bytes / full.size_bytes < 0.6
    converted = load_inferencer(half.path)
    assert converted.metadata == Segmenter.load(model).metadata and converted.image_threshold is not None
    batch = images(4, seed=7)
    want = Segmenter.load(model).predict(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy()
    got, stored_fp32 = converted.predict(batch).anomaly_maps, load_inferencer(full.path).predict(batch).anomaly_maps
    largest = float(want.max())
    assert np.abs(got - want).max() <= converting.MAX_DIFFERENCE["fp16"] * largest
    assert np.abs(got - want).max() > 10 * np.abs(stored_fp32 - want).max()  # it is rounded: not the fp32 file


def test_an_unknown_precision_is_one_line(tmp_path):
    with pytest.raises(AutopatchError, match="--precision 'int8' is not supported; use one of fp32, fp16"):
        convert_model(tmp_path / "model.pt", tmp_path / "m.onnx", precision="int8")


def test_a_model_without_an_image_threshold_is_refused(tmp_path):
    path = fitted(tmp_path)
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "image_threshold": None}, path)
    with pytest.raises(AutopatchError, match="no image threshold"):
        convert_model(path, tmp_path / "m.onnx")


def test_a_model_fitted_without_masks_converts_without_a_defect_mask(tmp_path):
    path = fitted(tmp_path)
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "threshold": None}, path)  # as `fit` leaves it on a folder dataset without masks
    model = load_inferencer(convert_model(path, tmp_path / "m.onnx").path)
    result = model.predict(images(3))
    assert model.threshold is None and result.masks is None
    np.testing.assert_array_equal(result.labels, result.image_scores >= model.image_threshold)


@pytest.mark.slow
def test_predict_writes_the_same_files_from_every_runtime(tmp_path):
    model = fitted(tmp_path)
    for fmt in ("onnx", "openvino"):
        assert main(["convert", str(model), "--format", fmt, "--out", str(tmp_path / f"model{SUFFIX[fmt]}")]) == 0
    source = tmp_path / "in"
    source.mkdir()
    for i, pixels in enumerate(images(3, seed=7)):
        Image.fromarray(pixels).save(source / f"{i}.png")
    suffixes = (".pt", ".onnx", ".xml")
    for suffix in suffixes:
        out = tmp_path / suffix[1:]
        assert main(["predict", str(tmp_path / f"model{suffix}"), str(source), "--out", str(out)]) == 0
    rows = {s: list(csv.DictReader((tmp_path / s[1:] / "predictions.csv").open())) for s in suffixes}
    threshold = Segmenter.load(model).image_threshold
    for suffix in suffixes[1:]:
        assert [r["file"] for r in rows[suffix]] == [r["file"] for r in rows[".pt"]]
        for torch_row, row in zip(rows[".pt"], rows[suffix], strict=True):
            score = float(torch_row["image_score"])
            assert float(row["image_score"]) == pytest.approx(score, rel=1e-4)
            if abs(score - threshold) > 1e-4 * abs(threshold):  # a score on the threshold may fall either side
                assert row["label"] == torch_row["label"]
            name = Path(torch_row["file"]).stem + ".npy"
            want = np.load(tmp_path / "pt" / name)
            np.testing.assert_allclose(np.load(tmp_path / suffix[1:] / name), want, atol=1e-4 * float(want.max()))
