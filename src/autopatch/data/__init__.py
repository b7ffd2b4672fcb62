"""MVTec-layout categories and folder datasets: file discovery and checks, the paper's Table-2 splits,
image/mask decoding."""

from autopatch.data.decode import ReadableImages, load_images, load_readable_images
from autopatch.data.layout import IMAGE_EXTENSIONS, NORMAL_TYPE, FolderDataset, list_images
from autopatch.data.splits import Split, Splits, data_fingerprint, has_masks, load_splits

__all__ = [
    "FolderDataset",
    "IMAGE_EXTENSIONS",
    "NORMAL_TYPE",
    "ReadableImages",
    "Split",
    "Splits",
    "data_fingerprint",
    "has_masks",
    "list_images",
    "load_images",
    "load_readable_images",
    "load_splits",
]
