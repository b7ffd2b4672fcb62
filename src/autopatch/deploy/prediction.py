"""Predict on arbitrary image files: per image a panel PNG, the raw score map and a verdict, robust to bad files.

A folder is read non-recursively; files whose names do not end in an image extension are skipped
(and listed), files that fail to decode are reported and the rest still processed. Images are
decoded and scored `batch_size` at a time, so memory stays bounded for any folder size.

`predictions.csv` has one row per scored image: file, image_score (the map's maximum), label (NG when the
score is >= the model's image threshold, else OK; empty for a model without one) and defect_area_px (pixels
of the input image whose map value is at or above the pixel threshold; empty without one).

The `.npy` map is at the input image's own size (the model's map resized back, bilinear), so it overlays the
original file; the PNG panel shows the image as the model saw it (the model's image size).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from autopatch.data import IMAGE_EXTENSIONS, load_readable_images
from autopatch.deploy.inference import Inferencer
from autopatch.errors import AutopatchError, check_positive
from autopatch.files import atomic_path, check_output_folder, write_text
from autopatch.report.heatmaps import save_prediction_png

OK, NG = "OK", "NG"
PREDICTIONS_FILE = "predictions.csv"
CSV_COLUMNS = ("file", "image_score", "label", "defect_area_px")


@dataclass(frozen=True)
class Prediction:
    """One scored image: its file, image score, OK/NG label (None without an image threshold) and the
    pixels at or above the pixel threshold (None without one)."""

    path: Path
    image_score: float
    label: str | None
    defect_area_px: int | None


@dataclass
class PredictionReport:
    """What predict_files did: written (image, png, npy) triples, one Prediction per written image, skipped
    non-images, unreadable images, and the CSV of the predictions."""

    written: list[tuple[Path, Path, Path]] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    csv: Path | None = None

    @property
    def ng(self) -> int:
        """How many images were judged NG."""
        return sum(p.label == NG for p in self.predictions)


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
    model: Inferencer, image_or_dir: str | Path, out_dir: str | Path, batch_size: int = 32, progress: bool = False
) -> PredictionReport:
    """Write `<stem>.png` (image | heatmap overlay | threshold outline), `<stem>.npy` (float32 [height, width]
    of the input file) and `predictions.csv` (see the module's docstring); `model` is any runtime's inferencer."""
    check_positive("--batch-size", batch_size)
    images, skipped = collect_inputs(image_or_dir)
    report = PredictionReport(skipped=skipped)
    out_dir = check_output_folder(out_dir, "prediction folder")
    stems = dict(zip(images, output_stems(images), strict=True))
    chunks = range(0, len(images), batch_size)
    for start in tqdm(chunks, desc="predict", unit="batch", disable=not progress):
        readable = load_readable_images(images[start : start + batch_size], model.image_size)
        report.failures.extend(readable.failures)
        if not readable.paths:
            continue
        pixels = readable.images.permute(0, 2, 3, 1).numpy()  # uint8 RGB [N, H, W, 3], every runtime's input
        result = model.predict(pixels)
        for i, path in enumerate(readable.paths):
            score = result.anomaly_maps[i]
            png = save_prediction_png(out_dir / f"{stems[path]}.png", pixels[i], score, model.threshold)
            original = at_size(score, readable.sizes[i])
            npy = out_dir / f"{stems[path]}.npy"
            with atomic_path(npy) as tmp:
                np.save(tmp, original)
            report.written.append((path, png, npy))
            label = None if result.labels is None else (NG if result.labels[i] else OK)
            area = None if model.threshold is None else int(np.count_nonzero(original >= model.threshold))
            report.predictions.append(Prediction(path, float(result.image_scores[i]), label, area))
    report.csv = _write_csv(out_dir / PREDICTIONS_FILE, report.predictions)
    return report


def at_size(anomaly_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`anomaly_map` float32 [h, w] resized (bilinear) to `size` = (width, height), an input file's own size."""
    if anomaly_map.shape == (size[1], size[0]):
        return anomaly_map.astype(np.float32)
    resized = Image.fromarray(anomaly_map.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _write_csv(path: Path, predictions: list[Prediction]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in predictions:
        area = "" if p.defect_area_px is None else p.defect_area_px
        writer.writerow([str(p.path), repr(p.image_score), p.label or "", area])
    return write_text(path, text.getvalue())
