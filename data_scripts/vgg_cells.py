"""VGG cells (Lempitsky & Zisserman 2010): download, verify and prepare the 200 synthetic cell images with dots.

The set is a public zip on the Oxford VGG site, ``cells.zip``: 200 pairs ``NNNcell.png`` (256 x 256 RGB, cells in
the blue channel) and ``NNNdots.png`` (one red pixel per cell centre). It is mirrored in the ieee8023/countception
repository (``cells.zip``) and on Academic Torrents (b32305598175bb8e03c5f350e962d772a910641c). No checksum is
published: the script prints the archive's SHA-256, checks every member's CRC, that all 200 pairs are there (naming
the missing ones), that every image decodes, and counts the dots. Usage::

    python -m data_scripts.vgg_cells --dry-run              # what would be fetched, no network
    python -m data_scripts.vgg_cells                        # download to COURSE_DATA/vgg_cells and prepare
    python -m data_scripts.vgg_cells --url https://github.com/ieee8023/countception/raw/master/cells.zip
    python -m data_scripts.vgg_cells --archive cells.zip    # a copy you already have

Prepared layout (what :func:`course_lib.counting.datasets.read_vgg_cells` reads)::

    COURSE_DATA/vgg_cells/001cell.png, 001dots.png, ..., 200cell.png, 200dots.png
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import numpy as np

from course_lib.config import data_dir  # noqa: E402
from course_lib.counting.datasets import VGG_NAME, read_vgg_cells  # noqa: E402
from data_scripts import counting_common as common

URL = "http://www.robots.ox.ac.uk/~vgg/research/counting/cells.zip"
NUMBERS = range(1, 201)  # 001 ... 200
LAYOUT = "the NNNcell.png / NNNdots.png pairs (flat)"


def select(member: PurePosixPath) -> str | None:
    """Keep ``NNNcell.png`` / ``NNNdots.png`` from any folder of the zip, written flat; skip everything else."""
    if "__MACOSX" in member.parts or not VGG_NAME.fullmatch(member.name):
        return None
    return member.name


def check(dest: Path, decode: bool, progress: bool) -> tuple[list[str], str]:
    """Problems (missing or corrupt files) and a one-line summary of the prepared folder."""
    records = read_vgg_cells(dest)  # pairs every image with its dots and decodes the dots (names a bad one)
    present = [p.name for r in records for p in (r.image, r.annotation)]
    expected = [f"{n:03d}{kind}.png" for n in NUMBERS for kind in ("cell", "dots")]
    problems = common.name_missing(expected, present, "VGG cells files")
    if decode:
        problems += common.corrupt_images([r.image for r in records], progress=progress)
    counts = np.array([r.count for r in records])
    summary = (f"{len(records)} VGG cells images, {counts.sum()} annotated cells: {counts.mean():.1f} +- "
               f"{counts.std():.1f} per image (min {counts.min()}, max {counts.max()})")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], data_dir("vgg_cells"))
    p.add_argument("--url", default=URL, help="download from here instead (a mirror; default: %(default)s)")
    args = p.parse_args(argv)
    archives = [common.Archive(args.url, "cells.zip", "size not published; 200 small PNG pairs")]
    return common.run(args, archives, select, LAYOUT, check)


if __name__ == "__main__":
    sys.exit(main())
