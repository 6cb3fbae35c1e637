"""BBBC005 synthetic cells (Broad Bioimage Benchmark Collection): download, verify and prepare images and masks.

Two public zips at https://data.broadinstitute.org/bbbc/BBBC005/: ``BBBC005_v1_images.zip`` (19,200 8-bit TIFFs of
696 x 520, about 1.8 GB) and ``BBBC005_v1_ground_truth.zip`` (foreground/background masks of the in-focus ``F1``
images). Each name holds the answer, ``SIMCEPImages_<well>_C<count>_F<focus>_s<site>_w<stain>.TIF``: a 384-well plate
whose row sets the blur and column the cell count, 25 sites per well, stain 1 (cell body) and 2 (nuclei). No
checksum is published: the script prints each archive's SHA-256, checks every member's CRC, parses every name (a
name that does not match is an error that names it), checks that the plate is complete (wells A01-P24, sites 1-25,
both stains; the missing ones are named), that one well means one count and one blur level, that every F1 image has
its mask, and that every image decodes. Usage::

    python -m data_scripts.bbbc005 --dry-run
    python -m data_scripts.bbbc005                       # download both zips to COURSE_DATA/bbbc005 and prepare
    python -m data_scripts.bbbc005 --archive BBBC005_v1_images.zip --archive BBBC005_v1_ground_truth.zip

Prepared layout (what :func:`course_lib.counting.datasets.read_bbbc005` reads); members of the zip whose path
contains ``ground_truth`` are masks::

    COURSE_DATA/bbbc005/images/SIMCEPImages_A05_C18_F1_s05_w1.TIF, ...
    COURSE_DATA/bbbc005/ground_truth/SIMCEPImages_A05_C18_F1_s05_w1.TIF, ...  (F1 only)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path, PurePosixPath

from course_lib.config import data_dir  # noqa: E402
from course_lib.counting.datasets import parse_bbbc005_name, read_bbbc005  # noqa: E402
from data_scripts import counting_common as common

BASE_URL = "https://data.broadinstitute.org/bbbc/BBBC005"
WELLS = [f"{row}{col:02d}" for row in "ABCDEFGHIJKLMNOP" for col in range(1, 25)]  # standard 384-well plate
SITES = range(1, 26)
STAINS = (1, 2)
LAYOUT = "images/*.TIF and ground_truth/*.TIF"


def archives(base_url: str = BASE_URL) -> list:
    return [common.Archive(f"{base_url}/BBBC005_v1_images.zip", "BBBC005_v1_images.zip", "about 1.8 GB"),
            common.Archive(f"{base_url}/BBBC005_v1_ground_truth.zip", "BBBC005_v1_ground_truth.zip",
                           "about 11 MB")]


def select(member: PurePosixPath) -> str | None:
    """TIFFs only, flat; a path with ``ground_truth`` in a folder name is a mask."""
    if "__MACOSX" in member.parts or member.name.startswith(".") or member.suffix.lower() not in (".tif", ".tiff"):
        return None
    is_mask = any("ground_truth" in part.lower() for part in member.parts[:-1])
    return f"{'ground_truth' if is_mask else 'images'}/{member.name}"


def check(dest: Path, decode: bool, progress: bool) -> tuple[list[str], str]:
    """Problems (bad names, missing wells/sites/masks, corrupt files) and a one-line summary."""
    records = read_bbbc005(dest, stain=None)  # parses every name; raises naming the first that does not match
    masks = sorted((dest / "ground_truth").glob("*.[tT][iI][fF]")) if (dest / "ground_truth").is_dir() else []
    for mask in masks:
        parse_bbbc005_name(mask.name)
    problems = common.name_missing(
        [f"{w} s{s:02d} w{t}" for w in WELLS for s in SITES for t in STAINS],
        [f"{r.meta['well']} s{r.meta['site']:02d} w{r.meta['stain']}" for r in records], "plate positions (images)")
    per_well = defaultdict(set)  # well -> {(count, focus)}: the plate layout gives each well one of each
    for r in records:
        per_well[r.meta["well"]].add((r.count, r.meta["focus"]))
    problems += [f"well {w} mixes (count, focus) {sorted(v)}" for w, v in sorted(per_well.items()) if len(v) > 1]
    problems += common.name_missing([r.image.name for r in records if r.meta["focus"] == 1],
                                    [m.name for m in masks], "ground-truth masks of F1 images")
    orphans = sorted({m.name for m in masks} - {r.image.name for r in records})
    problems += [f"{len(orphans)} masks without an image, e.g. {orphans[:3]}"] if orphans else []
    if decode:
        problems += common.corrupt_images([r.image for r in records] + masks, progress=progress)
    counts = sorted({r.count for r in records})
    focus = sorted({r.meta["focus"] for r in records})
    by_stain = {t: sum(r.meta["stain"] == t for r in records) for t in STAINS}
    summary = (f"{len(records)} BBBC005 images ({by_stain[1]} cell body, {by_stain[2]} nuclei), {len(masks)} masks; "
               f"{len(counts)} cell counts {counts[0]}-{counts[-1]}, {len(focus)} focus levels {focus[0]}-{focus[-1]}")
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], data_dir("bbbc005"))
    p.add_argument("--base-url", default=BASE_URL, help="folder holding both zips (default: %(default)s)")
    args = p.parse_args(argv)
    return common.run(args, archives(args.base_url), select, LAYOUT, check)


if __name__ == "__main__":
    sys.exit(main())
