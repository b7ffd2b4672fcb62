"""Synthetic anomalies: deterministic per seed, pixels change only inside the mask, placed on the part, and the
Poisson blend checked against a dense solve of the equations written out by loops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autopatch.cli.main import main
from autopatch.data.synthetic import KIND_CHOICES, SYNTHETIC_KINDS, foreground, make_synthetic, poisson_fill
from autopatch.errors import AutopatchError

TOY = str(Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy")


def textured_normals(count: int = 4, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, size, size + 8, 3), dtype=np.uint8)


def disc_normals(count: int = 3, size: int = 64) -> np.ndarray:
    """A bright textured disc (the part) on a dark, slightly noisy background."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size]
    disc = (y - size / 2) ** 2 + (x - size / 2) ** 2 < (size * 0.3) ** 2
    images = rng.integers(0, 12, size=(count, size, size, 3))
    images[:, disc] = rng.integers(150, 250, size=(count, int(disc.sum()), 3))
    return images.astype(np.uint8), disc


@pytest.mark.parametrize("kind", KIND_CHOICES)
def test_the_same_seed_draws_the_same_anomalies_and_more_anomalies_keep_the_first(kind):
    normals = textured_normals()
    first = make_synthetic(normals, 5, kind, seed=3)
    again = make_synthetic(normals, 7, kind, seed=3)
    assert (again.images[:5] == first.images).all() and (again.masks[:5] == first.masks).all()
    assert again.kinds[:5] == first.kinds and again.sources[:5] == first.sources
    other = make_synthetic(normals, 5, kind, seed=4)
    assert not (other.masks == first.masks).all()


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_pixels_change_only_inside_the_mask_and_almost_all_of_it_changes(kind):
    normals = textured_normals()
    made = make_synthetic(normals, 6, kind, seed=0)
    assert made.kinds == [kind] * 6
    for image, mask, target, source in zip(made.images, made.masks, made.targets, made.sources, strict=True):
        assert source != target  # the content is foreign: another normal image
        changed = (image != normals[target]).any(axis=-1)
        assert mask.any() and not (changed & ~mask).any()
        assert changed[mask].mean() > 0.9, kind  # equal only where the foreign content happens to match


def test_mix_cycles_through_the_generators():
    made = make_synthetic(textured_normals(), 7, "mix")
    assert made.kinds == [*SYNTHETIC_KINDS, *SYNTHETIC_KINDS, SYNTHETIC_KINDS[0]]


def test_foreground_finds_the_part_and_takes_a_texture_whole():
    normals, disc = disc_normals()
    found = foreground(normals[0])
    assert (found & disc).sum() / (found | disc).sum() > 0.9  # intersection over union
    assert foreground(textured_normals()[0]).all()


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_anomalies_of_an_object_are_placed_on_the_part(kind):
    normals, disc = disc_normals()
    made = make_synthetic(normals, 6, kind, seed=2)
    for mask in made.masks:
        assert mask.any() and (mask & ~disc).sum() <= 0.1 * mask.sum()  # the estimate's edge may differ by a pixel


def test_poisson_fill_solves_the_equations_a_dense_solve_of_loops_gives():
    rng = np.random.default_rng(5)
    target = rng.uniform(0, 255, size=(9, 10, 2))
    guide = rng.normal(0, 10, size=(9, 10, 2))
    mask = np.zeros((9, 10), dtype=bool)
    mask[2:6, 3:8] = True
    mask[6, 4] = True
    unknowns = [(r, c) for r in range(9) for c in range(10) if mask[r, c]]
    position = {pixel: i for i, pixel in enumerate(unknowns)}
    matrix = np.zeros((len(unknowns), len(unknowns)))
    rhs = np.zeros((len(unknowns), 2))
    for i, (r, c) in enumerate(unknowns):
        matrix[i, i] = 4.0
        rhs[i] = guide[r, c]
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if mask[nr, nc]:
                matrix[i, position[(nr, nc)]] = -1.0
            else:
                rhs[i] += target[nr, nc]
    solved = np.linalg.solve(matrix, rhs)
    filled = poisson_fill(target, mask, guide)
    for i, (r, c) in enumerate(unknowns):
        assert filled[r, c] == pytest.approx(solved[i], abs=1e-9)
    assert (filled[~mask] == target[~mask]).all()


@pytest.mark.parametrize(
    ("kind", "count", "message"), [("perlin", 2, "--synthetic-kind 'perlin'"), ("mix", 0, "--synthetic 0")]
)
def test_bad_settings_are_one_line_errors(kind, count, message):
    with pytest.raises(AutopatchError, match=message) as error:
        make_synthetic(textured_normals(), count, kind)
    assert "\n" not in str(error.value)


def test_the_cli_draws_a_picture_of_the_data(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["synthetic", TOY, "--category", "hazelnut_toy", "--n", "5", "--image-size", "64",
                 "--out", str(out)]) == 0  # fmt: skip
    assert f"wrote {out}: 5 synthetic anomalies (mix, seed 0)" in capsys.readouterr().out
    from PIL import Image

    with Image.open(out) as image:  # two rows of four anomalies, three panels each
        assert image.format == "PNG" and image.width > 3 * image.height


def test_synthetic_validation_is_made_from_train_normals_that_leave_the_train_split():
    from autopatch.data import load_splits
    from autopatch.data.splits import synthetic_source_paths

    plain = load_splits(TOY, "hazelnut_toy", 1, image_size=48)
    made = load_splits(TOY, "hazelnut_toy", 0, image_size=48, synthetic=5, synthetic_kind="mix", synthetic_seed=1)
    sources = synthetic_source_paths(TOY, "hazelnut_toy")
    assert plain.train.paths == made.train.paths + sources  # the last train normals leave the train split
    normals = [path for path, kind in zip(plain.val.paths, plain.val.types, strict=True) if kind == "good"]
    assert made.val.paths[: len(normals)] == normals and made.test.paths == plain.test.paths
    synthetic = made.val.types[len(normals) :]
    assert synthetic == ["synthetic_draem", "synthetic_cutpaste", "synthetic_nsa", "synthetic_draem",
                         "synthetic_cutpaste"]  # fmt: skip
    # every synthetic image is, outside its mask, exactly one source image and no train or validation normal
    source_images = plain.train.images[len(made.train) :]
    others = torch.cat([made.train.images, made.val.images[: len(normals)]])
    for image, mask in zip(made.val.images[len(normals) :], made.val.masks[len(normals) :], strict=True):
        outside = ~mask
        same = [bool((image[:, outside] == source[:, outside]).all()) for source in source_images]
        assert sum(same) == 1
        assert not any(bool((image[:, outside] == other[:, outside]).all()) for other in others)
        assert mask.any()


def test_k_0_needs_synthetic_anomalies():
    from autopatch.data import load_splits
    from autopatch.search.definition import StudySettings

    with pytest.raises(AutopatchError, match="synthetic"):
        load_splits(TOY, "hazelnut_toy", 0, image_size=48)
    with pytest.raises(AutopatchError, match="--k 0 validates on synthetic anomalies only"):
        StudySettings(TOY, "hazelnut_toy", k=0)
    with pytest.raises(AutopatchError, match="--synthetic-kind 'blur'"):
        StudySettings(TOY, "hazelnut_toy", k=0, synthetic=4, synthetic_kind="blur")
    name = StudySettings(TOY, "hazelnut_toy", k=0, synthetic=4).default_study_name()
    assert name == "hazelnut_toy-pretrained-k0-s0-syn4"
