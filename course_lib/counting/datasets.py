"""The standard cell-counting data sets: readers that turn each on-disk format into records.

Chapter 3 trains a net to output a density map whose sum is the count (:mod:`course_lib.counting.density`). The
four standard sets store the answer in different ways; each ``read_<name>(root)`` turns one of them into a list of
:class:`CountRecord` (image path, count, dots when the set has them, metadata), and
:meth:`course_lib.counting.training_data.DensityDataset.from_records` turns records into ``(image, target)``
tensors. On disk, as ``data_scripts/<name>.py`` prepare them under ``COURSE_DATA``::

    vgg_cells/NNNcell.png + NNNdots.png                  200 pairs, 256 x 256 RGB
    bbbc005/images/SIMCEPImages_<well>_C<count>_F<focus>_s<site>_w<stain>.TIF      19,200 8-bit, 696 x 520
    bbbc005/ground_truth/<same names>.TIF                foreground masks of the in-focus (F1) images
    bone_marrow/BM_GRAZ_HE_<pppp>_<ss>_<kkk>.png + BM_GRAZ_HE_<pppp>_<ss>_dots_<kkk>.png     44 pairs, 600 x 600
    adipocyte/images/<name>.jpeg + adipocyte/annotations/<name>.jpeg                  200 pairs, 150 x 150

* **VGG cells** (Lempitsky & Zisserman 2010): synthetic fluorescence cells made with SIMCEP, drawn in the *blue*
  channel (Lempitsky's demo reads ``im(:,:,3)``). ``NNNdots.png`` marks every cell centre with one red pixel on
  black; the reference loaders (Lempitsky's demo, ieee8023/countception, WeidiXie/cell_counting_v2) read its
  channel 0. Protocol: :func:`vgg_cells_split`.
* **BBBC005** (Broad Bioimage Benchmark Collection, SIMCEP too): the count is *in the file name* (``C``), with the
  focus blur level ``F`` (1 = in focus ... 48), the site ``s`` and the stain ``w`` (1 = cell body, 2 = nuclei, as the
  collection's page states). No dots: the ground truth is foreground/background masks of the ``F1`` images, where
  touching cells merge into one blob, so dots from them would undercount. Train by **count regression**
  (``DensityDataset.from_records(records, target="count")``: L1 between the sum of the predicted density and
  ``C``), evaluate the mean absolute count error; the masks serve the classic threshold-and-count pipeline.
* **Bone marrow** (MBM, modified bone marrow; Cohen et al. 2017, from the 11 H&E images of Kainz et al. 2015): 44
  crops of 600 x 600, four per source image (``_000`` to ``_003``); the dots image is one bright pixel per cell on
  black. Keep the four crops of a source image in the same split.
* **Adipocytes** (Cohen et al. 2017, GTEx subcutaneous fat): 200 regions of 1700 x 1700 px downsampled to 150 x 150.
  The annotations are JPEG, so a dot is a blurred blob, not one pixel: :func:`dots_from_annotation_image` with
  ``connected=True`` takes one dot per bright blob. The file name holds the tile offset and the GTEx donor id.

Not checked against the real files (no copy was at hand): how the adipocyte dots look (bright or red blobs both
work, channel 0 is read) and the per-set cell counts; ``data_scripts`` print them after preparing a set.

References
----------
Lempitsky & Zisserman (2010). Learning to count objects in images. NeurIPS.
Xie, Noble & Zisserman (2018). Microscopy cell counting and detection with fully convolutional regression networks.
CMBBE: Imaging & Visualization 6(3). Reference code WeidiXie/cell_counting_v2.
Cohen, Boucher, Glastonbury, Lo & Bengio (2017). Count-ception. ICCV workshops. Data ieee8023/countception.
Kainz, Urschler, Schulter, Wohlhart & Lepetit (2015). You should use regression to detect cells. MICCAI.
Ljosa, Sokolnicki & Carpenter (2012). Annotated high-throughput microscopy image sets for validation. Nature Methods.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

__all__ = ["CountRecord", "read_image", "dots_from_annotation_image", "dots_from_instance_labels",
           "parse_bbbc005_name", "read_vgg_cells", "read_bbbc005", "read_bone_marrow", "read_adipocyte",
           "vgg_cells_split"]

VGG_NAME = re.compile(r"(?P<number>\d{3})(?P<kind>cell|dots)\.png")
BBBC005_NAME = re.compile(r"SIMCEPImages_(?P<well>[A-P]\d{2})_C(?P<count>\d+)_F(?P<focus>\d+)_s(?P<site>\d+)"
                          r"_w(?P<stain>[12])\.tif", re.IGNORECASE)
MBM_NAME = re.compile(r"BM_GRAZ_HE_(?P<source>\d{4}_\d{2})_(?P<dots>dots_)?(?P<crop>\d{3})\.png")
ADIPOCYTE_NAME = re.compile(r"(?P<tile>\d+-\d+)_(?P<donor>GTEX-[0-9A-Z]+)_Adipose-Subcutaneous\.jpe?g")


@dataclass(frozen=True)
class CountRecord:
    dataset: str  # "vgg_cells", "bbbc005", "bone_marrow" or "adipocyte"
    name: str  # file stem that identifies the image, e.g. "001" or "SIMCEPImages_A05_C18_F1_s05_w2"
    image: Path
    count: int  # the number of annotated cells: len(dots), or BBBC005's C
    # (N, 2) float64 (row, col) cell centres; None when only the count is known. Left out of == and hash (an array)
    dots: np.ndarray | None = field(default=None, compare=False)
    annotation: Path | None = None  # the file the dots were read from
    meta: dict = field(default_factory=dict, compare=False)  # extras: well/focus/site/stain, source/crop, donor/tile


def read_image(path) -> np.ndarray:
    """Pixels of an image file: TIFF with tifffile, anything else with Pillow (palette images become RGB).

    Returns
    -------
    (H, W) or (H, W, C) ndarray, the file's dtype.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file does not decode (truncated or corrupt); names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return np.asarray(tifffile.imread(path))
        with Image.open(path) as image:
            if image.mode == "1":
                image = image.convert("L")
            elif image.mode in ("P", "PA"):  # palette PNG: look the colours up
                image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
            return np.asarray(image)  # decodes now: a truncated file raises here
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"{path} is corrupt or not an image ({error}); download or prepare it again") from error


