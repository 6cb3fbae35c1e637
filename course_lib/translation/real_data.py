"""Real brain MRI: one slice in two contrasts from a Debian package, and the MSD / BraTS readers for full mode.

* :func:`itk_brain_slices` — ``BrainProtonDensitySlice.png`` and ``BrainT1Slice.png`` from the Debian package
  ``insighttoolkit5-examples`` (ITK's example data): one real axial slice, 181 x 217 px, registered, in proton
  density and T1 contrast. It shows in quick mode what the synthetic data imitates: the same anatomy, different
  tissue intensities. ``make`` installs it; elsewhere (Colab) the function says how to get it.
* :func:`read_msd_brain` — the Medical Segmentation Decathlon's Task01_BrainTumour (BraTS 2016/2017 cases):
  ``imagesTr/BRATS_NNN.nii.gz`` are 4-D (240, 240, 155, 4) volumes with channels FLAIR, T1w, T1gd, T2w (as named in
  ``dataset.json``), ``labelsTr/BRATS_NNN.nii.gz`` hold 0 background, 1 oedema, 2 non-enhancing and 3 enhancing
  tumour.
* :func:`read_brats` — BraTS challenge folders: one NIfTI per modality and the segmentation,
  ``<case>/<case>_flair.nii.gz``, ``_t1``, ``_t1ce``, ``_t2``, ``_seg`` (labels 0, 1, 2, 4).

Both readers cut axial slices with the rules of Cohen, Luck & Honari (MICCAI 2018), the study the chapter
reproduces: keep a slice when more than 30 % of its pixels are brain (non-zero in the skull-stripped FLAIR), and
call it a tumour slice when the tumour (any label > 0) covers more than 1 % of its brain pixels. Intensities are
scaled per volume to [0, 1] by the 99.5th percentile of the brain, and slices resized to ``size`` px.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from course_lib.translation.synthetic_brain import BrainSlices

__all__ = ["ITK_DATA", "itk_brain_slices", "volume_slices", "read_msd_brain", "read_brats", "MIN_BRAIN_SHARE",
           "TUMOUR_SHARE"]

ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
MIN_BRAIN_SHARE = 0.30  # keep a slice when more than 30 % of its pixels are brain
TUMOUR_SHARE = 0.01  # a tumour slice: tumour > 1 % of the brain pixels
MSD_CHANNELS = ("FLAIR", "T1w")  # the two of the four MSD channels the chapter translates between


def itk_brain_slices(folder: str | Path = ITK_DATA) -> tuple[np.ndarray, np.ndarray]:
    """One real brain slice in proton density and T1 contrast (ITK example data), as float32 in [0, 1].

    Returns
    -------
    proton_density, t1 : (217, 181) float32 ndarrays

    Raises
    ------
    FileNotFoundError
        When the Debian package ``insighttoolkit5-examples`` is not installed (e.g. on Colab), with the command
        that installs it.
    """
    from skimage.io import imread

    folder = Path(folder)
    paths = [folder / "BrainProtonDensitySlice.png", folder / "BrainT1Slice.png"]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not found in {folder}: these real slices ship with the Debian package "
            "insighttoolkit5-examples (`sudo apt-get install insighttoolkit5-examples`; on Colab: "
            "`!apt-get install -qq insighttoolkit5-examples`). The notebook continues with synthetic slices only.")
    images = [imread(p) for p in paths]
    images = [im[..., 0] if im.ndim == 3 else im for im in images]  # one file is stored as grey RGB
    pd, t1 = (im.astype(np.float32) / 255.0 for im in images)
    return pd, t1


def _load(path: Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.load(str(path)).dataobj)


def _scale(volume: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Divide by the brain's 99.5th percentile and clip to [0, 1]."""
    top = np.percentile(volume[brain], 99.5) if brain.any() else 1.0
    return np.clip(volume / max(float(top), 1e-6), 0, 1).astype(np.float32)


def volume_slices(flair: np.ndarray, t1: np.ndarray, seg: np.ndarray, *, size: int = 64,
                  min_brain_share: float = MIN_BRAIN_SHARE, tumour_share: float = TUMOUR_SHARE) -> BrainSlices:
    """Axial slices of one registered volume that pass the brain rule, labelled by the tumour rule.

    Parameters
    ----------
    flair, t1 : (X, Y, Z) arrays
        Skull-stripped volumes (zero outside the brain), registered to each other.
    seg : (X, Y, Z) int array
        Tumour labels, 0 = none.
    size : int
        Side of the output slices in px.
    min_brain_share, tumour_share : float
        The slice rules (see the module docstring).

    Returns
    -------
    BrainSlices
        ``subject`` is all zeros (set it per case).

    Raises
    ------
    ValueError
        If the three volumes differ in shape or are not 3-D.
    """
    from skimage.transform import resize

    flair, t1, seg = np.asarray(flair), np.asarray(t1), np.asarray(seg)
    if flair.ndim != 3 or flair.shape != t1.shape or flair.shape != seg.shape:
        raise ValueError(f"`flair` (shape {flair.shape}), `t1` (shape {t1.shape}) and `seg` (shape {seg.shape}) "
                         "must be 3-D volumes of the same shape")
    brain = flair > 0  # (X, Y, Z)
    flair, t1 = _scale(flair, brain), _scale(t1, brain)
    tumour_volume = seg > 0
    brain_pixels = brain.sum(axis=(0, 1))  # (Z,)
    keep = brain_pixels > min_brain_share * brain.shape[0] * brain.shape[1]
    z = np.flatnonzero(keep)
    tumour = (tumour_volume & brain).sum(axis=(0, 1))[z] > tumour_share * brain_pixels[z]

    def cut(volume: np.ndarray, order: int) -> np.ndarray:
        # (X, Y, Z) -> (n, size, size); NIfTI's first axis is x (left-right): transpose to image rows = y
        out = [resize(volume[:, :, k].T, (size, size), order=order, anti_aliasing=order > 0, preserve_range=True)
               for k in z]
        return np.stack(out) if out else np.zeros((0, size, size))

    return BrainSlices(cut(flair, 1).astype(np.float32), cut(t1, 1).astype(np.float32),
                       cut(tumour_volume.astype(np.float32), 1) > 0.5, tumour, np.zeros(len(z), int))


