"""Kaggle IDC breast histopathology patches: print the download steps, or verify, extract and check an archive.

The dataset is on Kaggle (``paultimothymooney/breast-histopathology-images``, about 3.1 GB zipped) and
needs a free Kaggle account, so this script never downloads without your token. Usage::

    python -m data_scripts.idc                          # the exact steps for your machine
    python -m data_scripts.idc --download               # with a Kaggle API token: runs the kaggle CLI
    python -m data_scripts.idc --archive archive.zip    # verify the zip, extract to COURSE_DATA/idc, check it

Extraction is safe: members with absolute paths, ``..`` or links are refused, and the archive's duplicate
``IDC_regular_ps50_idx5/`` copy is folded into the same ``<root>/<patient>/<class>/`` layout instead of
doubling the disk space. After extraction :func:`course_lib.histology.idc.scan_idc` reads every file name
and the script prints the number of patients and patches per class.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

from course_lib.config import data_dir
from course_lib.data.archives import safe_extract, verify_archive
from course_lib.histology.idc import class_counts, scan_idc

DATASET = "paultimothymooney/breast-histopathology-images"
ARCHIVE_NAME = "breast-histopathology-images.zip"
DUPLICATE_PREFIX = "IDC_regular_ps50_idx5"  # the archive holds every patient twice: at the top and in here


def kaggle_credentials() -> bool:
    """True when a Kaggle API token is configured (``~/.kaggle/kaggle.json`` or both environment variables)."""
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    has_env = bool(os.environ.get("KAGGLE_USERNAME")) and bool(os.environ.get("KAGGLE_KEY"))
    return has_env or (config_dir / "kaggle.json").is_file()


def download_command(dest: Path) -> list[str]:
    """The kaggle CLI call that downloads the archive into ``dest``'s parent folder."""
    return ["kaggle", "datasets", "download", "-d", DATASET, "-p", str(dest.parent)]


def instructions(dest: Path) -> str:
    """Step-by-step text for getting the archive, with the exact commands."""
    archive = dest.parent / ARCHIVE_NAME
    token = "found" if kaggle_credentials() else "NOT found"
    return f"""Kaggle IDC breast histopathology patches ({DATASET})
Kaggle API token: {token}

1. Create a Kaggle account and accept the dataset's terms:
   https://www.kaggle.com/datasets/{DATASET}
2. Get an API token: Kaggle > Settings > API > "Create New Token" downloads kaggle.json. Then
       mkdir -p ~/.kaggle && mv ~/Downloads/kaggle.json ~/.kaggle/ && chmod 600 ~/.kaggle/kaggle.json
   (or export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>), and pip install kaggle
3. Download (about 3.1 GB):
       {" ".join(download_command(dest))}
   or, without the CLI, click "Download" on the dataset page and save the zip as {archive}
4. Verify, extract and check:
       python -m data_scripts.idc --archive {archive} --dest {dest}
"""


def fold_duplicate(path: PurePosixPath) -> PurePosixPath | None:
    """Where a member goes under the dataset folder: the duplicate folder's copy lands on the same file."""
    parts = path.parts[1:] if path.parts and path.parts[0] == DUPLICATE_PREFIX else path.parts
    return PurePosixPath(*parts) if parts else None


def extract(archive: Path, dest: Path, *, progress: bool = True) -> int:
    """Extract the Kaggle zip into ``dest`` safely, each patient once; return the number of files written."""
    return safe_extract(archive, dest, select=fold_duplicate, duplicates="first", progress=progress)


def check_layout(root: Path) -> dict:
    """Read every file name with the course reader; return patients, patches and class counts."""
    records = scan_idc(root)
    if not records:
        raise ValueError(f"no IDC patches found under {root}: expected <root>/<patient>/<0|1>/<name>.png")
    counts = class_counts(records)
    return {"patients": len({r.patient for r in records}), "patches": len(records), "class_counts": counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="the downloaded zip to verify and extract")
    parser.add_argument("--dest", type=Path, default=data_dir("idc"), help="dataset folder (default: %(default)s)")
    parser.add_argument("--download", action="store_true", help="run the kaggle CLI (needs an API token)")
    parser.add_argument("--skip-crc", action="store_true", help="skip the CRC check of every member (faster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.download:
        if not kaggle_credentials() or shutil.which("kaggle") is None:
            print("The kaggle CLI or a Kaggle API token is missing.\n", file=sys.stderr)
            print(instructions(args.dest), file=sys.stderr)
            return 1
        args.dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(download_command(args.dest), check=True)
        args.archive = args.dest.parent / ARCHIVE_NAME
    if args.archive is None:
        print(instructions(args.dest))
        return 0
    try:
        if not args.skip_crc:
            n = verify_archive(args.archive, progress=not args.no_progress)
            print(f"{args.archive}: {n} files, all CRCs OK")
        written = extract(args.archive, args.dest, progress=not args.no_progress)
        print(f"extracted {written} files to {args.dest}")
        summary = check_layout(args.dest)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts = summary["class_counts"]
    print(f"{summary['patients']} patients, {summary['patches']} patches: {counts[0]} IDC-negative (class 0), "
          f"{counts[1]} IDC-positive (class 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
