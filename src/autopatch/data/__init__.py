"""MVTec-layout categories: file discovery and checks, the paper's Table-2 splits, image/mask decoding."""

from autopatch.data.decode import ReadableImages, load_images, load_readable_images
from autopatch.data.layout import IMAGE_EXTENSIONS, NORMAL_TYPE, list_images
from autopatch.data.splits import Split, Splits, data_fingerprint, load_splits

__all__ = [
    "IMAGE_EXTENSIONS",
    "NORMAL_TYPE",
    "ReadableImages",
    "Split",
    "Splits",
    "data_fingerprint",
    "list_images",
    "load_images",
    "load_readable_images",
    "load_splits",
]
