"""DICOM slices to model input: Hounsfield units, a lung window, then the images' common path.

A DICOM file is recognised by its content (the ``DICM`` marker after the 128-byte preamble),
whatever its name. CT pixel values become Hounsfield units through RescaleSlope/RescaleIntercept
(pydicom's modality LUT), a window (default the lung window, width 1500, level -600) maps them onto
0..255, MONOCHROME1 (white = low) is inverted, and every frame of a multi-frame file becomes one
image (in ``predict``; a training tree takes single-frame files, :func:`decode_slice`). With
``crop="body"`` the body is found on the Hounsfield units themselves (voxels above
``BODY_HU``, before windowing: a window can hide the body's edge), then the same mode conversion,
crop and resize as every training image (``prepare_pil``). Training trees may hold DICOM files among
or instead of PNG/JPEG ones: :func:`decode_slice` decodes either by content, and :func:`scan_ids` gives
the PatientID and StudyInstanceUID the splits keep together (``data.split``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ctdistill.core.errors import DataError
from ctdistill.data.crop import CROPS, Crop, body_crop_from_mask
from ctdistill.data.decode import check_pixels, decode_image_crop, prepare_pil

LUNG_WINDOW = (-600.0, 1500.0)  # (level, width) in Hounsfield units
BODY_HU = -500.0  # tissue is above, air (-1000) and lung (about -850) mostly below


def is_dicom(data: bytes) -> bool:
    """True for a DICOM Part 10 file (``DICM`` at byte 128)."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def window_to_uint8(values: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map ``level - width/2 .. level + width/2`` onto 0..255 (clipped), as a radiology viewer does.

    Example:
        >>> window_to_uint8(np.array([-1350.0, -600.0, 150.0]), -600, 1500).tolist()
        [0, 128, 255]
    """
    low = level - width / 2.0
    scaled = (values.astype(np.float64) - low) / width
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def decode_dicom(data: bytes, size: int, channels: int, name: str = "<dicom>",
                 window: tuple[float, float] = LUNG_WINDOW, crop: str = "none") -> list[np.ndarray]:
    """Decode a DICOM file into one ``(size, size, channels)`` uint8 array per frame.

    Args:
        data: the file's bytes.
        size, channels: the model's input.
        name: the file name used in error messages.
        window: ``(level, width)`` in Hounsfield units for grey-scale images.
        crop: a key of ``data.crop.CROPS``; ``body`` finds the body on the Hounsfield units.

    Raises:
        DataError: unreadable file, no pixel data, or a compressed transfer syntax whose pixel-data
            handler is not installed (the message names it).
    """
    return [array for array, _ in decode_dicom_crops(data, size, channels, name, window, crop)]


def decode_dicom_crops(data: bytes, size: int, channels: int, name: str = "<dicom>",
                       window: tuple[float, float] = LUNG_WINDOW, crop: str = "none"
                       ) -> list[tuple[np.ndarray, Crop | None]]:
    """:func:`decode_dicom`, each frame with where it cropped (None with ``crop="none"``), as
    ``decode_image_crop`` is to ``decode_image``."""
    return [prepare_pil(img, size, channels, crop, box)
            for img, box in dicom_slices(read_dicom(data, name), name, window, crop)]


def read_dicom(data: bytes, name: str = "<dicom>"):
    """The parsed ``pydicom.Dataset`` (pixel data not yet decoded); a one-line ``DataError`` otherwise."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # pydicom raises many types for a broken file
        raise DataError(f"{name}: not a readable DICOM file ({exc})") from None
    if "PixelData" not in ds:
        raise DataError(f"{name}: DICOM file has no pixel data")
    return ds


def dicom_slices(ds, name: str, window: tuple[float, float] = LUNG_WINDOW, crop: str = "none"
                 ) -> list[tuple[Image.Image, Crop | None]]:
    """Every frame as a displayable image (grey frames windowed, MONOCHROME1 inverted) and, with a crop,
    the body's box found on its Hounsfield units."""
    from pydicom.pixels import apply_modality_lut

    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing handler (e.g. pylibjpeg for JPEG 2000) or broken pixel data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        label = getattr(syntax, "name", syntax)
        reason = " ".join(str(exc).split())  # pydicom lists plugins on several lines: keep the error one line
        raise DataError(f"{name}: cannot decode DICOM pixel data (transfer syntax {label}): {reason}") from None
    frames = pixels if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else pixels[None]
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    out = []
    for frame in frames:
        box = None
        if photometric.startswith("MONOCHROME"):
            hu = apply_modality_lut(frame, ds)
            grey = window_to_uint8(hu, *window)
            if photometric == "MONOCHROME1":  # low values are shown white
                grey = 255 - grey
            img = Image.fromarray(grey, mode="L")
            if CROPS[crop] is not None:
                box = body_crop_from_mask(np.asarray(hu) > BODY_HU)
        else:  # colour (RGB, YBR converted by pydicom): no Hounsfield units; cropped like any image
            img = Image.fromarray(np.asarray(frame, dtype=np.uint8))
        out.append((img, box))
    return out


