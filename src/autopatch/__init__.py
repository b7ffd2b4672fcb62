"""autopatch: training-free architecture search for few-shot anomaly segmentation (AutoPatch).

The public API (`autopatch.fit`, `search`, `export`, `evaluate`, `predict`, `baseline`, `experiment`,
`demo`, `load_splits`, `create_encoder`, `Segmenter`, ...) lives in `autopatch.api` and is loaded on first
use, so `import autopatch` stays cheap and the package's own modules can import `__version__` freely.
"""

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    api = importlib.import_module("autopatch.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'autopatch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *importlib.import_module("autopatch.api").__all__])
