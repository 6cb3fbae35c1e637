"""Real images that ship inside installed packages, for "this is a real image" moments and tests.

Files are located with ``importlib.util.find_spec`` so the package holding them is not imported
(nothing is downloaded, ever). Each function raises ``FileNotFoundError`` naming the package to
install when the file is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["package_file", "ihc", "chest_radiograph_dicom", "cxr_metadata_csv", "CXR_METADATA", "fluorescence_nuclei"]


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package.

    Raises
    ------
    FileNotFoundError
        If the package is not installed or does not contain the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; `pip install {package}` provides the file")
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    raise FileNotFoundError(f"{'/'.join(parts)!r} not found in package {package!r}")


def ihc() -> np.ndarray:
    """Immunohistochemistry (IHC) image shipped with scikit-image: hematoxylin nuclei, DAB-brown protein.

    Returns
    -------
    (512, 512, 3) uint8 ndarray
        RGB image.
    """
    from skimage.io import imread

    return imread(package_file("skimage", "data", "ihc.png"))


def chest_radiograph_dicom() -> Path:
    """Path of a real PA chest radiograph in DICOM, shipped with ``pydicom-data`` (``RG1_UNCI.dcm``).

    The file is uncompressed, 16-bit (15 bits stored), 1955 × 1841, ``MONOCHROME1`` (bright means *less* X-ray:
    it must be inverted before display) and carries a VOI window. Read it with
    :func:`course_lib.chest_xray.images.load_radiograph`.
    """
    return package_file("data_store", "data", "RG1_UNCI.dcm")


# The real label and view tables that ship inside ``torchxrayvision`` (file name per dataset).
CXR_METADATA = {
    "nih": "Data_Entry_2017_v2020.csv.gz",
    "padchest": "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz",
    "chexpert": "chexpert_train.csv.gz",
}


def cxr_metadata_csv(dataset: str) -> Path:
    """Path of the real label/view CSV of ``dataset`` (``"nih"``, ``"padchest"`` or ``"chexpert"``).

    The files ship with ``torchxrayvision`` (which is never imported): NIH ChestX-ray14's
    ``Data_Entry_2017_v2020.csv`` (112,120 images), PadChest's 160K label table, and CheXpert's
    ``train.csv`` (small version paths).
    """
    if dataset not in CXR_METADATA:
        raise ValueError(f"dataset must be one of {sorted(CXR_METADATA)}, got {dataset!r}")
    return package_file("torchxrayvision", "data", CXR_METADATA[dataset])


def fluorescence_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """Real fluorescence nuclei with instance labels, shipped with ``stardist`` (``img2d.tif``, ``mask2d.tif``).

    Returns
    -------
    image : (512, 512) uint16 ndarray
        Nuclear stain.
    labels : (512, 512) integer ndarray
        Instance labels, 0 is background; 125 nuclei.
    """
    import tifffile

    image = tifffile.imread(package_file("stardist", "data", "images", "img2d.tif"))
    labels = tifffile.imread(package_file("stardist", "data", "images", "mask2d.tif"))
    return image, labels
