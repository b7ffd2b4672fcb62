"""MVTec-layout categories and folder datasets: file discovery and checks, the paper's Table-2 splits,
image/mask decoding."""

from autopatch.data.decode import ReadableImages, load_images, load_readable_images
from autopatch.data.layout import IMAGE_EXTENSIONS, NORMAL_TYPE, FolderDataset, list_images
from autopatch.data.splits import Split, Splits, data_fingerprint, has_masks, load_splits
from autopatch.image_size import RESIZE_MODES, ImageSize, image_size_spec, parse_image_size, size_label

__all__ = [
    "FolderDataset",
    "IMAGE_EXTENSIONS",
    "ImageSize",
    "NORMAL_TYPE",
    "RESIZE_MODES",
    "ReadableImages",
    "Split",
    "Splits",
    "data_fingerprint",
    "has_masks",
    "image_size_spec",
    "list_images",
    "load_images",
    "load_readable_images",
    "load_splits",
    "parse_image_size",
    "size_label",
]
