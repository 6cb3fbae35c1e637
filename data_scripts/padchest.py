"""PadChest: print the access steps, or extract, verify and resize a copy you downloaded.

PadChest (Bustos et al. 2020; 160,861 images of 67,625 patients, PA, lateral, AP; 16-bit PNG; about 1 TB;
CC BY-SA 4.0) is distributed by BIMCV after a short request form, so this script never downloads. Usage::

    python -m data_scripts.padchest                                   # the access steps
    python -m data_scripts.padchest --root COURSE_DATA/padchest --extract   # unzip <N>.zip -> <N>/ safely
    python -m data_scripts.padchest --root COURSE_DATA/padchest --partial --resize 224

Verification reads the label table with :func:`course_lib.chest_xray.labels.read_padchest`, prints images,
patients, views and PA + lateral pairs, then checks that a seeded sample of the referenced images
(``<ImageDir>/<ImageID>``) exists and decodes, naming every missing or corrupt file. ``--partial`` accepts a
copy with only some of the image zips.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from course_lib.chest_xray.datasets import PADCHEST_CSV, find_table
from course_lib.chest_xray.labels import read_padchest
from course_lib.config import data_dir
from course_lib.data.archives import safe_extract
from data_scripts import cxr_common as common

PAGE = "https://bimcv.cipf.es/bimcv-projects/padchest/"


def instructions(root: Path) -> str:
    """Step-by-step text for getting PadChest."""
    return f"""PadChest (BIMCV, CC BY-SA 4.0): registration needed, nothing is downloaded by this script.

1. Open {PAGE} and fill in the download request (name, institution, intended use).
   BIMCV answers with the download links.
2. Download the label table {PADCHEST_CSV[0]}.gz (or .csv) and the image zips you want:
   <N>.zip for N = 0..50 and 54 (each a few thousand 16-bit PNGs, about 1 TB in total). One or two zips are
   enough to try the course's multi-view models (then use --partial below).
3. Put them all in one folder, e.g. {root}, and extract the zips safely (no path escapes) into <N>/:
       python -m data_scripts.padchest --root {root} --extract
4. Verify (and optionally write 224 px copies, much faster to train on):
       python -m data_scripts.padchest --root {root} --partial --resize 224
   Layout the course reads: {root}/{PADCHEST_CSV[0]}[.gz] and {root}/<ImageDir>/<ImageID>.
"""


def extract_zips(root: Path, *, progress: bool = True) -> int:
    """Extract every ``<root>/<N>.zip`` into ``<root>/<N>/`` (or ``<root>`` when its members already start with
    ``<N>/``); return the number of files written."""
    written = 0
    for archive in sorted(root.glob("*.zip"), key=lambda p: (len(p.stem), p.stem)):
        if not archive.stem.isdigit():
            continue
        if not zipfile.is_zipfile(archive):
            raise ValueError(f"{archive} is not a zip archive (truncated or corrupt download?); download it again")
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
        nested = bool(names) and all(n.startswith(f"{archive.stem}/") for n in names)
        n = safe_extract(archive, root if nested else root / archive.stem, progress=progress)
        print(f"{archive.name}: {n} files extracted")
        written += n
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="your downloaded copy (without it: print the access steps)")
    parser.add_argument("--extract", action="store_true", help="first extract ROOT/<N>.zip into ROOT/<N>/")
    common.add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    if args.root is None:
        print(instructions(data_dir("padchest")))
        return 0
    try:
        if args.extract:
            extract_zips(args.root, progress=not args.no_progress)
        frame = read_padchest(find_table(args.root, PADCHEST_CSV, "padchest"), labels=[])  # views and paths only
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(common.summarize(frame, "PadChest"))
    print(f"rows skipped because their label list could not be parsed: {frame.attrs['skipped_rows']}")
    return common.verify_and_prepare(args.root, frame, args)


if __name__ == "__main__":
    sys.exit(main())
