"""CAMELYON16/17 lymph-node slides: download from the public bucket, and extract labelled patches.

The CAMELYON data (Litjens et al. 2018, CC0) is in the AWS Open Data bucket ``camelyon-dataset``,
readable over plain HTTPS without an account. Each slide is a pyramidal TIFF of 0.5-4 GB; tumour
slides come with ASAP XML annotations (polygons in level-0 pixels). Usage::

    python -m data_scripts.camelyon download --dry-run                   # what would be fetched, no network
    python -m data_scripts.camelyon download --slides tumor_001 normal_001
    python -m data_scripts.camelyon download --list-file my_slides.txt   # one slide name per line
    python -m data_scripts.camelyon patches COURSE_DATA/camelyon16/images/tumor_001.tif \\
        --xml COURSE_DATA/camelyon16/annotations/tumor_001.xml --level 2 --patch-size 256

Downloads go through :func:`course_lib.data.download.download` (``.part`` file, resume, progress) and are
checked against the bucket's published ``checksums.md5`` when it lists the file. Patch extraction uses
:mod:`course_lib.histology.slides` and :mod:`~course_lib.histology.slide_grid`: tissue mask on a thumbnail, a
patch grid over the tissue, and a tumour fraction per patch from the annotation polygons rasterised with
``skimage.draw.polygon``. Annotation groups ``_0``/``_1``/``Tumor``/``metastases`` are tumour; group ``_2``
(``Exclusion``) marks normal tissue inside a tumour outline (CAMELYON16 convention) and is cut out of the mask.
"""

from __future__ import annotations

import argparse
import csv
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from skimage.draw import polygon

from course_lib.config import data_dir
from course_lib.data.download import download
from course_lib.histology.slide_grid import mask_fraction, patch_grid
from course_lib.histology.slides import Slide, tissue_mask

BASE_URL = "https://camelyon-dataset.s3.us-west-2.amazonaws.com"
# A few slides to start with (the full list is in the bucket's checksums.md5; pass it with --list-file).
SLIDES = ["tumor_001", "tumor_002", "normal_001", "normal_002", "test_001"]
EXCLUSION_GROUPS = frozenset({"_2", "Exclusion", "exclusion"})


class Annotation(NamedTuple):
    name: str  # e.g. "Annotation 0" or "_0"
    group: str  # PartOfGroup: "_0", "_1" (tumour), "_2" (exclusion), "Tumor", "metastases", ...
    points: np.ndarray  # (K, 2) float64 (y, x) vertices in level-0 pixels (the XML's X, Y swapped)


def parse_asap_xml(path) -> list[Annotation]:
    """Read an ASAP annotation file: ``Annotation/Coordinates/Coordinate`` with ``X``, ``Y``, ``Order``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not XML, no ``Annotation`` element, or a coordinate without numeric ``X``/``Y``; names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{path} is not valid XML ({error}); download it again") from error
    elements = root.iter("Annotation")
    annotations = []
    for element in elements:
        points = []
        for c in element.iter("Coordinate"):
            try:
                points.append((float(c.get("Order", len(points))), float(c.attrib["Y"]), float(c.attrib["X"])))
            except (KeyError, ValueError) as error:
                raise ValueError(f"{path}: annotation {element.get('Name')!r} has a coordinate without numeric "
                                 f"X and Y: {c.attrib}") from error
        points.sort(key=lambda p: p[0])  # by Order
        yx = np.array([p[1:] for p in points], dtype=np.float64).reshape(-1, 2)
        annotations.append(Annotation(element.get("Name", ""), element.get("PartOfGroup", ""), yx))
    if not annotations:
        raise ValueError(f"{path} has no <Annotation> elements: not an ASAP annotation file")
    return annotations


def rasterise(annotations, shape, downsample: float = 1.0) -> np.ndarray:
    """Tumour mask at ``shape`` from annotation polygons: tumour groups filled, exclusion groups cut out.

    Parameters
    ----------
    annotations : list of Annotation
    shape : (int, int)
        (rows, cols) of the mask.
    downsample : float
        Level-0 pixels per mask pixel (vertices are divided by it).

    Returns
    -------
    (rows, cols) bool ndarray. Polygons with fewer than 3 vertices (dots) are ignored.
    """
    tumour, excluded = np.zeros(shape, bool), np.zeros(shape, bool)
    for annotation in annotations:
        if len(annotation.points) < 3:
            continue
        rows, cols = (annotation.points / downsample).T  # (K, 2) -> (2, K)
        rr, cc = polygon(rows, cols, shape=shape)
        (excluded if annotation.group in EXCLUSION_GROUPS else tumour)[rr, cc] = True
    return tumour & ~excluded


def read_list_file(path) -> list[str]:
    """Slide names from a text file: one per line, ``#`` comments; a checksums.md5 file works too."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"slide list {path} not found")
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = Path(line.split()[-1].lstrip("*")).name  # "md5  images/tumor_001.tif" -> "tumor_001.tif"
            stem, suffix = (name[:-4], ".tif") if name.endswith(".tif") else (name, Path(name).suffix)
            if suffix in ("", ".tif") and not stem.endswith("_mask"):  # skip masks, XML, README, ...
                names.append(stem)
    return names