def dots_from_annotation_image(annotation: np.ndarray, *, threshold: int = 128, connected: bool = False) -> np.ndarray:
    """Cell centres from a dot-annotation image: marked pixels on black, read in channel 0 (red).

    Parameters
    ----------
    annotation : (H, W) or (H, W, 2|3|4) uint8 ndarray
        Dots image (grey, grey + alpha, RGB or RGBA), read in channel 0 as the reference loaders do: red dots
        (255, 0, 0) and white dots both count.
    threshold : int
        A pixel is marked when channel 0 is ``>= threshold`` (1..255).
    connected : bool
        ``False`` (lossless PNG: VGG cells, bone marrow): every marked pixel is one dot, at that pixel.
        ``True`` (JPEG: adipocytes, where compression smears a dot over a few pixels and tints its neighbours):
        one dot per 8-connected blob of marked pixels, at its intensity-weighted centre. Two dots whose blobs
        touch become one.

    Returns
    -------
    dots : (N, 2) float64 ndarray
        ``(row, col)``, in row-major order of the pixels (``connected=False``) or of the blobs' labels.

    Examples
    --------
    >>> a = np.zeros((4, 5, 3), np.uint8); a[1, 3] = (255, 0, 0); a[2, 0] = (250, 8, 3)   # near-red counts
    >>> dots_from_annotation_image(a).tolist()
    [[1.0, 3.0], [2.0, 0.0]]
    """
    annotation = np.asarray(annotation)
    if annotation.dtype != np.uint8:
        raise TypeError(f"`annotation` must be uint8 (an 8-bit dots image), got dtype {annotation.dtype}")
    if annotation.ndim == 3 and annotation.shape[-1] in (2, 3, 4):
        annotation = annotation[..., 0]  # (H, W, C) -> (H, W): the red (or grey) channel
    if annotation.ndim != 2:
        raise ValueError(f"`annotation` must be (H, W) or (H, W, 2|3|4), got shape {annotation.shape}")
    if not 1 <= threshold <= 255:
        raise ValueError(f"`threshold` must be in 1..255, got {threshold!r}")
    marked = annotation >= threshold
    if not connected:
        return np.argwhere(marked).astype(np.float64)  # (N, 2) row-major
    labels, n = ndimage.label(marked, structure=np.ones((3, 3), bool))  # 8-connectivity
    if n == 0:
        return np.zeros((0, 2))
    centres = ndimage.center_of_mass(annotation.astype(np.float64), labels, np.arange(1, n + 1))
    return np.asarray(centres, np.float64).reshape(n, 2)


