"""Image sizes: how a size is written, checked, recorded and resolved, in one place.

A resolved size is `(height, width)` in pixels; every image tensor below the data layer has that shape.
Users write it as an int `S` (S x S, the paper's square resize), as `"HxW"` (`"224x560"`, height x width)
or as a `(height, width)` pair. The sides of a non-square size are multiples of GRID = 16, so the patch grid
of every stride-4 to stride-16 block (all that PatchCore and the search spaces' defaults extract) covers the
image exactly; a stride-32 block pads half a cell at one edge where a side is an odd multiple of 16. (32
would cover stride-32 blocks too, but it rules out 224x560, the size of a 500 x 1250 px part at 224 px.)

`resize="keep-aspect"` reads an int as the shorter side instead: the first train image's aspect ratio
gives the longer side, rounded to the nearest multiple of GRID. Rounding instead of padding keeps every
scored pixel a pixel of the part (padding would put a band of blank patches into the bank and the maps);
it changes the aspect ratio by at most GRID / 2 px of the longer side (1.4 % at 560 px). Images of another
aspect ratio than the first train image are stretched to the same size, as with `stretch`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from autopatch.errors import AutopatchError

RESIZE_MODES = ("stretch", "keep-aspect")
GRID = 16  # non-square sides and keep-aspect's sides are multiples of it (see above)
ImageSize = tuple[int, int]  # (height, width)

_HXW = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_image_size(value: int | str | Sequence[int]) -> ImageSize:
    """(height, width) of `value`: an int S (S x S), a digit string, "HxW" or a (height, width) pair."""
    hint = f"pass a positive integer such as 224, or HEIGHTxWIDTH such as 224x560 (both multiples of {GRID})"
    given = value
    if isinstance(value, str):
        match = _HXW.match(value)
        if match:
            value = (int(match.group(1)), int(match.group(2)))
        elif value.strip().isdigit():
            value = int(value)
        else:
            raise AutopatchError(f"image_size={given!r} is invalid: {hint}")
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise AutopatchError(f"image_size={given!r} is invalid: {hint}")
    height, width = int(value[0]), int(value[1])
    if height != width and (height % GRID or width % GRID):
        raise AutopatchError(
            f"image_size={given!r} is invalid: a non-square size needs both sides multiples of {GRID}, "
            f"e.g. {_round_to_grid(height)}x{_round_to_grid(width)}"
        )
    return height, width


def image_size_spec(value: int | str | Sequence[int]) -> int | str:
    """The recorded spelling of a size: the int for a square one (as studies always recorded it), else "HxW"."""
    height, width = parse_image_size(value)
    return height if height == width else f"{height}x{width}"


def size_label(size: ImageSize) -> str:
    """"224" or "224x560", for messages and tables."""
    return str(image_size_spec(size))


def check_resize(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise AutopatchError(f"--resize {resize!r} is unknown; use one of {', '.join(RESIZE_MODES)}")


def resolve_image_size(value: int | str | Sequence[int], resize: str, reference: Path | None) -> ImageSize:
    """The (height, width) images are resized to: `value` itself with `stretch`; with `keep-aspect`, `value`
    (an int) is the shorter side and `reference` (the first train image) gives the aspect ratio."""
    check_resize(resize)
    size = parse_image_size(value)
    if resize == "stretch":
        return size
    if size[0] != size[1]:
        raise AutopatchError(
            f"--resize keep-aspect takes the shorter side as one number (e.g. --image-size {min(size)}), "
            f"not {size_label(size)}; or drop --resize for exactly {size_label(size)}"
        )
    if size[0] % GRID:
        raise AutopatchError(
            f"--resize keep-aspect needs the shorter side a multiple of {GRID} (got {size[0]}), "
            f"e.g. --image-size {_round_to_grid(size[0])}"
        )
    if reference is None:
        raise AutopatchError("--resize keep-aspect needs a train image to read the aspect ratio from")
    try:
        with Image.open(reference) as im:
            width, height = im.size
    except (OSError, SyntaxError, ValueError) as error:
        raise AutopatchError(f"cannot read image {reference} ({error}): replace the file or delete it") from None
    return keep_aspect_size(size[0], height, width)


def keep_aspect_size(shorter: int, height: int, width: int) -> ImageSize:
    """`shorter` for the image's shorter side, the longer side scaled with it and rounded to a multiple of GRID."""
    if height == width:
        return shorter, shorter
    longer = max(_round_to_grid(shorter * max(height, width) / min(height, width)), shorter)
    return (shorter, longer) if height < width else (longer, shorter)


def _round_to_grid(length: float) -> int:
    return max(GRID, int(length / GRID + 0.5) * GRID)  # halves round up