def read_checksums(path) -> dict[str, str]:
    """``{"images/tumor_001.tif": md5}`` from the bucket's ``checksums.md5`` (``md5  relative/path`` lines)."""
    table = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            table[name.strip().lstrip("*").removeprefix("./")] = digest
    return table


def plan(slides, dest: Path, version: str = "CAMELYON16", published=None) -> list[tuple[str, str, Path]]:
    """(url, key, destination) of every file to fetch: each slide's image and, where one exists, its XML.

    An annotation is fetched when ``published`` (the checksum table) lists it, or, without a table,
    for CAMELYON16 ``tumor_*`` slides (CAMELYON17 annotates 50 slides: use the table).
    """
    files = []
    for name in slides:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"slide name {name!r} must look like 'tumor_001' (letters, digits, '_')")
        xml = f"annotations/{name}.xml"
        annotated = xml in published if published is not None else name.startswith("tumor_")
        keys = [f"images/{name}.tif"] + ([xml] if annotated else [])
        files += [(f"{BASE_URL}/{version}/{key}", key, dest / key) for key in keys]
    return files


def fetch(slides, dest: Path, *, version: str = "CAMELYON16", dry_run: bool = False, checksums: bool = True) -> None:
    """Download ``slides`` (names like ``tumor_001``) into ``dest/images`` and ``dest/annotations``."""
    if dry_run:
        files = plan(slides, dest, version)
        if checksums:
            print(f"would fetch {BASE_URL}/{version}/checksums.md5 -> {dest / 'checksums.md5'}")
        for url, _, path in files:
            print(f"would fetch {url} -> {path}{'  (present)' if path.is_file() else ''}")
        return
    table = None
    if checksums:
        table = read_checksums(download(f"{BASE_URL}/{version}/checksums.md5", dest / "checksums.md5"))
    files = plan(slides, dest, version, table)
    table = table or {}
    for url, key, path in files:
        if checksums and key not in table:
            print(f"note: no published checksum for {key}; size is checked, content is not", file=sys.stderr)
        download(url, path, checksum=table.get(key), algorithm="md5")