def one_slice(data: bytes, name: str, window: tuple[float, float] = LUNG_WINDOW, crop: str = "none"):
    """``(dataset, image, box)`` of a single-frame DICOM file: a training tree takes one slice per file
    (a multi-frame file is refused by name: its frames would share one path, one id and one group)."""
    ds = read_dicom(data, name)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DataError(f"{name}: multi-frame DICOM ({frames} frames); a training tree takes one slice per file "
                        "(predict reads every frame)")
    (img, box), = dicom_slices(ds, name, window, crop)
    return ds, img, box


def scan_ids(ds) -> dict[str, str]:
    """The patient and study a slice belongs to (empty strings when absent): splits keep them together."""
    return {"patient": str(getattr(ds, "PatientID", "") or ""),
            "study": str(getattr(ds, "StudyInstanceUID", "") or "")}


# Header attributes that can differ by class without being the finding (contrast, scanner,
# reconstruction, geometry, site): features of the audit's shortcut baseline (``data.shortcuts``).
# "text" tags count as present when the attribute exists, even empty (an empty ContrastBolusAgent
# still says someone filled in the contrast fields); "number" tags are read as their first value.
HEADER_TAGS = {"ContrastBolusAgent": "text", "Manufacturer": "text", "ManufacturerModelName": "text",
               "ConvolutionKernel": "text", "InstitutionName": "text", "SliceThickness": "number",
               "PixelSpacing": "number", "KVP": "number"}
TAG_PREFIX = "tag_"  # audit columns of HEADER_TAGS: tag_<keyword>


def header_tags(ds) -> dict:
    """The :data:`HEADER_TAGS` of a parsed slice as audit columns: text as a string (None when the
    attribute is absent), numbers as floats (NaN when absent or unreadable).

    Example:
        >>> import pydicom
        >>> ds = pydicom.Dataset(); ds.ContrastBolusAgent = "ISOVUE"; ds.SliceThickness = "8"
        >>> tags = header_tags(ds); tags["tag_ContrastBolusAgent"], tags["tag_SliceThickness"], tags["tag_KVP"]
        ('ISOVUE', 8.0, nan)
    """
    from pydicom.multival import MultiValue

    out = {}
    for keyword, kind in HEADER_TAGS.items():
        present = keyword in ds
        value = ds.get(keyword) if present else None
        if isinstance(value, MultiValue):  # PixelSpacing (row, column), ConvolutionKernel on some scanners
            value = value[0] if len(value) else None
        if kind == "text":
            out[TAG_PREFIX + keyword] = str("" if value is None else value).strip() if present else None
        else:
            try:
                out[TAG_PREFIX + keyword] = float(value)
            except (TypeError, ValueError):
                out[TAG_PREFIX + keyword] = float("nan")
    return out


def decode_slice(data: bytes, size: int, channels: int, name: str, crop: str = "none"
                 ) -> tuple[np.ndarray, Crop | None]:
    """One training image from a file of either kind, told apart by content: a single-frame DICOM slice
    (lung window, as ``predict`` reads it) or any image format (``decode_image_crop``)."""
    if not is_dicom(data):
        return decode_image_crop(data, size, channels, name, crop)
    _, img, box = one_slice(data, name, crop=crop)
    return prepare_pil(img, size, channels, crop, box)


def read_header(path: str | Path, decode: bool = False) -> dict:
    """Format, colour mode and size of one file of either kind, from its header.

    Args:
        path: an image or DICOM file.
        decode: also decode the pixels (not resized), with the same refusals as decoding for training,
            so ``data inspect`` reports a file unreadable exactly when ``prepare``, ``run`` and ``audit``
            skip it: a file whose header is intact but whose pixel data is truncated (issue #31).

    Returns:
        ``{"format", "mode", "width", "height"}``; a one-line ``DataError`` naming the file otherwise.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(132)
    if not head:
        raise DataError(f"{path}: empty file (0 bytes)")
    if is_dicom(head):
        ds = one_slice(path.read_bytes(), str(path))[0] if decode else read_dicom(path.read_bytes(), str(path))
        return {"format": "DICOM", "mode": str(getattr(ds, "PhotometricInterpretation", "")),
                "width": int(ds.Columns), "height": int(ds.Rows)}
    try:
        with Image.open(path) as img:
            check_pixels(img, str(path))  # the size from the header, before any pixel is decoded
            if decode:
                img.load()
            return {"format": img.format, "mode": img.mode, "width": img.width, "height": img.height}
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from None
