"""Fixtures shared across the test tree: the real datasets beside the repository (../shared/data)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def bottle_root() -> Path:
    """The folder holding MVTec AD `bottle`; the test skips only when the shared dataset folder is absent."""
    root = SHARED_DATA / "mvtec_bottle"
    if not (root / "bottle").is_dir():
        pytest.skip(f"MVTec bottle not found at {root / 'bottle'} (shared dataset folder absent)")
    return root


@pytest.fixture(scope="session")
def sklearn_scores():
    """`check(model_file, data_root, category, k=1)` -> AP, AUROC, F1 at the stored threshold of the saved
    model's test-split maps, and image-AUROC / image-AP / image-F1 (at the image threshold) of their maxima, by
    scikit-learn: the oracle for the numbers a command printed or wrote."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    from autopatch.data import load_splits
    from autopatch.segmenter import Segmenter

    def check(model_file: Path, data_root: Path, category: str, k: int = 1) -> dict[str, float]:
        model = Segmenter.load(model_file)
        test = load_splits(data_root, category, k, image_size=model.image_size).test
        maps = model.predict(test.images).numpy()
        scores, truth = maps.ravel(), test.masks.numpy().ravel().astype(bool)
        result = {"AP": average_precision_score(truth, scores), "AUROC": roc_auc_score(truth, scores)}
        if model.threshold is not None:
            result["F1"] = f1_score(truth, scores >= model.threshold)
        per_image, anomalous = maps.max(axis=(1, 2)), test.is_anomalous
        result["image-AUROC"] = roc_auc_score(anomalous, per_image)
        result["image-AP"] = average_precision_score(anomalous, per_image)
        if model.image_threshold is not None:
            result["image-F1"] = f1_score(anomalous, per_image >= model.image_threshold)
        return result

    return check
