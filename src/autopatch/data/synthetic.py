"""Synthetic anomalies with exact masks, made from normal images only, deterministic per seed.

Three generators, after the papers that introduced them (written here from their descriptions):

- `draem`: a Perlin-noise blob filled with a foreign texture (DRAEM, Zavrtanik et al. 2021). No texture
  dataset is available offline, so the texture is another normal image, flipped and its colour channels
  shuffled and rescaled, blended in with an opacity of 0.5-1.
- `cutpaste`: a thin rotated strip cut from another normal image, colour-jittered and pasted elsewhere
  (CutPaste-scar, Li et al. 2021).
- `nsa`: a rectangle of another normal image Poisson-blended in (Natural Synthetic Anomalies, Schlüter et
  al. 2022): inside the rectangle the image takes the patch's gradients and meets the target at the border,
  so the seam is invisible and only the content is foreign. The Poisson equation is solved here with a
  sparse solver, not OpenCV.

`mix` cycles through the three. Every anomaly i is drawn from its own generator `numpy.random.default_rng((seed,
i))`, so adding anomalies never changes the earlier ones. A mask is exactly the region the generator wrote:
pixels outside it are never changed, and inside it they change unless the foreign content happens to equal
the target there.

Where the part is: for object images a defect on the background teaches the wrong thing, so each anomaly is
placed on an estimated foreground (`foreground`): pixels whose blurred colour is far (Otsu's threshold) from
the image border's median colour, holes filled. When that covers under 10 % or over 90 % of the image, or the
image border is not mostly background (its share of foreground above half the image's), the image is treated
as a texture and the whole image is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import spsolve

from autopatch.errors import AutopatchError

SYNTHETIC_KINDS = ("draem", "cutpaste", "nsa")
MIX = "mix"
KIND_CHOICES = (*SYNTHETIC_KINDS, MIX)
MIN_FOREGROUND, MAX_FOREGROUND = 0.1, 0.9  # outside this share of the image: a texture, anywhere goes
PLACEMENT_TRIES = 20
SOURCE_IMAGES = 8  # synthetic anomalies are made from (at most) the last 8 train normals by name
SYNTHETIC_TYPE_PREFIX = "synthetic_"  # the defect type of a synthetic validation anomaly: synthetic_<kind>


@dataclass(frozen=True)
class SyntheticSet:
    """images uint8 [N, H, W, 3]; masks bool [N, H, W]; per anomaly its kind and the indices of the normal image
    it was made from (`targets`) and of the one its foreign content came from (`sources`)."""

    images: np.ndarray
    masks: np.ndarray
    kinds: list[str]
    targets: list[int]
    sources: list[int]


def make_synthetic(normals: np.ndarray, count: int, kind: str = MIX, seed: int = 0) -> SyntheticSet:
    """`count` synthetic anomalies from the uint8 [M, H, W, 3] `normals`: anomaly i is made on normal i mod M
    with content from another normal (the same one when M is 1)."""
    check_kind(kind)
    normals = np.asarray(normals)
    if normals.dtype != np.uint8 or normals.ndim != 4 or normals.shape[-1] != 3 or normals.shape[0] == 0:
        raise AutopatchError(f"synthetic anomalies need uint8 [M, H, W, 3] normal images, got {normals.shape}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise AutopatchError(f"--synthetic {count!r} must be a positive number of synthetic anomalies, e.g. 16")
    images, masks, kinds, targets, sources = [], [], [], [], []
    for index in range(count):
        rng = np.random.default_rng((seed, index))
        target = index % normals.shape[0]
        others = normals.shape[0] - 1
        source = (target + 1 + int(rng.integers(others))) % normals.shape[0] if others else target
        chosen = SYNTHETIC_KINDS[index % len(SYNTHETIC_KINDS)] if kind == MIX else kind
        image, mask = GENERATORS[chosen](normals[target], normals[source], rng)
        images.append(image)
        masks.append(mask)
        kinds.append(chosen)
        targets.append(target)
        sources.append(source)
    return SyntheticSet(np.stack(images), np.stack(masks), kinds, targets, sources)


def check_kind(kind: str) -> None:
    """One error line unless `kind` is a generator or `mix`."""
    if kind not in KIND_CHOICES:
        raise AutopatchError(f"--synthetic-kind {kind!r} is unknown; use one of {', '.join(KIND_CHOICES)}")


def foreground(image: np.ndarray) -> np.ndarray:
    """bool [H, W]: where the object is (see the module's notes); all True for a texture."""
    colour = ndimage.gaussian_filter(image.astype(np.float64), sigma=(2, 2, 0))
    border = np.concatenate([colour[0], colour[-1], colour[:, 0], colour[:, -1]])
    distance = np.linalg.norm(colour - np.median(border, axis=0), axis=-1)
    inside = ndimage.binary_fill_holes(distance > _otsu(distance))
    share = float(inside.mean())
    edge = float(np.concatenate([inside[0], inside[-1], inside[:, 0], inside[:, -1]]).mean())
    if MIN_FOREGROUND <= share <= MAX_FOREGROUND and edge <= share / 2:
        return inside
    return np.ones(image.shape[:2], dtype=bool)


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of `values` over 256 bins."""
    counts, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    below, above = weight[:-1], weight[-1] - weight[:-1]
    valid = (below > 0) & (above > 0)
    if not valid.any():
        return float(edges[-1])
    between = np.zeros_like(below, dtype=np.float64)
    mean_below = mean[:-1][valid] / below[valid]
    mean_above = (mean[-1] - mean[:-1][valid]) / above[valid]
    between[valid] = below[valid] * above[valid] * (mean_below - mean_above) ** 2
    return float(centres[int(np.argmax(between))])


def _placed(make_mask, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mask from `make_mask(rng)` restricted to `allowed`, redrawn until it keeps some pixels (at least
    0.2 % of the image); the last draw unrestricted if none does."""
    least = max(4, int(0.002 * allowed.size))
    for _ in range(PLACEMENT_TRIES):
        mask = make_mask(rng) & allowed
        if mask.sum() >= least:
            return mask
    return make_mask(rng)


def _perlin(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2-D Perlin gradient noise on a grid of `cells`, about in [-0.7, 0.7]."""
    height, width = shape
    angles = rng.uniform(0, 2 * math.pi, size=(cells[0] + 1, cells[1] + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.linspace(0, cells[0], height, endpoint=False)[:, None]
    x = np.linspace(0, cells[1], width, endpoint=False)[None, :]
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = y - y0, x - x0

    def corner(dy: int, dx: int) -> np.ndarray:
        g = gradients[y0 + dy, x0 + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    top = corner(0, 0) + fade(fx) * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + fade(fx) * (corner(1, 1) - corner(1, 0))
    return top + fade(fy) * (bottom - top)


def _recoloured(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` flipped and rotated by 180° at random, its channels shuffled and scaled by 0.6-1.4."""
    texture = image[:: rng.choice((-1, 1)), :: rng.choice((-1, 1))]
    texture = texture[..., rng.permutation(3)].astype(np.float64)
    return np.clip(texture * rng.uniform(0.6, 1.4, size=3), 0, 255)


def _draem(target: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = target.shape[:2]

    def blob(rng: np.random.Generator) -> np.ndarray:
        scale = 2 ** int(rng.integers(1, 5))
        return _perlin(shape, (scale, scale), rng) > 0.3

    mask = _placed(blob, foreground(target), rng)
    opacity = rng.uniform(0.5, 1.0)
    blended = (1 - opacity) * target.astype(np.float64) + opacity * _recoloured(source, rng)
    image = target.copy()
    image[mask] = np.round(blended[mask]).astype(np.uint8)
    return image, mask


def _strip(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A thin strip rotated by -45..45°: its footprint and its centre."""
    height, width = shape
    side = min(height, width)
    length = rng.uniform(0.1, 0.25) * side
    thickness = rng.uniform(max(2.0, 0.01 * side), max(3.0, 0.05 * side))
    angle = rng.uniform(-math.pi / 4, math.pi / 4)
    centre = (rng.uniform(0, height), rng.uniform(0, width))
    y, x = np.mgrid[0:height, 0:width]
    along = (x - centre[1]) * math.cos(angle) + (y - centre[0]) * math.sin(angle)
    across = -(x - centre[1]) * math.sin(angle) + (y - centre[0]) * math.cos(angle)
    return (np.abs(along) <= length / 2) & (np.abs(across) <= thickness / 2), centre


def _cutpaste(target: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = target.shape[:2]
    mask = _placed(lambda rng: _strip(shape, rng)[0], foreground(target), rng)
    shift = [int(rng.integers(-size // 2, size // 2 + 1)) for size in shape]
    rows, cols = np.nonzero(mask)
    taken = source[np.clip(rows + shift[0], 0, shape[0] - 1), np.clip(cols + shift[1], 0, shape[1] - 1)]
    jitter = rng.uniform(0.7, 1.3) * taken.astype(np.float64) + rng.uniform(-30, 30)
    image = target.copy()
    image[rows, cols] = np.clip(np.round(jitter), 0, 255).astype(np.uint8)
    return image, mask


def _rectangle(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = shape
    size = (max(3, int(rng.uniform(0.1, 0.3) * height)), max(3, int(rng.uniform(0.1, 0.3) * width)))
    top, left = int(rng.integers(0, height - size[0] + 1)), int(rng.integers(0, width - size[1] + 1))
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size[0], left : left + size[1]] = True
    return mask


def _nsa(target: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = target.shape[:2]
    interior = np.zeros(shape, dtype=bool)  # the solve needs a border of target pixels around the mask
    interior[1:-1, 1:-1] = True
    mask = _placed(lambda rng: _rectangle(shape, rng), foreground(target) & interior, rng) & interior
    rows, cols = np.nonzero(mask)
    shift = (
        int(rng.integers(-rows.min(), shape[0] - rows.max())),
        int(rng.integers(-cols.min(), shape[1] - cols.max())),
    )
    patch = np.zeros(target.shape, dtype=np.float64)  # the source content moved onto the mask
    patch[rows, cols] = source[rows + shift[0], cols + shift[1]]
    guide = np.zeros(target.shape, dtype=np.float64)  # its Laplacian, from the source's own neighbours
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        near_rows = np.clip(rows + shift[0] + dy, 0, shape[0] - 1)
        near_cols = np.clip(cols + shift[1] + dx, 0, shape[1] - 1)
        guide[rows, cols] += patch[rows, cols] - source[near_rows, near_cols]
    image = target.copy()
    image[rows, cols] = np.clip(np.round(poisson_fill(target.astype(np.float64), mask, guide)[rows, cols]), 0, 255)
    return image, mask


def poisson_fill(target: np.ndarray, mask: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """float [H, W, C]: `target` with the pixels of `mask` replaced by the solution f of the discrete Poisson
    equation 4 f(p) - sum of f over p's 4 neighbours = guide(p) inside the mask, with f = target outside it.
    The mask must not touch the image border."""
    rows, cols = np.nonzero(mask)
    index = -np.ones(mask.shape, dtype=np.int64)
    index[rows, cols] = np.arange(rows.size)
    entries_i, entries_j = [np.arange(rows.size)], [np.arange(rows.size)]
    values = [np.full(rows.size, 4.0)]
    rhs = guide[rows, cols].copy()
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        near_rows, near_cols = rows + dy, cols + dx
        near = index[near_rows, near_cols]
        unknown = near >= 0
        entries_i.append(np.flatnonzero(unknown))
        entries_j.append(near[unknown])
        values.append(np.full(int(unknown.sum()), -1.0))
        rhs[~unknown] += target[near_rows[~unknown], near_cols[~unknown]]
    matrix = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(entries_i), np.concatenate(entries_j))), shape=(rows.size, rows.size)
    )
    solved = spsolve(matrix, rhs)
    out = target.copy()
    out[rows, cols] = solved.reshape(rows.size, -1)
    return out


GENERATORS = {"draem": _draem, "cutpaste": _cutpaste, "nsa": _nsa}