def _concatenate(parts: list[BrainSlices], size: int) -> BrainSlices:
    if not parts:
        empty = np.zeros((0, size, size), np.float32)
        return BrainSlices(empty, empty, empty.astype(bool), np.zeros(0, bool), np.zeros(0, int))
    return BrainSlices(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("flair", "t1", "mask", "tumour", "subject")))


def read_msd_brain(root: str | Path, *, size: int = 64, max_cases: int | None = None,
                   progress: bool = False) -> BrainSlices:
    """Slices of the MSD Task01_BrainTumour training cases (FLAIR and T1w channels).

    Parameters
    ----------
    root : path
        The ``Task01_BrainTumour`` folder (with ``dataset.json``, ``imagesTr/``, ``labelsTr/``).
    size : int
    max_cases : int, optional
        Read only the first cases (in ``dataset.json`` order).

    Returns
    -------
    BrainSlices
        ``subject`` numbers the cases in reading order.

    Raises
    ------
    FileNotFoundError
        No ``dataset.json``, or a file it names is missing (the message names it).
    ValueError
        An image that is not 4-D with the FLAIR and T1w channels ``dataset.json`` declares.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    index = root / "dataset.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: run `python -m data_scripts.msd_brain` to prepare Task01")
    meta = json.loads(index.read_text())
    names = {str(v).lower(): int(k) for k, v in meta.get("modality", {}).items()}
    try:
        channels = [names[c.lower()] for c in MSD_CHANNELS]
    except KeyError as error:
        raise ValueError(f"{index}: `modality` must name {MSD_CHANNELS}, got {meta.get('modality')}") from error
    cases = meta["training"][:max_cases]
    parts = []
    for number, case in enumerate(tqdm(cases, desc="MSD Task01", disable=not progress)):
        image_path, label_path = root / case["image"], root / case["label"]
        for path in (image_path, label_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} (listed in {index}) not found: incomplete extraction?")
        image = _load(image_path)
        if image.ndim != 4 or image.shape[-1] <= max(channels):
            raise ValueError(f"{image_path}: expected a 4-D (X, Y, Z, {len(names)}) image, got shape {image.shape}")
        part = volume_slices(image[..., channels[0]], image[..., channels[1]], _load(label_path), size=size)
        parts.append(BrainSlices(part.flair, part.t1, part.mask, part.tumour, np.full(len(part), number)))
    return _concatenate(parts, size)


def _brats_file(case: Path, suffix: str) -> Path:
    for extension in (".nii.gz", ".nii"):
        path = case / f"{case.name}_{suffix}{extension}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{case / (case.name + '_' + suffix + '.nii.gz')} not found (BraTS layout: one file "
                            "per modality and a _seg file in each case folder)")


def read_brats(root: str | Path, *, size: int = 64, cases: Iterable[str] | None = None, progress: bool = False
               ) -> BrainSlices:
    """Slices of BraTS case folders (``<case>/<case>_flair.nii.gz``, ``_t1``, ``_seg``; ``.nii`` also read).

    Parameters
    ----------
    root : path
        Folder holding one sub-folder per case (``BraTS20_Training_001/`` ...).
    size : int
    cases : iterable of str, optional
        Case folder names to read (default: every folder that holds a ``_seg`` file, sorted).

    Raises
    ------
    FileNotFoundError
        No case folder, or a case lacks a modality (the message names the file).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if cases is None:
        cases = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*_seg.nii*"))) \
            if root.is_dir() else []
    cases = list(cases)
    if not cases:
        raise FileNotFoundError(f"no BraTS case folders with a _seg file in {root}: see `python -m data_scripts.brats`")
    parts = []
    for number, name in enumerate(tqdm(cases, desc="BraTS", disable=not progress)):
        case = root / name
        flair, t1, seg = (_load(_brats_file(case, s)) for s in ("flair", "t1", "seg"))
        part = volume_slices(flair, t1, seg, size=size)
        parts.append(BrainSlices(part.flair, part.t1, part.mask, part.tumour, np.full(len(part), number)))
    return _concatenate(parts, size)