def dots_from_instance_labels(labels: np.ndarray) -> np.ndarray:
    """One dot per labelled object: its centroid, moved onto the object when the centroid falls outside it.

    The centroid of a bent (C- or kidney-shaped) object can lie outside it; a dot must sit on its own cell, so
    such a dot moves to the object's pixel nearest to the centroid.

    Parameters
    ----------
    labels : (H, W) integer ndarray
        Instance labels, 0 = background; ids need not be consecutive.

    Returns
    -------
    dots : (N, 2) float64 ndarray
        ``(row, col)`` of the N objects in increasing label order.

    Examples
    --------
    >>> lab = np.zeros((5, 6), int); lab[0:2, 0:2] = 1; lab[3:5, 2:6] = 7
    >>> dots_from_instance_labels(lab).tolist()
    [[0.5, 0.5], [3.5, 3.5]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be a (H, W) integer label map, got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"`labels` must be >= 0 (0 = background), got minimum {labels.min()}")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if len(ids) == 0:
        return np.zeros((0, 2))
    dots = np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, ids), np.float64).reshape(-1, 2)
    nearest = np.clip(np.floor(dots + 0.5), 0, np.array(labels.shape) - 1).astype(np.int64)
    for k in np.flatnonzero(labels[nearest[:, 0], nearest[:, 1]] != ids):  # centroid off its own object
        pixels = np.argwhere(labels == ids[k])  # (P, 2)
        dots[k] = pixels[np.argmin(((pixels - dots[k]) ** 2).sum(axis=1))]
    return dots


def parse_bbbc005_name(name: str) -> dict:
    """Metadata of a BBBC005 file name ``SIMCEPImages_<well>_C<count>_F<focus>_s<site>_w<stain>.TIF``.

    Raises
    ------
    ValueError
        If ``name`` does not match (the message names it).

    Examples
    --------
    >>> parse_bbbc005_name("SIMCEPImages_A05_C18_F1_s05_w1.TIF")
    {'well': 'A05', 'count': 18, 'focus': 1, 'site': 5, 'stain': 1}
    """
    match = BBBC005_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a BBBC005 image name SIMCEPImages_<well>_C<count>_F<focus>_s<site>"
                         "_w<1|2>.TIF")
    return {"well": match["well"], **{key: int(match[key]) for key in ("count", "focus", "site", "stain")}}


def _files(folder: Path, what: str, script: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} not found; prepare it with python data_scripts/{script}.py")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _pair(images: dict, annotations: dict, folder: Path, what: str) -> None:
    """Every image needs its annotation and vice versa; name the first few that do not have one."""
    lonely = sorted(set(images) ^ set(annotations))
    if lonely:
        names = [(images.get(k) or annotations.get(k)).name for k in lonely[:5]]
        raise ValueError(f"{len(lonely)} {what} file(s) in {folder} without their partner, e.g. {names}")
    if not images:
        raise ValueError(f"no {what} images found in {folder}")


def _record(dataset: str, name: str, image: Path, annotation: Path, meta: dict, **dots_options) -> CountRecord:
    dots = dots_from_annotation_image(read_image(annotation), **dots_options)
    return CountRecord(dataset, name, image, len(dots), dots, annotation, meta)


def read_vgg_cells(root) -> list[CountRecord]:
    """VGG cells ``<root>/NNNcell.png`` + ``NNNdots.png``, in number order; ``meta["number"]`` is NNN."""
    root = Path(root)
    images, annotations = {}, {}
    for path in _files(root, "VGG cells", "vgg_cells"):
        match = VGG_NAME.fullmatch(path.name)
        if match:
            (images if match["kind"] == "cell" else annotations)[int(match["number"])] = path
    _pair(images, annotations, root, "VGG cells")
    return [_record("vgg_cells", f"{n:03d}", images[n], annotations[n], {"number": n}) for n in sorted(images)]


def read_bbbc005(root, *, stain: int | None = 2, focus: Sequence[int] | None = None) -> list[CountRecord]:
    """BBBC005 ``<root>/images/*.TIF``: count, focus, site and stain from each name; the F1 mask when present.

    Parameters
    ----------
    stain : {2, 1, None}
        2 = nuclei (default), 1 = cell bodies, None = both (the two stains of a site show the same cells: keep them
        in the same split).
    focus : sequence of int, optional
        Keep only these blur levels, e.g. ``[1]`` for the in-focus images.

    Records carry no dots; ``meta`` has ``well, focus, site, stain`` and ``mask`` (path of the ground-truth
    foreground mask ``<root>/ground_truth/<same name>`` or None). A TIFF whose name does not match raises.
    """
    root = Path(root)
    if stain not in (1, 2, None):
        raise ValueError(f"`stain` must be 1 (cell body), 2 (nuclei) or None (both), got {stain!r}")
    records = []
    for path in _files(root / "images", "BBBC005 images", "bbbc005"):
        if path.suffix.lower() not in (".tif", ".tiff"):
            continue
        meta = parse_bbbc005_name(path.name)
        if (stain is not None and meta["stain"] != stain) or (focus is not None and meta["focus"] not in focus):
            continue
        mask = root / "ground_truth" / path.name
        meta["mask"] = mask if mask.is_file() else None
        records.append(CountRecord("bbbc005", path.stem, path, meta.pop("count"), None, None, meta))
    if not records:
        raise ValueError(f"no BBBC005 images for stain={stain}, focus={focus} in {root / 'images'}")
    return records


def read_bone_marrow(root) -> list[CountRecord]:
    """Bone marrow (MBM) ``<root>/BM_GRAZ_HE_<source>_<crop>.png`` + ``..._dots_<crop>.png``; meta: source, crop."""
    root = Path(root)
    images, annotations = {}, {}
    for path in _files(root, "bone marrow", "bone_marrow"):
        match = MBM_NAME.fullmatch(path.name)
        if match:
            (annotations if match["dots"] else images)[(match["source"], int(match["crop"]))] = path
    _pair(images, annotations, root, "bone marrow")
    return [_record("bone_marrow", images[k].stem, images[k], annotations[k], {"source": k[0], "crop": k[1]})
            for k in sorted(images)]


def read_adipocyte(root, *, threshold: int = 128) -> list[CountRecord]:
    """Adipocytes ``<root>/images/<name>.jpeg`` + ``<root>/annotations/<name>.jpeg``; one dot per bright blob.

    ``meta``: ``tile`` (the window offset, e.g. ``"10200-13600"``) and ``donor`` (GTEx id) when the name has the
    published form, else empty. Split by donor to keep one person's tissue out of both sides.
    """
    root = Path(root)
    images = {p.stem: p for p in _files(root / "images", "adipocyte images", "adipocyte")
              if p.suffix.lower() in (".jpeg", ".jpg")}
    annotations = {p.stem: p for p in _files(root / "annotations", "adipocyte annotations", "adipocyte")
                   if p.suffix.lower() in (".jpeg", ".jpg")}
    _pair(images, annotations, root, "adipocyte")
    records = []
    for stem in sorted(images):
        match = ADIPOCYTE_NAME.fullmatch(images[stem].name)
        meta = {"tile": match["tile"], "donor": match["donor"]} if match else {}
        records.append(_record("adipocyte", stem, images[stem], annotations[stem], meta, threshold=threshold,
                               connected=True))
    return records


def vgg_cells_split(records: Sequence[CountRecord], n_train: int = 32, seed: int = 0,
                    n_val: int | None = None) -> dict[str, list[CountRecord]]:
    """The VGG cells protocol: a fixed test set of 100 images, N training and N validation images drawn from the rest.

    This is the protocol of Lempitsky & Zisserman (2010, section 4): of the 200 images, the first 100 are the pool
    from which N = 1 ... 32 training images and another N for validation are drawn, and the last 100 (numbers
    101-200) are the test set, with the error averaged over several random draws of the N. Xie et al. (2018) and
    Count-ception (Cohen et al., 2017) report N = 32 and 64 on the same 100 test images. This function does exactly
    that: test = 101-200, train and validation drawn from 1-100 with ``seed``; report the mean and the spread (sd
    with ddof=1) over several seeds. (SAU-Net's code instead shuffles all 200 and trains on 64: not comparable.)

    Returns
    -------
    dict with ``"train"`` (``n_train``), ``"val"`` (``n_val``, default ``n_train``) and ``"test"`` records.

    Examples
    --------
    >>> recs = [CountRecord("vgg_cells", f"{n:03d}", Path(f"{n:03d}cell.png"), 0, meta={"number": n})
    ...         for n in range(1, 201)]
    >>> s = vgg_cells_split(recs, n_train=32, seed=0)
    >>> [len(s[k]) for k in ("train", "val", "test")], min(r.meta["number"] for r in s["test"])
    ([32, 32, 100], 101)
    """
    n_val = n_train if n_val is None else n_val
    if any("number" not in r.meta for r in records):
        raise ValueError("`records` must come from read_vgg_cells (each needs meta['number'])")
    pool = sorted((r for r in records if r.meta["number"] <= 100), key=lambda r: r.meta["number"])
    test = sorted((r for r in records if r.meta["number"] > 100), key=lambda r: r.meta["number"])
    if n_train < 1 or n_val < 0 or n_train + n_val > len(pool):
        raise ValueError(f"`n_train` ({n_train}) + `n_val` ({n_val}) must be between 1 and the {len(pool)} images "
                         "numbered 1-100")
    order = np.random.default_rng(seed).permutation(len(pool))
    return {"train": [pool[i] for i in order[:n_train]], "val": [pool[i] for i in order[n_train:n_train + n_val]],
            "test": test}
