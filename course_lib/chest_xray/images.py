"""Read a chest radiograph from DICOM, PNG (8 or 16 bit) or JPEG into one convention.

Every reader in chapter 1 returns the same thing: a ``float32`` image in ``[0, 1]`` where **bright means
dense** (bone, heart, fluid) and dark means air, resized to ``size x size``. Getting there from a DICOM file
takes the three steps of the DICOM grayscale pipeline (PS3.3 C.11, PS3.4 N.2):

1. **Modality LUT** (``RescaleSlope``/``RescaleIntercept`` or a ``ModalityLUTSequence``): stored values to
   meaningful units.
2. **VOI LUT** (``WindowCenter``/``WindowWidth``, or a ``VOILUTSequence`` table): which range of those
   units is shown from black to white. The DICOM ``LINEAR`` window with centre ``c`` and width ``w`` is

   .. math:: y = \\mathrm{clip}\\left(\\frac{x - (c - 0.5)}{w - 1} + 0.5,\\ 0,\\ 1\\right)

   Without a window the whole stored range ``[0, 2**BitsStored - 1]`` (after the modality LUT) is used.
3. **Presentation**: ``MONOCHROME1`` files store *inverted* values (bright = more X-rays reached the
   detector = air), so they are flipped, ``y -> 1 - y``, to match ``MONOCHROME2`` and every PNG/JPEG dataset.

PNG and JPEG files (NIH, PadChest, CheXpert, MIMIC-CXR-JPG) are already windowed and ``MONOCHROME2``:
8-bit values are divided by 255 and 16-bit values (PadChest) by 65535. A 16-bit file that only uses 12 of its
bits then looks dark; ``window="minmax"`` stretches each image to its own range instead. Colour files are
converted to grey with the ITU-R BT.601 luma weights ``0.299 R + 0.587 G + 0.114 B`` (Pillow's ``"L"``
conversion, in float).

Resizing (``fit``): ``"stretch"`` (the default) resizes the whole image to ``size x size``, keeping all the
content but not the aspect ratio, as CheXNet did; ``"crop"`` cuts the central square first (the content at
the ends of the long side is lost, as in torchxrayvision's ``XRayCenterCrop``); ``"pad"`` pads the short side
with zeros (air) to a square first, keeping content and aspect ratio. The resampling is Pillow's bilinear
filter widened by the scale factor, i.e. anti-aliased (like ``torchvision`` with ``antialias=True``): fine
detail is averaged away instead of aliasing into moire.

References
----------
DICOM PS3.3 C.11.1-C.11.2 (Modality and VOI LUT), C.7.6.3.1.2 (Photometric Interpretation).
pydicom ``pydicom.pixels.apply_modality_lut`` / ``apply_voi_lut`` (used as the oracle in the tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["SUPPORTED_SUFFIXES", "FITS", "load_radiograph", "read_dicom", "read_bitmap", "apply_window", "resize"]

SUPPORTED_SUFFIXES = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")
FITS = ("stretch", "crop", "pad")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's RGB -> "L"


def _check_window(window):
    if isinstance(window, str):
        if window not in ("auto", "range", "minmax"):
            raise ValueError(f"`window` must be 'auto', 'range', 'minmax' or (center, width), got {window!r}")
        return window
    if not (isinstance(window, tuple | list) and len(window) == 2):
        raise TypeError(f"`window` must be 'auto', 'range', 'minmax' or a (center, width) pair, got {window!r}")
    center, width = float(window[0]), float(window[1])
    if not width >= 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    return center, width


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Map ``values`` through a DICOM VOI window to ``[0, 1]`` (0 = black).

    Parameters
    ----------
    values : ndarray
        Pixel values after the modality LUT.
    center, width : float
        ``WindowCenter`` and ``WindowWidth``.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        ``VOILUTFunction`` (DICOM PS3.3 C.11.2.1.2-3).

    Returns
    -------
    float32 ndarray, same shape as ``values``

    Examples
    --------
    >>> apply_window(np.array([0, 100, 200, 300]), center=150.5, width=201).tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    x = np.asarray(values, dtype=np.float64)
    function = (function or "LINEAR").upper()
    if function == "LINEAR":
        if width < 1:
            raise ValueError(f"LINEAR window width must be >= 1, got {width}")
        y = (x - (center - 0.5)) / (width - 1) + 0.5 if width > 1 else (x > center - 0.5).astype(np.float64)
    elif function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError(f"LINEAR_EXACT window width must be > 0, got {width}")
        y = (x - center) / width + 0.5
    elif function == "SIGMOID":
        if width <= 0:
            raise ValueError(f"SIGMOID window width must be > 0, got {width}")
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    else:
        raise ValueError(f"unsupported VOILUTFunction {function!r}: expected LINEAR, LINEAR_EXACT or SIGMOID")
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def _minmax(x: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:  # a constant image: nothing to stretch
        return np.zeros(x.shape, np.float32)
    return np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _stored_range(ds) -> tuple[float, float]:
    """Values the stored bits can take, carried through the modality LUT (as pydicom's windowing does)."""
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    low, high = (0.0, 2.0**bits - 1) if int(ds.get("PixelRepresentation", 0)) == 0 else (-(2.0 ** (bits - 1)),
                                                                                        2.0 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def read_dicom(path, window="auto") -> np.ndarray:
    """Read a single-frame grayscale DICOM radiograph to ``float32`` in ``[0, 1]``, bright = dense, native size.

    Parameters
    ----------
    path : path
    window : "auto", "range", "minmax" or (center, width)
        ``"auto"``: the file's ``VOILUTSequence`` if present, else its first ``WindowCenter``/``WindowWidth``,
        else the stored bit range. ``"range"``: always the stored bit range ``[0, 2**BitsStored - 1]``
        through the modality LUT. ``"minmax"``: this image's own minimum and maximum. A ``(center, width)``
        pair: that ``LINEAR`` window, in units after the modality LUT.

    Returns
    -------
    (H, W) float32 ndarray

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; not DICOM, corrupt, multi-frame, colour or compressed without a decoder (names the file).
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi

    window = _check_window(window)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"radiograph {path} not found")
    try:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
    except Exception as error:  # pydicom raises many types for truncated or foreign files
        raise ValueError(f"{path}: corrupt or undecodable DICOM ({type(error).__name__}: {error})") from error
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"{path}: PhotometricInterpretation {photometric!r} is not a grayscale radiograph")
    if stored.ndim != 2:
        raise ValueError(f"{path}: expected one 2-D frame, got pixel data of shape {stored.shape}")
    values = apply_modality_lut(stored, ds)
    if window == "auto" and ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        image = _minmax(apply_voi(values, ds), 0.0, 2.0**bits - 1)
    elif window == "auto" and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = ds.WindowCenter, ds.WindowWidth
        center = float(center[0] if ds["WindowCenter"].VM > 1 else center)  # several windows: the first is
        width = float(width[0] if ds["WindowWidth"].VM > 1 else width)  # the one the modality proposes
        image = apply_window(values, center, width, str(ds.get("VOILUTFunction", "LINEAR")))
    elif window in ("auto", "range"):
        image = _minmax(values, *_stored_range(ds))
    elif window == "minmax":
        image = _minmax(values, float(values.min()), float(values.max()))
    else:
        image = apply_window(values, *window)
    if photometric == "MONOCHROME1":
        image = 1.0 - image  # stored bright = air: flip so that bright = dense, like MONOCHROME2 and PNG
    return image.astype(np.float32)


def read_bitmap(path, window="auto") -> np.ndarray:
    """Read a PNG (8 or 16 bit, grey or colour) or JPEG to ``float32`` in ``[0, 1]``, native size.

    Parameters
    ----------
    path : path
    window : "auto", "range", "minmax" or (center, width)
        ``"auto"``/``"range"``: divide by the format's range (255, or 65535 for 16-bit PNG).
        ``"minmax"``: this image's minimum and maximum. ``(center, width)``: a ``LINEAR`` window in pixel units.

    Returns
    -------
    (H, W) float32 ndarray

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or a file that cannot be decoded (truncated, corrupt); names the file.
    """
    window = _check_window(window)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"radiograph {path} not found")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):  # Pillow's modes for 16-bit grey PNG
                values, top = np.asarray(image, dtype=np.float64), 65535.0
            elif mode in ("L", "1"):
                values, top = np.asarray(image.convert("L"), dtype=np.float64), 255.0
            elif mode == "LA":
                values, top = np.asarray(image.getchannel("L"), dtype=np.float64), 255.0
            else:  # RGB, RGBA, P, CMYK, YCbCr: through RGB to luma
                rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
                values, top = (rgb @ LUMA).astype(np.float64), 255.0  # (H, W, 3) -> (H, W)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: corrupt or undecodable image ({type(error).__name__}: {error})") from error
    if window in ("auto", "range"):
        return _minmax(values, 0.0, top)
    if window == "minmax":
        return _minmax(values, float(values.min()), float(values.max()))
    return apply_window(values, *window)


def _check_size(size):
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise TypeError(f"`size` must be an int or None, got {type(size).__name__}")
    if size < 1:
        raise ValueError(f"`size` must be >= 1, got {size}")
    return int(size)


def resize(image: np.ndarray, size: int, fit: str = "stretch") -> np.ndarray:
    """Resize a 2-D image to ``(size, size)`` with anti-aliasing.

    Parameters
    ----------
    image : (H, W) ndarray
    size : int
    fit : {"stretch", "crop", "pad"}
        Whole image to the square (aspect ratio not kept); central square first; or zero-pad to a square
        first (see the module docstring).

    Returns
    -------
    (size, size) float32 ndarray

    Examples
    --------
    >>> resize(np.ones((4, 8)), 2, fit="crop").tolist()  # the central (4, 4) square, shrunk
    [[1.0, 1.0], [1.0, 1.0]]
    >>> resize(np.ones((4, 8)), 8, fit="pad")[:, 0].tolist()  # zero rows above and below, no resampling
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    size = _check_size(size)
    if size is None:
        raise TypeError("`size` must be an int")
    if fit not in FITS:
        raise ValueError(f"`fit` must be one of {FITS}, got {fit!r}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"`image` must be 2-D (H, W), got shape {image.shape}")
    h, w = image.shape
    if fit == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]  # (H, W) -> (side, side)
    elif fit == "pad" and h != w:
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        image = np.pad(image, ((top, side - h - top), (left, side - w - left)))  # (H, W) -> (side, side)
    if image.shape == (size, size):
        return np.ascontiguousarray(image)
    # Pillow's bilinear filter widens with the scale factor when shrinking: an anti-aliased resize in float32
    out = Image.fromarray(np.ascontiguousarray(image), mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.array(out, dtype=np.float32)  # a writable copy (torch.from_numpy warns on read-only arrays)


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(132)
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    suffix = path.suffix.lower()
    if suffix in (".dcm", ".dicom"):
        return "dicom"  # DICOM without the 128-byte preamble: let pydicom judge
    if suffix in SUPPORTED_SUFFIXES:
        raise ValueError(f"{path}: corrupt file, its content is not {suffix[1:].upper()} (wrong or truncated header)")
    raise ValueError(f"{path}: unsupported format {suffix or '(no suffix)'!r}; supported: DICOM, PNG, JPEG "
                     f"({', '.join(SUPPORTED_SUFFIXES)})")


def load_radiograph(path, size: int | None = 224, *, fit: str = "stretch", window="auto") -> np.ndarray:
    """Load a chest radiograph as ``float32`` in ``[0, 1]``, bright = dense, resized to ``(size, size)``.

    Parameters
    ----------
    path : path
        DICOM (``.dcm``, or any file with the ``DICM`` marker), PNG (8/16-bit, grey or colour) or JPEG.
        The format is read from the file's first bytes, not trusted from its suffix.
    size : int or None
        Side of the square output; ``None`` keeps the native size.
    fit : {"stretch", "crop", "pad"}
        How a non-square image becomes square (module docstring).
    window : "auto", "range", "minmax" or (center, width)
        Intensity window (see :func:`read_dicom` and :func:`read_bitmap`).

    Returns
    -------
    (size, size) or (H, W) float32 ndarray

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Unsupported format, or a corrupt/undecodable file (the message names the file).

    Examples
    --------
    >>> from course_lib.data.sample_images import chest_radiograph_dicom
    >>> image = load_radiograph(chest_radiograph_dicom(), size=64)  # MONOCHROME1, inverted on reading
    >>> image.shape, image.dtype, bool(image[32, 28:36].mean() > image[32, 12:18].mean())  # spine > lung
    ((64, 64), dtype('float32'), True)
    """
    size = _check_size(size)
    if fit not in FITS:
        raise ValueError(f"`fit` must be one of {FITS}, got {fit!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"radiograph {path} not found")
    kind = _sniff(path)
    image = read_dicom(path, window) if kind == "dicom" else read_bitmap(path, window)
    return image if size is None else resize(image, size, fit)
