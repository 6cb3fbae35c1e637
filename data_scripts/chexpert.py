"""CheXpert: print the access steps, or extract, verify and resize a copy you downloaded.

CheXpert (Irvin et al. 2019; 224,316 images of 65,240 patients, frontal and lateral, 14 observations from a
rule-based report labeler) is distributed by the Stanford AIMI centre after registration and a research-use
agreement, so this script never downloads. The course uses the downsampled ``CheXpert-v1.0-small`` (about
11 GB of ~320 px JPEGs). Usage::

    python -m data_scripts.chexpert                                        # the access steps
    python -m data_scripts.chexpert --root COURSE_DATA/chexpert --archive CheXpert-v1.0-small.zip
    python -m data_scripts.chexpert --root COURSE_DATA/chexpert --resize 224

Verification reads ``train.csv`` (and ``valid.csv`` if present) with
:func:`course_lib.chest_xray.labels.read_chexpert`, prints images, patients, views and PA + lateral pairs, and
checks that a seeded sample of the referenced JPEGs exists and decodes, naming every missing or corrupt file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from course_lib.chest_xray.datasets import CHEXPERT_DIRS, find_table
from course_lib.chest_xray.labels import read_chexpert
from course_lib.config import data_dir
from course_lib.data.archives import safe_extract
from data_scripts import cxr_common as common

PAGE = "https://stanfordmlgroup.github.io/competitions/chexpert/"
AIMI = "https://stanfordaimi.azurewebsites.net/"


def instructions(root: Path) -> str:
    """Step-by-step text for getting CheXpert."""
    return f"""CheXpert (Stanford AIMI, research use only): registration needed, nothing is downloaded by this script.

1. Open {PAGE} and follow "Download" to the Stanford AIMI shared datasets
   ({AIMI}); sign in, accept the Stanford University School of Medicine CheXpert Dataset Research Use
   Agreement, and open the CheXpert dataset page.
2. Download CheXpert-v1.0-small.zip (about 11 GB, ~320 px JPEGs; the full-resolution CheXpert-v1.0 works too).
3. Extract it safely (no path escapes) into {root}:
       python -m data_scripts.chexpert --root {root} --archive ~/Downloads/CheXpert-v1.0-small.zip
4. Verify (and optionally write 224 px copies):
       python -m data_scripts.chexpert --root {root} --resize 224
   Layout the course reads: {root}/CheXpert-v1.0-small/train.csv and
   {root}/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg (paths in the CSV are relative to {root}).
"""


def read_tables(root: Path, uncertain: str = "ignore") -> pd.DataFrame:
    """``train.csv`` and, when present, ``valid.csv`` of the CheXpert folder under ``root``, one frame."""
    folders = [root / d for d in CHEXPERT_DIRS if (root / d).is_dir()] or [root / CHEXPERT_DIRS[0]]
    frames = [read_chexpert(find_table(folders[0], ("train.csv",), "chexpert"), uncertain)]
    valid = folders[0] / "valid.csv"
    if valid.is_file():
        frames.append(read_chexpert(valid, uncertain))
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="your copy: the folder holding CheXpert-v1.0-small/ "
                        "(without it: print the access steps)")
    parser.add_argument("--archive", type=Path, help="first extract this zip (CheXpert-v1.0-small.zip) into ROOT")
    common.add_prepare_arguments(parser)
    args = parser.parse_args(argv)
    if args.root is None:
        print(instructions(data_dir("chexpert")))
        return 0
    try:
        if args.archive is not None:
            n = safe_extract(args.archive, args.root, progress=not args.no_progress)
            print(f"{args.archive.name}: {n} files extracted to {args.root}")
        frame = read_tables(args.root)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(common.summarize(frame, "CheXpert"))
    return common.verify_and_prepare(args.root, frame, args)


if __name__ == "__main__":
    sys.exit(main())
