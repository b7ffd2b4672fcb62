"""Decode image and mask files into one uint8 / bool tensor, in parallel threads.

Images: 16-bit (and other wide) grey images scaled to 8 bits, then `convert("RGB")` (grey promoted to 3
channels, alpha dropped), then PIL BILINEAR resize to the image size (height x width, see
`autopatch.image_size`). That is exactly what the reference's torchvision `Resize` does on a PIL
image (PIL's bilinear filter widens its support when shrinking, i.e. it antialiases), so features
and metric values stay comparable with the paper.
Masks: the 0/255 grey mask is resized the same way and every pixel > 0 counts as anomalous (the
reference's rule; it slightly grows thin regions, never loses them).

Decoding runs in a thread pool: PIL releases the GIL while it decodes and resizes, so threads scale
without the pickling cost of processes. Results land in preallocated arrays in input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from autopatch.errors import AutopatchError
from autopatch.image_size import ImageSize, parse_image_size

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def default_workers() -> int:
    """Threads used for decoding: one per core, capped at 8 (beyond that disk and memory bandwidth rule)."""
    return max(1, min(8, os.cpu_count() or 1))


def _open(path: Path, mode: str) -> Image.Image:
    """Fully decode `path` into `mode`; any failure becomes one AutopatchError line naming the file."""
    try:
        if path.stat().st_size == 0:
            raise AutopatchError(f"{path} is empty (0 bytes): copy the file again or delete it")
        with Image.open(path) as im:
            im.load()
            if mode != "L":  # a mask keeps its values: anything > 0 is anomalous, whatever the bit depth
                im = _as_8bit(im)
            return im.convert(mode) if im.mode != mode else im.copy()
    except AutopatchError:
        raise
    except FileNotFoundError:
        raise AutopatchError(f"{path} does not exist: check the path") from None
    except _DECODE_ERRORS as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AutopatchError(
            f"cannot read image {path} ({reason}): replace the file with a valid image or delete it"
        ) from None


_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _as_8bit(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer or float) grey images scaled to 8 bits. PIL's `convert("RGB")` clips them
    at 255, so a 16-bit image would come out almost all white."""
    if im.mode in _WIDE_INTEGER_MODES:
        values = np.asarray(im).astype(np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or values.max() <= 65535 else float(values.max())
        return Image.fromarray(np.round(values / peak * 255.0).clip(0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        values = np.asarray(im).astype(np.float64)
        scale = 255.0 if values.max() <= 1.0 else 1.0  # [0, 1] floats, or floats already in 0..255
        return Image.fromarray(np.round(values * scale).clip(0, 255).astype(np.uint8), "L")
    return im


def decode_image(path: Path, image_size: int | str | ImageSize) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the resized image as uint8 [H,W,3] and the file's original (width, height)."""
    im = _open(Path(path), "RGB")
    resized = im.resize(parse_image_size(image_size)[::-1], Image.Resampling.BILINEAR)
    return np.asarray(resized), im.size


def decode_mask(
    path: Path, image_size: int | str | ImageSize, image_original_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Return the mask as bool [H,W]: grey, bilinear resize, then > 0; its size must equal its image's."""
    im = _open(Path(path), "L")
    if image_original_size is not None and im.size != tuple(image_original_size):
        w, h = image_original_size
        raise AutopatchError(
            f"mask {path} is {im.size[0]}x{im.size[1]} but its image is {w}x{h}: "
            f"save the mask at the image's size"
        )
    return np.asarray(im.resize(parse_image_size(image_size)[::-1], Image.Resampling.BILINEAR)) > 0


def _run_in_order(tasks: int, job: Callable[[int], None], workers: int | None) -> None:
    """Run job(0..tasks-1) on a thread pool; re-raise the error of the lowest failing index."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or tasks <= 1:
        for i in range(tasks):
            job(i)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(job, range(tasks)):
            pass


def _empty_images(n: int, image_size: ImageSize) -> tuple[torch.Tensor, np.ndarray]:
    """An [N,H,W,3] buffer (numpy view to fill) that becomes the [N,3,H,W] tensor afterwards."""
    hwc = torch.empty((n, *image_size, 3), dtype=torch.uint8)
    return hwc, hwc.numpy()


def decode_pairs(
    pairs: Sequence[tuple[Path, Path | None]], image_size: int | str | ImageSize, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode (image, mask-or-None) pairs into images uint8 [N,3,H,W] and masks bool [N,H,W].

    A missing mask (normal image) gives an all-false mask.
    """
    image_size = parse_image_size(image_size)
    hwc, image_buf = _empty_images(len(pairs), image_size)
    masks = torch.zeros((len(pairs), *image_size), dtype=torch.bool)
    mask_buf = masks.numpy()

    def job(i: int) -> None:
        image_path, mask_path = pairs[i]
        image_buf[i], original_size = decode_image(image_path, image_size)
        if mask_path is not None:
            mask_buf[i] = decode_mask(mask_path, image_size, original_size)

    _run_in_order(len(pairs), job, workers)
    return hwc.permute(0, 3, 1, 2).contiguous(), masks


def load_images(
    paths: Sequence[str | Path], image_size: int | str | ImageSize, workers: int | None = None
) -> torch.Tensor:
    """Decode image files (any size, RGB or grey) into uint8 [N,3,H,W]; the first unreadable file raises."""
    images, _ = decode_pairs([(Path(p), None) for p in paths], image_size, workers)
    return images


@dataclass(frozen=True)
class ReadableImages:
    """What `load_readable_images` could decode, each file's own (width, height), and why the rest failed
    (one line per file)."""

    images: torch.Tensor
    paths: list[Path]
    failures: list[tuple[Path, str]]
    sizes: list[tuple[int, int]]


def load_readable_images(
    paths: Sequence[str | Path], image_size: int | str | ImageSize, workers: int | None = None
) -> ReadableImages:
    """Like load_images, but skip unreadable files and report them, for predicting on arbitrary folders.

    `images[i]` belongs to `paths[i]` (input order kept); `failures` pairs each skipped file with the
    AutopatchError line explaining it.
    """
    image_size = parse_image_size(image_size)
    paths = [Path(p) for p in paths]
    hwc, image_buf = _empty_images(len(paths), image_size)
    errors: list[str | None] = [None] * len(paths)
    sizes = [(0, 0)] * len(paths)

    def job(i: int) -> None:
        try:
            image_buf[i], sizes[i] = decode_image(paths[i], image_size)
        except AutopatchError as e:
            errors[i] = str(e)

    _run_in_order(len(paths), job, workers)
    ok = [i for i, err in enumerate(errors) if err is None]
    images = hwc.permute(0, 3, 1, 2)[ok].contiguous()
    failures = [(paths[i], err) for i, err in enumerate(errors) if err is not None]
    return ReadableImages(images=images, paths=[paths[i] for i in ok], failures=failures, sizes=[sizes[i] for i in ok])
