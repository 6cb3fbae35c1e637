"""Real images that ship inside installed packages, for "this is a real image" moments and tests.

Files are located with ``importlib.util.find_spec`` so the package holding them is not imported
(nothing is downloaded, ever). Each function raises ``FileNotFoundError`` naming the package to
install when the file is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["package_file", "ihc"]


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
