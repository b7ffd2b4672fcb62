"""Pretrained OFA encoders: checkpoint file -> verified -> strict load -> materialized sub-network.

The real checkpoints cannot be downloaded here, so the fixture's reference weights are written in the
official checkpoint layout and the expected git blob id is pointed at that file.
"""

import hashlib
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from autopatch.backbones import create_encoder, ofa
from autopatch.backbones.ofa import OFA_LAYOUT, OFAMobileNetV3
from autopatch.errors import AutopatchError

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "ofa_mbv3_reference.pt"
W12 = OFA_LAYOUT.family(1.2)


def _git_blob_sha1(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def reference() -> dict:
    if not FIXTURE.is_file():
        pytest.skip(f"conformance fixture {FIXTURE} is absent")
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture
def no_weights_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("AUTOPATCH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("AUTOPATCH_HOME", str(tmp_path / "home"))


def _write_checkpoint(path: Path, state: dict, monkeypatch) -> Path:
    torch.save({"state_dict": state, "epoch": 0}, path)
    _accept(path, monkeypatch)
    return path


def _accept(path: Path, monkeypatch) -> None:
    """Make `path` the published w1.2 checkpoint (its checksum), as a download of it would be."""
    monkeypatch.setitem(ofa.CHECKPOINTS, 1.2, replace(ofa.CHECKPOINTS[1.2], checksum=f"gitsha1:{_git_blob_sha1(path)}"))


def test_pretrained_factory_loads_legacy_named_checkpoint_and_reproduces_reference(
    reference, tmp_path, monkeypatch, no_weights_dir
):
    width = reference["widths"][1.2]
    # the oldest official files call the block body `mobile_inverted_conv`
    legacy = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
              for k, v in width["state_dict"].items()}
    path = _write_checkpoint(tmp_path / W12, legacy, monkeypatch)
    case = width["cases"][3]
    encoder = create_encoder(W12, weights=str(path), **case["setting"])
    assert not encoder.training
    block_ids = sorted(case["block_outputs"])
    with torch.no_grad():
        maps = encoder.forward_features(reference["input"].float(), block_ids)
        logits = encoder.logits(reference["input"].float())
    for block_id, actual in zip(block_ids, maps, strict=True):
        expected = case["block_outputs"][block_id].float()
        assert (actual - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    assert (logits - case["logits"]).abs().max() <= 1e-4 * max(1.0, case["logits"].abs().max().item())

    truncated = create_encoder(W12, weights=str(path), **case["setting"], deepest_block=9)
    with torch.no_grad():
        assert torch.allclose(truncated.forward_features(reference["input"].float(), [9])[0],
                              maps[block_ids.index(9)], atol=1e-6)


def test_local_file_with_the_wrong_checksum_is_rejected(tmp_path, no_weights_dir):
    path = tmp_path / "not_ofa.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(AutopatchError, match="checksum"):
        create_encoder(W12, weights=str(path))


def test_checkpoint_without_state_dict_or_with_wrong_keys_is_a_one_line_error(tmp_path, monkeypatch, no_weights_dir):
    path = tmp_path / "bare.pth"
    torch.save({"weights": {}}, path)
    _accept(path, monkeypatch)
    with pytest.raises(AutopatchError, match="no 'state_dict' entry"):
        create_encoder(W12, weights=str(path))
    state = OFAMobileNetV3(1.0).state_dict()  # the other width: same keys, wrong shapes
    path = _write_checkpoint(tmp_path / "w10.pth", state, monkeypatch)
    with pytest.raises(AutopatchError, match="does not fit"):
        create_encoder(W12, weights=str(path))


def test_offline_error_names_url_cache_path_and_checksum(monkeypatch, no_weights_dir, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(AutopatchError) as error:
        create_encoder(W12)
    message = str(error.value)
    assert f"https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/{W12}" in message
    assert str(tmp_path / "home" / "weights" / W12) in message
    assert "gitsha1:d75a3613bae216091f61fc4b7df77d49cc82ed32" in message