def extract_patches(slide_path, out_dir, *, xml_path=None, level: int = 0, patch_size: int = 256,
                    min_tissue: float = 0.5, tumour_threshold: float = 0.5, max_patches: int | None = None,
                    seed: int = 0) -> dict[int, int]:
    """Cut tissue patches from a slide into ``out_dir/<slide>/<label>/`` PNGs plus an ``index.csv``.

    A patch is kept when its tissue fraction (thumbnail tissue mask) is >= ``min_tissue``, and labelled 1
    when more than ``tumour_threshold`` of it lies inside the annotated tumour. With ``max_patches`` a
    seeded random subset is written. Returns the number of patches written per label.
    """
    slide_path, out = Path(slide_path), Path(out_dir) / Path(slide_path).stem
    annotations = parse_asap_xml(xml_path) if xml_path is not None else []
    with Slide(slide_path) as slide:
        if not 0 <= level < len(slide.levels):
            raise ValueError(f"`level` {level} does not exist: {slide_path.name} has levels 0..{len(slide.levels) - 1}")
        thumb, thumb_ds = slide.thumbnail(2048)
        grid = patch_grid(tissue_mask(thumb), patch_size, mask_downsample=thumb_ds, slide_shape=slide.shape,
                          level_downsample=slide.levels[level].downsample, min_tissue=min_tissue)
        fine_ds = grid.size_level0 / 8  # 8x8 mask pixels per patch: fine enough for a tumour fraction
        fine_shape = tuple(int(np.ceil(n / fine_ds)) for n in slide.shape)
        tumour = rasterise(annotations, fine_shape, fine_ds)
        fraction = mask_fraction(tumour, grid.coords_level0, grid.size_level0, fine_ds)
        chosen = np.arange(len(fraction))
        if max_patches is not None and len(chosen) > max_patches:
            chosen = np.sort(np.random.default_rng(seed).choice(chosen, max_patches, replace=False))
        counts = {0: 0, 1: 0}
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "index.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "y0", "x0", "level", "tissue_fraction", "tumour_fraction", "label"])
            for i in chosen:
                y0, x0 = (int(v) for v in grid.coords_level0[i])
                label = int(fraction[i] > tumour_threshold)
                name = f"{label}/{out.name}_y{y0}_x{x0}.png"
                (out / str(label)).mkdir(exist_ok=True)
                Image.fromarray(slide.read_region((y0, x0), (patch_size, patch_size), level=level)).save(out / name)
                writer.writerow([name, y0, x0, level, f"{grid.tissue_fraction[i]:.3f}", f"{fraction[i]:.3f}", label])
                counts[label] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="download slides (and tumour annotations) from the public bucket")
    get.add_argument("--slides", nargs="+", default=SLIDES, help="slide names (default: %(default)s)")
    get.add_argument("--list-file", type=Path, help="text file with slide names, e.g. the bucket's checksums.md5")
    get.add_argument("--version", default="CAMELYON16", choices=["CAMELYON16", "CAMELYON17"])
    get.add_argument("--dest", type=Path, help="folder (default: COURSE_DATA/camelyon16 or camelyon17)")
    get.add_argument("--dry-run", action="store_true", help="print what would be downloaded, fetch nothing")
    get.add_argument("--no-checksums", action="store_true", help="do not fetch or check checksums.md5")
    cut = sub.add_parser("patches", help="extract labelled tissue patches from a downloaded slide")
    cut.add_argument("slide", type=Path)
    cut.add_argument("--xml", type=Path, help="ASAP XML tumour annotation (none: every patch is label 0)")
    cut.add_argument("--out", type=Path, default=data_dir("camelyon_patches"), help="(default: %(default)s)")
    cut.add_argument("--level", type=int, default=0)
    cut.add_argument("--patch-size", type=int, default=256)
    cut.add_argument("--min-tissue", type=float, default=0.5)
    cut.add_argument("--max-patches", type=int)
    cut.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            slides = read_list_file(args.list_file) if args.list_file else args.slides
            dest = args.dest or data_dir(args.version.lower())
            fetch(slides, dest, version=args.version, dry_run=args.dry_run, checksums=not args.no_checksums)
        else:
            counts = extract_patches(args.slide, args.out, xml_path=args.xml, level=args.level,
                                     patch_size=args.patch_size, min_tissue=args.min_tissue,
                                     max_patches=args.max_patches, seed=args.seed)
            print(f"wrote {counts[0]} normal and {counts[1]} tumour patches to {args.out / args.slide.stem}")
    except (FileNotFoundError, ValueError, ConnectionError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
