"""One file as a model's input: decoded, windowed and cropped exactly as the training images were.

``predict`` reads new files with it, and the report's saliency reads the test files with it, so a
file is the same array wherever it is read (tested array for array against the training loader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctdistill.core.errors import DataError
from ctdistill.data.decode import decode_image_crop
from ctdistill.data.dicom import decode_dicom_crops, is_dicom, read_header


def read_input(path: Path, size: int, channels: int, window: tuple[float, float], crop: str = "none"
               ) -> tuple[list[np.ndarray], list[str]]:
    """One array per image (a multi-frame DICOM file gives one per frame), cropped as in training,
    and for each the crop's fallback (``data.crop``: ``""`` when the body was found or no crop was
    asked, else why the whole image was kept)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if is_dicom(data):
        found = decode_dicom_crops(data, size, channels, str(path), window, crop)
    else:
        found = [decode_image_crop(data, size, channels, str(path), crop)]
    return [a for a, _ in found], [box.fallback if box is not None else "" for _, box in found]


def source_size(path: Path) -> tuple[int, int]:
    """The stored image's (width, height) from its header (a DICOM file's columns and rows), or (0, 0)
    when the header says nothing readable (the file was decoded already, so this is only for warnings)."""
    try:
        header = read_header(path)
    except (DataError, OSError):
        return 0, 0
    return header["width"], header["height"]
