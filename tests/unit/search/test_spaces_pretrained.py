"""The `pretrained` space: OFA-like stages of the fixed encoders, names, availability, get_space."""

import optuna
import pytest

from autopatch.errors import AutopatchError
from autopatch.search import spaces
from autopatch.search.spaces import PretrainedSpace, default_space, get_space, pretrained_stages

optuna.logging.set_verbosity(optuna.logging.WARNING)

# EfficientNet-Lite0 MBConv blocks (Tan & Le 2019, Table 1 with Lite's unscaled stem/head): 1 block at
# stride 2 (16 ch), then 2 x 24ch@4, 2 x 40ch@8, 3 x 80ch@16, 3 x 112ch@16, 4 x 192ch@32, 1 x 320ch@32.
LITE0_STAGES = ((1, 2), (3, 4), (5, 6, 7), (8, 9, 10), (11, 12, 13, 14, 15))
# Lite2 (depth x1.2): 1 + 3 + 3 + 4 + 4 + 5 + 1 blocks.
LITE2_STAGES = ((1, 2, 3), (4, 5, 6), (7, 8, 9, 10), (11, 12, 13, 14), (15, 16, 17, 18, 19, 20))


def test_efficientnet_stages_mirror_ofa_strides():
    assert pretrained_stages("efficientnet_lite0") == LITE0_STAGES
    assert pretrained_stages("efficientnet_lite2") == LITE2_STAGES


def test_suggest_uses_encoder_qualified_block_names_and_shared_patch_sizes():
    space = PretrainedSpace(["efficientnet_lite0", "efficientnet_lite2"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    encoders = set()
    for _ in range(150):
        trial = study.ask()
        arch = space.suggest(trial)
        encoder = trial.params["encoder"]
        encoders.add(encoder)
        stages = LITE0_STAGES if encoder == "efficientnet_lite0" else LITE2_STAGES
        assert set(trial.params) == {"encoder"} | {
            f"{encoder}_stage_{i}_block" for i in range(5)
        } | {f"stage_{i}_patch_size" for i in range(5)}
        chosen = [trial.params[f"{encoder}_stage_{i}_block"] for i in range(5)]
        for block, stage in zip(chosen, stages, strict=True):
            assert block is None or block in stage
        if all(b is None for b in chosen):
            assert arch is None
            continue
        assert arch.encoder == encoder and arch.encoder_config == {}
        assert list(arch.block_ids) == [b for b in chosen if b is not None]
        patches = [trial.params[f"stage_{i}_patch_size"] for i in range(5) if chosen[i] is not None]
        assert list(arch.patch_sizes) == patches
    assert encoders == {"efficientnet_lite0", "efficientnet_lite2"}


def test_mobilenet_v2_joins_only_when_its_weights_are_local(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUTOPATCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    lite = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    assert spaces.available_pretrained_encoders() == lite
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "mobilenet_v2-b0353104.pth").write_bytes(b"")
    assert spaces.available_pretrained_encoders() == (*lite, "mobilenet_v2")


def test_default_space_is_ofa_only_with_both_supernets_local(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUTOPATCH_WEIGHTS_DIR", raising=False)
    assert default_space() == "pretrained"
    cache = tmp_path / "home" / "weights"
    cache.mkdir(parents=True)
    (cache / "ofa_mbv3_d234_e346_k357_w1.2").write_bytes(b"")
    assert default_space() == "pretrained"
    (cache / "ofa_mbv3_d234_e346_k357_w1.0").write_bytes(b"")
    assert default_space() == "ofa"


def test_get_space_names_and_unknown_name_error():
    assert get_space("ofa").name == "ofa"
    assert get_space("ofa-fixed").name == "ofa-fixed"
    assert get_space("pretrained").name == "pretrained"
    with pytest.raises(AutopatchError, match="ofa, ofa-fixed, pretrained"):
        get_space("ofa_fixed")
