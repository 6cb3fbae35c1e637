"""Bone marrow (MBM, modified bone marrow): download, verify and prepare the 44 H&E crops with dot annotations.

Cohen et al. (2017, Count-ception) cut each of the 11 bone-marrow H&E images of Kainz et al. (2015) into four
600 x 600 crops and published them in the ieee8023/countception repository: the folder ``MBM_data/`` and the zip
``MBM_data.zip`` linked from its README. Files: ``BM_GRAZ_HE_<pppp>_<ss>_<kkk>.png`` (RGB) and
``BM_GRAZ_HE_<pppp>_<ss>_dots_<kkk>.png`` (one bright pixel per cell on black), for the 11 sources listed in
``SOURCES`` and crops 000-003. The original 1200 x 1200 images of Kainz et al. are not fetched here. No checksum is
published: the script prints the archive's SHA-256, checks every member's CRC, names any of the 88 files that is
missing, decodes every image and counts the dots. Usage::

    python -m data_scripts.bone_marrow --dry-run
    python -m data_scripts.bone_marrow                          # download MBM_data.zip, prepare COURSE_DATA/bone_marrow
    python -m data_scripts.bone_marrow --archive MBM_data.zip   # or the repository zip (countception-master.zip)

If the download fails (or GitHub serves a Git LFS pointer instead of the zip, which then fails the zip check), take
the repository zip instead, ``--url https://github.com/ieee8023/countception/archive/refs/heads/master.zip``, or
pass a copy with ``--archive``: members are picked by file name, whatever folder holds them.

Prepared layout (what :func:`course_lib.counting.datasets.read_bone_marrow` reads)::

    COURSE_DATA/bone_marrow/BM_GRAZ_HE_0001_01_000.png, BM_GRAZ_HE_0001_01_dots_000.png, ...
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import numpy as np

from course_lib.config import data_dir  # noqa: E402
from course_lib.counting.datasets import MBM_NAME, read_bone_marrow  # noqa: E402
from data_scripts import counting_common as common

URL = "https://github.com/ieee8023/countception/raw/master/MBM_data.zip"
# the 11 source images, as listed in the repository's MBM_data/ folder
SOURCES = ["0001_01", "0001_02", "0002_01", "0002_02", "0003_01", "0003_02", "0004_01", "0006_01", "0007_01",
           "0008_01", "0020_01"]
CROPS = range(4)
LAYOUT = "the BM_GRAZ_HE_*.png images and their _dots_ files (flat)"


def select(member: PurePosixPath) -> str | None:
    if "__MACOSX" in member.parts or not MBM_NAME.fullmatch(member.name):
        return None
    return member.name


def check(dest: Path, decode: bool, progress: bool) -> tuple[list[str], str]:
    records = read_bone_marrow(dest)  # pairs images with dots, decodes the dots
    expected = [f"BM_GRAZ_HE_{s}_{d}{k:03d}.png" for s in SOURCES for k in CROPS for d in ("", "dots_")]
    present = [p.name for r in records for p in (r.image, r.annotation)]
    problems = common.name_missing(expected, present, "bone marrow files")
    if decode:
        problems += common.corrupt_images([r.image for r in records], progress=progress)
    counts = np.array([r.count for r in records])
    summary = (f"{len(records)} bone marrow crops from {len({r.meta['source'] for r in records})} images, "
               f"{counts.sum()} annotated cells: {counts.mean():.1f} +- {counts.std():.1f} per crop "
               f"(min {counts.min()}, max {counts.max()})")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], data_dir("bone_marrow"))
    p.add_argument("--url", default=URL, help="download from here instead (default: %(default)s)")
    args = p.parse_args(argv)
    archives = [common.Archive(args.url, "MBM_data.zip", "size not published; 44 PNG pairs of 600 x 600")]
    return common.run(args, archives, select, LAYOUT, check)


if __name__ == "__main__":
    sys.exit(main())
