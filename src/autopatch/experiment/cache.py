"""Re-fit and baseline results as JSON files whose stored key says what produced them, so reruns resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ResultCache:
    """JSON (and .npy score maps) under one folder; an entry counts only if its stored key matches."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

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
        path = self.folder / f"{name}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"key": _jsonable(key), "payload": payload}, indent=1), encoding="utf-8")
        tmp.replace(path)

    def scores_path(self, name: str) -> Path:
        return self.folder / f"{name}.scores.npy"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))
