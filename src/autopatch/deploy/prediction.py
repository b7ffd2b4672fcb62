"""Predict on arbitrary image files: per image a panel PNG and the raw score map, robust to bad files.

A folder is read non-recursively; files whose names do not end in an image extension are skipped
(and listed), files that fail to decode are reported and the rest still processed. Images are
decoded and scored `batch_size` at a time, so memory stays bounded for any folder size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from autopatch.data import IMAGE_EXTENSIONS, load_readable_images
from autopatch.errors import AutopatchError, check_positive
from autopatch.files import atomic_path, check_output_folder
from autopatch.report.heatmaps import save_prediction_png
from autopatch.segmenter.segmenter import Segmenter


@dataclass
class PredictionReport:
    """What predict_files did: written (image, png, npy) triples, skipped non-images, unreadable images."""

    written: list[tuple[Path, Path, Path]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)


def collect_inputs(image_or_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """(image files to try, non-image files skipped); a single file is always tried, whatever its name."""
    source = Path(image_or_dir)
    if source.is_file():
        return [source], []
    if not source.is_dir():
        raise AutopatchError(f"input {source} does not exist; pass an image file or a folder of images")
    files = sorted((p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: p.name)
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = [p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    return images, skipped


def output_stems(paths: list[Path]) -> list[str]:
    """`<stem>` per input, or the full file name where two inputs share a stem (a.png and a.jpg)."""
    counts = Counter(p.stem for p in paths)
    return [p.stem if counts[p.stem] == 1 else p.name for p in paths]


def predict_files(
    segmenter: Segmenter, image_or_dir: str | Path, out_dir: str | Path, batch_size: int = 32, progress: bool = False
) -> PredictionReport:
    """Write `<stem>.png` (image | heatmap overlay | threshold outline) and `<stem>.npy` (float32 [S,S])."""
    check_positive("--batch-size", batch_size)
    images, skipped = collect_inputs(image_or_dir)
    report = PredictionReport(skipped=skipped)
    out_dir = check_output_folder(out_dir, "prediction folder")
    stems = dict(zip(images, output_stems(images), strict=True))
    chunks = range(0, len(images), batch_size)
    for start in tqdm(chunks, desc="predict", unit="batch", disable=not progress):
        readable = load_readable_images(images[start : start + batch_size], segmenter.image_size)
        report.failures.extend(readable.failures)
        if not readable.paths:
            continue
        scores = segmenter.predict(readable.images, batch_size=batch_size).numpy()
        for path, image, score in zip(readable.paths, readable.images.numpy(), scores, strict=True):
            png = save_prediction_png(out_dir / f"{stems[path]}.png", image, score, segmenter.threshold)
            npy = out_dir / f"{stems[path]}.npy"
            with atomic_path(npy) as tmp:
                np.save(tmp, score.astype(np.float32))
            report.written.append((path, png, npy))
    return report
