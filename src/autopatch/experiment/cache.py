"""Re-fit and baseline results as JSON files whose stored key says what produced them, so reruns resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from autopatch.experiment.datasets import Dataset
from autopatch.files import check_output_folder, write_text
from autopatch.search.definition import folder_strings

CACHE_VERSION = 1


class ResultCache:
    """JSON (and .npy score maps) under one folder; an entry counts only if its stored key matches."""

    def __init__(self, folder: Path) -> None:
        self.folder = check_output_folder(folder, "experiment folder")

    @staticmethod
    def entry(kind: str, dataset: Dataset, label: str | None = None, **fields: Any) -> tuple[str, dict[str, Any]]:
        """Name and key of one result of `dataset`: the key records what produced it (cache version, data
        folder, category and `fields`); the name is `<kind>-<dataset>-<label>`, by default a digest of the key,
        so equal inputs share one entry whichever search asked for it."""
        key = {"version": CACHE_VERSION, "root": str(dataset.root.resolve()), "category": dataset.category, **fields}
        if dataset.folders is not None:
            key["folders"] = folder_strings(dataset.folders)
        label = label or hashlib.sha1(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return f"{kind}-{dataset.slug}-{label}", key

    def load(self, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # a half-written file from a killed run: recompute it
        return stored["payload"] if stored.get("key") == _jsonable(key) else None

    def save(self, name: str, key: dict[str, Any], payload: dict[str, Any]) -> None:
        write_text(self.folder / f"{name}.json", json.dumps({"key": _jsonable(key), "payload": payload}, indent=1))

    def scores_path(self, name: str) -> Path:
        return self.folder / f"{name}.scores.npy"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))
