"""Search and export on a user's own folders without masks, as users run them: the study maximises an
image-level objective (its values are that metric, not a copy of another), and the exported model decides
OK/NG with no pixel threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from autopatch.cli.main import main
from autopatch.search.storage import open_storage

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy" / "hazelnut_toy"
FOLDERS = ["--normal-dir", str(TOY / "train" / "good"), "--abnormal-dir", str(TOY / "test" / "colour")]
FAST = ["--image-size", "64", "--bank-fraction", "0.5", "--device", "cpu"]
pytestmark = pytest.mark.slow


def test_a_folder_search_without_masks_maximises_image_ap_and_exports_an_ok_ng_model(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["search", *FOLDERS, *FAST, "--trials", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    name = "hazelnut_toy-pretrained-k1-s0-syn16-image-ap"  # the synthetic count and objective are in the name
    assert f"study {name}" in printed and "image AP" in printed.splitlines()[2]
    study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{out / f'{name}.db'}", create=False))
    assert study.user_attrs["objective"] == "image-ap" and study.user_attrs["folders"]["mask_dir"] is None
    trials = study.get_trials()
    assert len(trials) == 3
    for trial in trials:  # the second objective is the trial's image AP; it has no pixel metrics
        assert trial.values == [trial.user_attrs["gflops"], trial.user_attrs["image_ap"]]
        assert "rwap" not in trial.user_attrs

    model = tmp_path / "model.pt"
    assert main(["export", "--study", name, "--runs", str(out), "--out", str(model), "--device", "cpu"]) == 0
    assert "no masks: image-level decisions only" in capsys.readouterr().out
    raw = torch.load(model, weights_only=True)
    assert raw["threshold"] is None and isinstance(raw["image_threshold"], float)
    assert raw["metadata"]["category"] == "hazelnut_toy"


def test_a_pixel_objective_on_data_without_masks_is_one_line(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["search", *FOLDERS, *FAST, "--trials", "2", "--objective", "rwap", "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--objective rwap needs a defect mask" in errors[0] and "image-ap" in errors[0]
    assert not out.exists() or not any(out.iterdir())  # refused before a study was written


def test_a_resume_with_another_objective_is_refused(tmp_path, capsys):
    out = tmp_path / "runs"
    toy = ["--category", "hazelnut_toy", str(TOY.parent)]
    assert main(["search", *toy, *FAST, "--trials", "2", "--study", "s", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["search", *toy, *FAST, "--trials", "3", "--study", "s", "--objective", "image-auroc",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "exists with objective='rwap', not 'image-auroc'" in capsys.readouterr().err


def test_long_parts_keep_their_aspect_from_search_to_predict(tmp_path, capsys):
    """The toy's images cut to their top half (2:1 parts): searched with --resize keep-aspect, exported, predicted."""
    for kind, target in (("train/good", "good"), ("test/colour", "bad")):
        (tmp_path / target).mkdir()
        for path in sorted((TOY / kind).glob("*.png")):
            with Image.open(path) as im:
                im.crop((0, 0, im.width, im.height // 2)).save(tmp_path / target / path.name)
    folders = ["--normal-dir", str(tmp_path / "good"), "--abnormal-dir", str(tmp_path / "bad")]
    long = ["--image-size", "32", "--resize", "keep-aspect", "--bank-fraction", "0.5", "--device", "cpu"]
    out, name = tmp_path / "runs", "long"
    assert main(["search", *folders, *long, "--trials", "2", "--study", name, "--out", str(out)]) == 0
    study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{out / 'long.db'}", create=False))
    assert (study.user_attrs["image_size"], study.user_attrs["resize"]) == (32, "keep-aspect")
    capsys.readouterr()
    stretched = ["--image-size", "32", "--bank-fraction", "0.5", "--device", "cpu"]
    assert main(["search", *folders, *stretched, "--trials", "3", "--study", name, "--out", str(out)]) == 2
    assert "resize='keep-aspect', not 'stretch'" in capsys.readouterr().err

    (tmp_path / "moved").mkdir()  # the folders move after the search: export is told where they are now
    for folder in ("good", "bad"):
        (tmp_path / folder).rename(tmp_path / "moved" / folder)
    model, export = tmp_path / "model.pt", ["export", "--study", name, "--runs", str(out), "--device", "cpu"]
    assert main([*export, "--out", str(model)]) == 2
    assert f"missing folder {tmp_path / 'good'}" in capsys.readouterr().err
    moved = ["--normal-dir", str(tmp_path / "moved" / "good"), "--abnormal-dir", str(tmp_path / "moved" / "bad")]
    assert main([*export, *moved, "--out", str(model)]) == 0
    assert torch.load(model, weights_only=True)["image_size"] == [32, 64]  # height 32, width 2 x 32
    part = sorted((tmp_path / "moved" / "bad").glob("*.png"))[0]
    assert main(["predict", str(model), str(part), "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    with Image.open(part) as im:
        assert np.load(tmp_path / "pred" / f"{part.stem}.npy").shape == (im.height, im.width)
