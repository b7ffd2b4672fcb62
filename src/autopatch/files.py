"""Writing files: every output location is checked before the work starts, and every file is written so
that a crash or a full disk never leaves a half-written one. The one place every output goes through."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autopatch.errors import AutopatchError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside `path` to write to; it replaces `path` when the block succeeds and is removed
    when it fails. The temporary name keeps the suffix, so writers that add one (np.save) leave it alone.
    A failed write (full disk, read-only folder) is one error line naming `path` and the cause."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        raise AutopatchError(f"cannot write {path}: {describe(error)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """`path.write_text(text)` (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Before any work: `path` can be written (its folder exists or can be made, and takes a file); else one
    error line naming the path and the cause."""
    path = Path(path)
    if path.is_dir():
        raise AutopatchError(f"{what} {path} is a folder; give a file name, e.g. {path / 'model.pt'}")
    check_output_folder(path.parent, f"the folder of {what} {path}")
    return path


def check_output_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Before any work: `folder` exists (made if missing) and a file can be created in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AutopatchError(f"{what} {folder} is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".autopatch-probe-"):
            pass
    except OSError as error:
        raise AutopatchError(f"cannot write to {what} {folder}: {describe(error)}; choose another --out") from None
    return folder


def describe(error: OSError) -> str:
    """'no space left on device', 'read-only file system', ...: the cause of an OSError in a few words."""
    return (error.strerror or str(error) or type(error).__name__).lower()
