"""Whether an encoder's pretrained weights are on this machine is a registry fact, read from the checkpoint
each family registers (files placed by the test, the pip packages the project depends on)."""

import pytest

from autopatch.backbones import OFA_LAYOUT, is_pretrained_available, pretrained_checkpoint
from autopatch.backbones.registry import register_encoder
from autopatch.errors import AutopatchError


@pytest.fixture
def empty_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("AUTOPATCH_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("AUTOPATCH_HOME", str(tmp_path / "home"))
    return tmp_path


def test_packaged_lite_weights_are_available_offline(empty_weights):
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert is_pretrained_available(name)
        assert pretrained_checkpoint(name).path().name.startswith(name.replace("_", "-"))


@pytest.mark.parametrize("name", ["mobilenet_v2", "wide_resnet50_2", *OFA_LAYOUT.families])
def test_downloaded_weights_count_once_their_file_is_in_the_weights_dir_or_cache(name, empty_weights, monkeypatch):
    assert not is_pretrained_available(name)
    folder = empty_weights / "weights"
    folder.mkdir()
    monkeypatch.setenv("AUTOPATCH_WEIGHTS_DIR", str(folder))
    (folder / pretrained_checkpoint(name).filename).write_bytes(b"")
    assert is_pretrained_available(name)


def test_a_family_without_published_weights_is_never_available_and_unknown_names_fail():
    register_encoder("registry_test_no_weights")(lambda pretrained=True, weights=None: None)
    assert pretrained_checkpoint("registry_test_no_weights") is None
    assert not is_pretrained_available("registry_test_no_weights")
    with pytest.raises(AutopatchError, match="unknown backbone 'nope'"):
        is_pretrained_available("nope")
