"""Adipocytes (Count-ception, GTEx subcutaneous fat): download, verify and prepare 200 images with dot annotations.

Cohen et al. (2017) sampled 200 regions of 1700 x 1700 px from GTEx histology slides of subcutaneous adipose tissue
and downsampled them to 150 x 150; they are in the ieee8023/countception repository, folder ``adipocyte_data/``:
``images/<name>.jpeg`` and ``annotations/<name>.jpeg`` with names like
``10200-13600_GTEX-Y5V5_Adipose-Subcutaneous.jpeg`` (tile offset, GTEx donor). No separate zip is published, so the
script downloads the repository as a zip (GitHub's archive of the ``master`` branch; it also holds the VGG cells and
bone marrow copies) and extracts only ``adipocyte_data/``. No checksum is published: the script prints the archive's
SHA-256, checks every member's CRC, pairs every image with its annotation (naming a lonely one), checks that there
are 200 pairs, decodes every image and counts the cells. Usage::

    python -m data_scripts.adipocyte --dry-run
    python -m data_scripts.adipocyte                                 # download, prepare COURSE_DATA/adipocyte
    python -m data_scripts.adipocyte --archive countception-master.zip

The annotations are JPEG: a dot is a small blob smeared by compression, so the reader counts bright blobs
(:func:`course_lib.counting.datasets.dots_from_annotation_image` with ``connected=True``); check the printed
counts against the images once (two touching dots would be counted as one).

Prepared layout (what :func:`course_lib.counting.datasets.read_adipocyte` reads)::

    COURSE_DATA/adipocyte/images/<name>.jpeg, COURSE_DATA/adipocyte/annotations/<name>.jpeg
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import numpy as np

from course_lib.config import data_dir  # noqa: E402
from course_lib.counting.datasets import read_adipocyte  # noqa: E402
from data_scripts import counting_common as common

URL = "https://github.com/ieee8023/countception/archive/refs/heads/master.zip"
EXPECTED_PAIRS = 200
LAYOUT = "adipocyte_data/images and adipocyte_data/annotations (JPEG)"


def select(member: PurePosixPath) -> str | None:
    """``.../adipocyte_data/{images,annotations}/<name>.jpeg`` -> ``{images,annotations}/<name>.jpeg``."""
    parts = member.parts
    if len(parts) < 3 or parts[-3] != "adipocyte_data" or parts[-2] not in ("images", "annotations"):
        return None
    if member.name.startswith(".") or member.suffix.lower() not in (".jpeg", ".jpg"):
        return None
    return f"{parts[-2]}/{member.name}"


def check(dest: Path, decode: bool, progress: bool) -> tuple[list[str], str]:
    records = read_adipocyte(dest)  # pairs images with annotations, decodes the annotations
    problems = []
    if len(records) != EXPECTED_PAIRS:
        problems.append(f"expected {EXPECTED_PAIRS} image/annotation pairs, found {len(records)}")
    if decode:
        problems += common.corrupt_images([r.image for r in records], progress=progress)
    counts = np.array([r.count for r in records])
    donors = {r.meta.get("donor") for r in records} - {None}
    summary = (f"{len(records)} adipocyte images from {len(donors)} GTEx donors, {counts.sum()} annotated cells: "
               f"{counts.mean():.1f} +- {counts.std():.1f} per image (min {counts.min()}, max {counts.max()})")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], data_dir("adipocyte"))
    p.add_argument("--url", default=URL, help="download the repository zip from here (default: %(default)s)")
    args = p.parse_args(argv)
    archives = [common.Archive(args.url, "countception-master.zip",
                               "the whole repository, size not published")]
    return common.run(args, archives, select, LAYOUT, check)


if __name__ == "__main__":
    sys.exit(main())
